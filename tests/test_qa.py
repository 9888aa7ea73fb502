"""The QA loop end to end on the local tracker: ci record files revalidation requests with
evidence, idempotently; QA accepts (the new lines become the baseline) or rejects; a bare
remote shared by two CI clones holds every request once."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

from dasct import git
from dasct.ledger import Ledger
from dasct_run import dasct
from gitrepo import GitRepo

CODE = "def parse(text):\n    tokens = text.split()\n    return tokens\n"
FIXED = "def parse(text):\n    tokens = text.split() if text else []\n    return tokens\n"
TEST = ("import sys\nsys.path.insert(0, 'src')\nfrom parser import parse\n\n"
        "def test_none():\n    assert parse(None) == []\n")


def _config(repo: GitRepo, extra: str = "") -> None:
    command = json.dumps(f"{sys.executable} -m pytest -q -p no:cacheprovider {{tests}}")
    repo.write(".dasct.toml", f"[qa]\ntest_command = {command}\ndefault_assignee = "
                              f"\"qa@example.com\"\n{extra}")


def _history(repo: GitRepo) -> tuple[str, str]:
    _config(repo)
    repo.commit("initial", {"src/parser.py": CODE})
    fix = repo.commit("PROJ-1: parse(None) crashed", {"src/parser.py": FIXED,
                                                     "tests/test_parser.py": TEST})
    return repo.head(), fix


def _requests(repo: GitRepo) -> list[dict[str, object]]:
    book = Ledger(git.discover(repo.path), "dasct-ledger", "")
    return [dict(r.data) for r in book.records("request")]


def test_record_files_one_request_per_touched_defect_with_evidence(repo: GitRepo) -> None:
    base, fix = _history(repo)
    good = repo.commit("say why", {"tests/test_parser.py": TEST.replace(
        "== []\n", "== [], 'None is no tokens'\n")})
    bad = repo.commit("simplify", {"src/parser.py": FIXED.replace(
        "text.split() if text else []", "text.strip().split()")})
    result = dasct(repo.path, "ci", "record", "--range", f"{base}..HEAD", "--format", "json")
    assert result.code == 0, result.err
    out = result.json()
    assert out["commits"] == 2 and [r["commit"] for r in out["requests"]] == [good, bad]
    assert out["sent"] == {"delivered": 2, "failed": 0, "waiting": 0}
    # The local tracker's tickets are filed in the requests' own ledger commit: none went
    # through the outbox, and no crash can fall between a request and its ticket.
    tip = repo.git("rev-parse", "dasct-ledger").strip()
    assert repo.git("rev-list", "--count", tip).strip() == "1"
    written = repo.git("diff-tree", "--root", "-r", "--name-only", "--no-commit-id",
                       tip).split()
    assert sorted(p.split("/")[0] for p in written) == ["cursor", "filed", "filed",
                                                          "request", "request"]
    with sqlite3.connect(repo.path / ".git" / "dasct" / "qa" / "outbox.sqlite") as db:
        assert db.execute("SELECT count(*) FROM outbox").fetchone() == (0,)
    by_commit = {r["commit"]: r for r in _requests(repo)}
    first, second = by_commit[good], by_commit[bad]
    ticket = first["ticket"]
    assert isinstance(ticket, dict)
    assert ticket["title"].startswith("Revalidate PROJ-1: ")
    assert "-    assert parse(None) == []    # protected: PROJ-1" in ticket["body"]
    assert "+    assert parse(None) == [], 'None is no tokens'" in ticket["body"]
    assert fix[:12] in ticket["body"] and "PROJ-1: parse(None) crashed" in ticket["body"]
    assert ticket["data"]["evidence"]["status"] == "passed"
    assert not ticket["probable_regression"]
    # The second change breaks the fix's test at the touching commit: flagged.
    bad_ticket = second["ticket"]
    assert isinstance(bad_ticket, dict)
    assert bad_ticket["data"]["evidence"]["status"] == "failed"
    assert bad_ticket["probable_regression"] and bad_ticket["title"].startswith(
        "[probable regression]")
    # Idempotent: the same and an overlapping range file nothing twice.
    again = dasct(repo.path, "ci", "record", "--range", f"{fix}..HEAD", "--format", "json")
    assert again.json()["requests"] == [] and again.json()["already_recorded"] == 2
    assert len(_requests(repo)) == 2
    # Without a range: after the last recorded commit.
    repo.commit("rename", {"tests/test_parser.py": TEST.replace(
        "== []\n", "== [], 'None is no tokens'\n").replace("test_none", "test_no_text")})
    resumed = dasct(repo.path, "ci", "record", "--format", "json").json()
    assert resumed["range"] == f"{bad}..HEAD" and resumed["commits"] == 1
    listed = dasct(repo.path, "qa", "list", "--format", "json").json()["open"]
    assert sorted(o["commit"] for o in listed) == sorted([good, bad, repo.head()])
    assert [t["tracker"] for t in listed[0]["tickets"]] == ["local"]


def test_the_first_record_needs_a_range(repo: GitRepo) -> None:
    _history(repo)
    result = dasct(repo.path, "ci", "record")
    assert result.code == 1
    assert result.err.strip() == ("dasct: ci record: nothing recorded on main yet: give the "
                                  "first range with --range A..B (e.g. the push's "
                                  "before..after)")


def test_accept_makes_the_new_lines_the_baseline(repo: GitRepo) -> None:
    base, fix = _history(repo)
    touch = repo.commit("tidy", {"src/parser.py": FIXED.replace(
        "if text else []", "if text is not None else []") + "# unrelated\n"})
    assert dasct(repo.path, "ci", "record", "--range", f"{base}..HEAD").code == 0
    accepted = dasct(repo.path, "qa", "accept", "PROJ-1", "--commit", touch[:10])
    assert accepted.code == 0, accepted.err
    assert "1 new line linked to it" in accepted.out
    assert dasct(repo.path, "qa", "list", "--format", "json").json()["open"] == []
    scan = dasct(repo.path, "scan", "--format", "json").json()["lines"]
    # Line 2 (the touching hunk) now protects PROJ-1 through the touching commit; the
    # commit's other new line (outside the touching hunk) protects nothing.
    assert [(x["line"], x["defects"]) for x in scan if x["path"] == "src/parser.py"] == [
        (2, ["PROJ-1"])]
    repo.write("src/parser.py", CODE)
    repo.git("add", "src/parser.py")
    assert dasct(repo.path, "index").code == 0
    staged = dasct(repo.path, "check", "--staged", "--format", "json").json()["findings"]
    assert [(f["defect"], f["line"], f["commit"]) for f in staged] == [("PROJ-1", 2, touch)]
    shown = dasct(repo.path, "show", "PROJ-1", "--format", "json").json()
    assert [r["type"] for r in shown["ledger"]] == ["request", "filed", "accept"]
    assert shown["ledger"][-1]["by"] == "Dev Eloper <dev@example.com>"
    none = dasct(repo.path, "qa", "accept", "PROJ-1", "--commit", fix)
    assert none.code == 1 and "touches no protected line of PROJ-1" in none.err


def test_reject_records_a_regression_and_tells_the_author(repo: GitRepo) -> None:
    base, _ = _history(repo)
    touch = repo.commit("simplify", {"src/parser.py": CODE},)
    assert dasct(repo.path, "ci", "record", "--range", f"{base}..HEAD").code == 0
    result = dasct(repo.path, "qa", "reject", "PROJ-1", "--commit", touch,
                   "--reason", "parse(None) crashes again")
    assert result.code == 0, result.err
    notices = (repo.path / ".git" / "dasct" / "qa-notices" / "notifications.jsonl")
    (notice,) = [json.loads(x) for x in notices.read_text().splitlines()]
    assert notice["recipients"] == ["dev@example.com"] and notice["kind"] == "regression"
    assert "parse(None) crashes again" in notice["body"]
    assert dasct(repo.path, "qa", "list", "--format", "json").json()["open"] == []
    shown = dasct(repo.path, "show", "PROJ-1").out
    assert "reject" in shown and "parse(None) crashes again" in shown


def test_two_ci_clones_share_one_ledger_through_a_bare_remote(repo: GitRepo,
                                                               tmp_path: Path) -> None:
    base, _ = _history(repo)
    repo.commit("simplify", {"src/parser.py": CODE})
    bare = tmp_path / "remote.git"
    repo.git("clone", "-q", "--bare", str(repo.path), str(bare))
    clones = []
    for name in ("ci1", "ci2"):
        clone = GitRepo(tmp_path / name, init=False)
        GitRepo(tmp_path).git("clone", "-q", str(bare), name)
        clones.append(clone)
    first = dasct(clones[0].path, "ci", "record", "--range", f"{base}..HEAD", "--format", "json")
    assert first.code == 0, first.err
    assert len(first.json()["requests"]) == 1
    # The second runner fetches the ledger first: the same push files nothing again.
    second = dasct(clones[1].path, "ci", "record", "--range", f"{base}..HEAD", "--format",
                   "json")
    assert second.code == 0, second.err
    assert second.json()["requests"] == [] and second.json()["already_recorded"] == 1
    fresh = GitRepo(tmp_path / "fresh", init=False)
    GitRepo(tmp_path).git("clone", "-q", str(bare), "fresh")
    listed = dasct(fresh.path, "qa", "list", "--format", "json").json()["open"]
    assert len(listed) == 1


def test_the_local_recorder_records_after_a_commit(repo: GitRepo) -> None:
    """[qa] record_post_commit: the refresh after a commit records it (not pushed)."""
    _history(repo)
    _config(repo, "record_post_commit = true\n")
    repo.commit("config")
    assert dasct(repo.path, "refresh").code == 0  # what the post-commit shim runs, detached
    assert _requests(repo) == []  # the config commit touched nothing
    touch = repo.commit("simplify", {"src/parser.py": CODE})
    assert dasct(repo.path, "refresh").code == 0
    assert [r["commit"] for r in _requests(repo)] == [touch]
    assert dasct(repo.path, "refresh").code == 0  # nothing new: nothing twice
    assert len(_requests(repo)) == 1


def test_a_tracker_that_is_down_keeps_its_tickets_waiting(repo: GitRepo) -> None:
    """The push is not failed: the request is in the ledger, its ticket waits with its
    reason, and a later flush sends it once the tracker is back."""
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base, _ = _history(repo)
    _config(repo, f'trackers = ["local", "webhook"]\n[qa.webhook]\n'
                  f'url = "http://127.0.0.1:{port}/hook"\ntimeout_seconds = 2.0\n')
    repo.commit("config")
    repo.commit("simplify", {"src/parser.py": CODE})
    result = dasct(repo.path, "ci", "record", "--range", f"{base}..HEAD", "--format", "json")
    assert result.code == 0, result.err
    out = result.json()
    assert len(out["requests"]) == 1 and out["sent"] == {"delivered": 1, "failed": 1,
                                                         "waiting": 1}
    (reason,) = out["waiting_because"]
    assert "webhook" in reason and f"127.0.0.1:{port}/hook" not in reason  # may hold a token
    book = Ledger(git.discover(repo.path), "dasct-ledger", "")
    assert [r.data["tracker"] for r in book.records("filed")] == ["local"]
    text = dasct(repo.path, "qa", "flush")
    assert text.code == 0 and "0 sent, 0 failed, 1 waiting" in text.out  # not due yet
    assert text.err.startswith("dasct: waiting: ")


def test_a_request_record_that_holds_no_ticket_is_left_out(repo: GitRepo) -> None:
    from dasct.ledger_record import Record

    _history(repo)
    Ledger(git.discover(repo.path), "dasct-ledger", "").append(
        [Record("request", {"key": "dasct-x", "defect": "PROJ-1", "ticket": "not one"})])
    listed = dasct(repo.path, "qa", "list", "--format", "json")
    assert listed.code == 0 and listed.json()["open"] == []
    assert "(request) does not hold a ticket: left out" in listed.err
    flushed = dasct(repo.path, "qa", "flush")
    assert flushed.code == 0 and "0 sent, 0 failed, 0 waiting" in flushed.out


def test_a_mass_rewrite_makes_a_ticket_a_tracker_takes(repo: GitRepo) -> None:
    """A commit rewriting 1,500 protected lines, one hunk each: the change shown is cut
    (Jira refuses a description over 32,767 characters) and names the commit; the ledger
    keeps the lines as ranges."""
    repo.write(".dasct.toml", "[qa]\n")
    repo.commit("initial", {"src/big.py": "".join(f"x{i} = {i}\n" for i in range(4000))})
    repo.commit("PROJ-5: every value off by one", {"src/big.py": "".join(
        f"x{i} = {i + 1 if i < 3000 else i}\n" for i in range(4000))})
    base = repo.head()
    touch = repo.commit("rename every other", {"src/big.py": "".join(
        f"{'y' if i % 2 == 0 else 'x'}{i} = {i + 1 if i < 3000 else i}\n"
        for i in range(4000))})
    result = dasct(repo.path, "ci", "record", "--range", f"{base}..HEAD", "--format", "json")
    assert result.code == 0, result.err
    (request,) = _requests(repo)
    ticket = request["ticket"]
    assert isinstance(ticket, dict)
    assert len(ticket["body"]) < 32_767
    assert f"the whole change is `git show {touch[:12]}`" in ticket["body"]
    assert ticket["data"]["lines"] == {"src/big.py": [[n, n] for n in range(1, 3000, 2)]}
    assert ticket["data"]["touched"] == 1500
    assert "changed 1500 protected lines" in ticket["title"]
