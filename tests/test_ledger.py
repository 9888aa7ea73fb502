"""The ledger (dasct.ledger): real git, real clones of a real bare remote, real processes."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dasct import git
from dasct import ledger as ledger_mod
from dasct.ledger import Ledger
from dasct.ledger_record import LedgerError, Record
from dasct_run import dasct
from gitrepo import GitRepo

SECRET = "tok-9f8e7d6c5b4a-very-secret"


def _clone(remote: Path, where: Path) -> GitRepo:
    subprocess.run(("git", "clone", "-q", str(remote), str(where)), check=True,
                   capture_output=True)
    return GitRepo(where, init=False)


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    """A bare remote holding one commit on main (a team's repository)."""
    bare = tmp_path / "remote.git"
    subprocess.run(("git", "init", "-q", "--bare", "-b", "main", str(bare)), check=True)
    seed = GitRepo(tmp_path / "seed")
    seed.commit("initial", {"a.py": "x = 1\n"})
    seed.git("push", "-q", str(bare), "main")
    return bare


def _ledger(repo: GitRepo) -> Ledger:
    return Ledger(git.discover(repo.path))


def _facts(ledger: Ledger) -> set[tuple[str, str]]:
    return {(r.type, str(r.data.get("n"))) for r in ledger.records()}


def test_round_trip_fills_at_and_by(repo: GitRepo) -> None:
    repo.commit("initial", {"a.py": "x\n"})
    ledger = _ledger(repo)
    assert ledger.tip() is None and ledger.records() == []
    stored = ledger.append([Record("link", {"defect": "P-1", "path": "a.py", "lines": [1, 2]}),
                            Record("owner", {"defect": "P-1", "owner": "qa@example.com"},
                                   at="2026-01-02T03:04:05Z", by="ci")])
    assert len(stored[0].at) == 27 and stored[0].by == "Dev Eloper <dev@example.com>"
    assert (stored[1].at, stored[1].by) == ("2026-01-02T03:04:05Z", "ci")
    assert sorted(ledger.records(), key=lambda r: r.id) == sorted(stored, key=lambda r: r.id)
    assert ledger.records() == sorted(stored, key=lambda r: (r.at, r.id))  # oldest first
    assert ledger.records("owner") == [stored[1]]
    assert ledger.records("accept") == []
    path = repo.git("ls-tree", "-r", "--name-only", "dasct-ledger").split()
    assert sorted(path) == sorted(f"{r.type}/{r.id[:2]}/{r.id}.json" for r in stored)


def test_order_mixes_seconds_and_microseconds(repo: GitRepo) -> None:
    """A time in seconds sorts as .000000: before the same second's later microseconds."""
    repo.commit("initial")
    ledger = _ledger(repo)
    ledger.append([Record("link", {"n": 2}, at="2026-01-01T00:00:05.000001Z"),
                   Record("link", {"n": 1}, at="2026-01-01T00:00:05Z"),
                   Record("link", {"n": 3}, at="2026-01-01T00:00:06Z")])
    first, second = ledger.append([Record("link", {"n": 4})]), ledger.append(
        [Record("unlink", {"n": 5})])
    assert first[0].at < second[0].at  # one writer's records keep their order
    assert [r.data["n"] for r in ledger.records()] == [1, 2, 3, 4, 5]


def test_actor_from_environment(repo: GitRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    repo.commit("initial")
    monkeypatch.setenv("GITHUB_ACTOR", "octocat")
    assert _ledger(repo).append([Record("request", {"n": 1})])[0].by == "octocat"
    monkeypatch.setenv("DASCT_ACTOR", "release-bot")
    assert _ledger(repo).append([Record("request", {"n": 2})])[0].by == "release-bot"


def test_no_identity_configured(repo: GitRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    """A CI runner often has no git identity: the ledger still commits."""
    repo.commit("initial")
    for who in ("AUTHOR", "COMMITTER"):
        for what in ("NAME", "EMAIL"):
            monkeypatch.delenv(f"GIT_{who}_{what}")
    monkeypatch.delenv("EMAIL", raising=False)
    repo.git("config", "user.useConfigOnly", "true")
    assert repo.git("var", "GIT_COMMITTER_IDENT", check=False) == ""
    ledger = _ledger(repo)
    assert ledger.append([Record("cursor", {"commit": "abc"})])[0].by == "unknown"
    assert repo.git("log", "-1", "--format=%an <%ae>", "dasct-ledger").strip() == (
        "dasct <dasct@localhost>")


def test_trees_are_canonical(repo: GitRepo, tmp_path: Path) -> None:
    """Appends rebuild only the directories they touch: the result is the tree git itself
    would write for the same files, and fsck finds nothing wrong."""
    repo.commit("initial")
    ledger = _ledger(repo)
    written = []
    # New directories, existing ones, a batch big enough to be a pack.
    for step, size in enumerate((1, 40, 3, 300, 1)):
        batch = [Record(("link", "accept", "owner")[i % 3], {"n": f"{step}-{i}"})
                 for i in range(size)]
        written += ledger.append(batch)
    files = repo.git("ls-tree", "-r", "--name-only", "dasct-ledger").split()
    assert sorted(files) == sorted(r.path for r in written)
    env = {"GIT_INDEX_FILE": str(tmp_path / "index")}
    repo.git("read-tree", "dasct-ledger", env=env)
    assert repo.git("write-tree", env=env) == repo.git("rev-parse", "dasct-ledger^{tree}")
    repo.git("fsck", "--strict", "--no-dangling")


def test_append_is_idempotent(repo: GitRepo) -> None:
    repo.commit("initial")
    ledger = _ledger(repo)
    fact = Record("filed", {"key": "k1", "ticket": "QA-9"}, at="2026-03-01T00:00:00Z", by="ci")
    ledger.append([fact, fact])
    tip = ledger.tip()
    assert ledger.append([fact]) == [fact]
    assert ledger.tip() == tip  # nothing new: no commit
    assert ledger.records() == [fact]
    assert int(repo.git("rev-list", "--count", "dasct-ledger")) == 1
    # Each append is one fast-import, ended cleanly even when it had nothing to commit:
    # no crash report, no half-written pack.
    git_dir = repo.path / ".git"
    assert not list(git_dir.glob("fast_import_crash_*"))
    assert not list((git_dir / "objects" / "pack").glob("tmp_*"))


def test_an_append_that_fails_midway_writes_nothing(repo: GitRepo,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A record whose redaction fails after git has been given earlier ones: the branch
    does not move and git leaves nothing behind."""
    from dasct import redact

    repo.commit("initial")
    ledger = _ledger(repo)
    ledger.append([Record("request", {"n": 0})])
    tip = ledger.tip()
    real = redact.scrub
    calls = []

    def scrub(value: object, *args: object, **kwargs: object) -> object:
        calls.append(value)
        if len(calls) == 3:
            raise KeyboardInterrupt  # Ctrl-C in the middle of a long append
        return real(value, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(redact, "scrub", scrub)
    with pytest.raises(KeyboardInterrupt):
        ledger.append([Record("request", {"n": n}) for n in range(1, 6)])
    assert ledger.tip() == tip and [r.data for r in ledger.records()] == [{"n": 0}]
    git_dir = repo.path / ".git"
    assert not list(git_dir.glob("fast_import_crash_*"))
    assert not list((git_dir / "objects" / "pack").glob("tmp_*"))
    repo.git("fsck", "--no-dangling", "--no-progress")  # the repository is sound


def test_loose_objects_are_packed_past_the_limit(repo: GitRepo,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    repo.commit("initial")
    monkeypatch.setattr(ledger_mod, "LOOSE_LIMIT", 12)
    ledger = _ledger(repo)
    counts = []
    for n in range(8):  # each append of one writes ~5 loose objects (blob, 3 trees, commit)
        ledger.append([Record("request", {"n": n})])
        counts.append(int(repo.git("count-objects").split()[0]))
    assert max(counts) < 12 + 6 and min(counts[2:]) < counts[1] + 6
    assert "packs: 0" not in repo.git("count-objects", "-v")
    assert len(ledger.records()) == 8


def test_packing_takes_the_ledgers_objects_only(repo: GitRepo,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the limit the ledger packs what its branch reaches, not the repository's own
    loose objects (walking every ref for those would cost what the repository costs)."""
    repo.commit("initial", {f"loose{i}.txt": f"user blob {i}\n" for i in range(20)})
    # The user's history, loose as git commit leaves it (repack -d would pack it).
    mine = repo.git("ls-tree", "--object-only", "HEAD").split()
    monkeypatch.setattr(ledger_mod, "LOOSE_LIMIT", 12)
    ledger = _ledger(repo)
    ledger.append([Record("request", {"n": n}) for n in range(3)])
    objects = repo.path / ".git" / "objects"
    assert all((objects / b[:2] / b[2:]).is_file() for b in mine)  # still loose, untouched
    tip = ledger.tip()
    assert tip is not None and not (objects / tip[:2] / tip[2:]).exists()  # packed
    assert len(ledger.records()) == 3


@pytest.mark.parametrize(("record", "message"), [
    (Record("Link", {}), "type 'Link' must match"),
    (Record("link", {"lines": {1, 2}}), "data.lines is a set, not JSON"),
    (Record("link", {"x": float("nan")}), "data.x is nan"),
    (Record("link", {"x": {3: "a"}}), "data.x has a key 3 that is not a string"),
    (Record("link", {}, at="2026-01-02 03:04:05"), "not an ISO 8601 UTC time"),
    (Record("link", {}, at="2026-02-30T03:04:05Z"), "not an ISO 8601 UTC time"),
    (Record("link", {}, at="2026-01-02T03:04:05.12Z"), "not an ISO 8601 UTC time"),
    (Record("link", {}, by="a\nb"), "must be one line"),
])
def test_bad_record_writes_nothing(repo: GitRepo, record: Record, message: str) -> None:
    repo.commit("initial")
    ledger = _ledger(repo)
    with pytest.raises(LedgerError, match="ledger record 2") as err:
        ledger.append([Record("owner", {"ok": True}), record])
    assert message in str(err.value) and "\n" not in str(err.value)
    assert ledger.tip() is None


def test_union_after_plain_fetch_and_fresh_clone(remote: Path, tmp_path: Path) -> None:
    a, b = _clone(remote, tmp_path / "a"), _clone(remote, tmp_path / "b")
    la, lb = _ledger(a), _ledger(b)
    la.append([Record("link", {"n": 1}), Record("owner", {"n": 2})])
    la.push()
    lb.append([Record("accept", {"n": 3})])
    b.git("fetch", "-q")  # a plain fetch, default refspec
    assert _facts(lb) == {("link", "1"), ("owner", "2"), ("accept", "3")}
    lb.push()  # diverged: a merge commit with both tips as parents
    parents = b.git("log", "-1", "--format=%P", "dasct-ledger").split()
    assert len(parents) == 2
    fresh = _clone(remote, tmp_path / "c")
    fresh.git("fetch", "-q", "origin")
    assert fresh.git("branch", "--list").split() == ["*", "main"]  # no local ledger branch
    assert _facts(_ledger(fresh)) == {("link", "1"), ("owner", "2"), ("accept", "3")}


def test_fetch_of_a_remote_without_ledger_is_quiet(remote: Path, tmp_path: Path) -> None:
    a = _clone(remote, tmp_path / "a")
    _ledger(a).fetch()
    assert _ledger(a).records() == []


def _state(repo: GitRepo) -> tuple[str, ...]:
    index = (repo.path / ".git" / "index").read_bytes()
    return (repo.git("status", "--porcelain=v2", "--branch", "--untracked-files=all"),
            repo.git("stash", "list", "--format=%H %s"), repo.git("symbolic-ref", "HEAD"),
            repo.head(), hashlib.sha256(index).hexdigest(), (repo.path / "a.py").read_text())


def test_user_state_untouched_under_hostile_config(remote: Path, tmp_path: Path) -> None:
    a = _clone(remote, tmp_path / "a")
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    marker = tmp_path / "hook-ran"
    for name in ("pre-push", "pre-commit", "commit-msg", "post-commit", "reference-transaction"):
        hook = hooks / name
        hook.write_text(f"#!/bin/sh\necho {name} >> {marker}\nexit 1\n")
        hook.chmod(0o755)
    a.write("a.py", "x = 2\n")
    a.git("stash", "-q")
    a.write("a.py", "x = 3\n")
    a.write("new.py", "staged\n")
    a.git("add", "new.py")
    a.write("untracked.txt", "u\n")
    a.git("config", "core.hooksPath", str(hooks))
    a.git("config", "commit.gpgsign", "true")
    a.git("config", "gpg.program", "false")  # any signing attempt fails
    a.git("config", "push.gpgSign", "true")
    before = _state(a)
    ledger = _ledger(a)
    ledger.append([Record("link", {"n": 1})])
    ledger.push()
    ledger.fetch()
    assert _state(a) == before
    assert not marker.exists()
    assert ledger.records()[0].data == {"n": 1}
    remote_log = subprocess.run(("git", "-C", str(remote), "log", "--format=%G?", "dasct-ledger"),
                                capture_output=True, text=True, check=True).stdout
    assert remote_log.split() == ["N"]  # pushed, unsigned


def test_private_index_under_a_hook_environment(repo: GitRepo, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Hooks run with GIT_INDEX_FILE set: the ledger's writes never go into it."""
    repo.commit("initial", {"a.py": "x\n"})
    alt = tmp_path / "alt-index"
    repo.git("read-tree", "HEAD", env={"GIT_INDEX_FILE": str(alt)})
    before = alt.read_bytes()
    monkeypatch.setenv("GIT_INDEX_FILE", str(alt))
    _ledger(repo).append([Record("link", {"n": 1})])
    assert alt.read_bytes() == before
    assert repo.git("ls-tree", "-r", "--name-only", "dasct-ledger").startswith("link/")


def test_checked_out_ledger_branch_is_refused(repo: GitRepo, tmp_path: Path) -> None:
    repo.commit("initial")
    ledger = _ledger(repo)
    ledger.append([Record("link", {"n": 1})])
    repo.git("worktree", "add", "-q", str(tmp_path / "other"), "dasct-ledger")
    tip = ledger.tip()
    with pytest.raises(LedgerError, match=f"is checked out in {tmp_path / 'other'}"):
        ledger.append([Record("link", {"n": 2})])
    assert ledger.tip() == tip
    repo.git("worktree", "remove", str(tmp_path / "other"))
    ledger.append([Record("link", {"n": 2})])
    assert len(ledger.records()) == 2


def test_types_are_whole_names(repo: GitRepo) -> None:
    repo.commit("initial")
    ledger = _ledger(repo)
    ledger.append([Record("link", {"n": 1}), Record("link-note", {"n": 2}),
                   Record("linked", {"n": 3})])
    assert [r.data for r in ledger.records("link")] == [{"n": 1}]
    assert {r.type for r in ledger.records("link-note", "linked")} == {"link-note", "linked"}


WRITER = """
import sys, time
from dasct import git
from dasct import ledger as ledger_mod
from dasct.ledger import Ledger
from dasct.ledger_record import Record
name, start = sys.argv[1], float(sys.argv[2])
ledger = Ledger(git.discover())
while time.time() < start:
    time.sleep(0.005)
shared = Record("filed", {"key": "same-fact"}, at="2026-05-01T00:00:00Z", by="ci")
for i in range(30):
    ledger.append([Record("request", {"n": f"{name}-{i}"})] + ([shared] if i == 7 else []))
    if i % 5 == 4:
        ledger.push()
ledger.push()
"""


def test_two_concurrent_writers_lose_nothing(remote: Path, tmp_path: Path) -> None:
    clones = [_clone(remote, tmp_path / name) for name in ("w1", "w2")]
    start = time.time() + 1.5  # both processes are up before either writes
    procs = [subprocess.Popen((sys.executable, "-c", WRITER, c.path.name, str(start)),
                              cwd=c.path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for c in clones]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    fresh = _clone(remote, tmp_path / "fresh")
    records = _ledger(fresh).records()
    expected = {f"{w}-{i}" for w in ("w1", "w2") for i in range(30)}
    assert {r.data["n"] for r in records if r.type == "request"} == expected
    assert [r.data for r in records if r.type == "filed"] == [{"key": "same-fact"}]
    assert len(records) == 61


LOCAL_WRITER = """
import sys, time
from dasct import git
from dasct.ledger import Ledger
from dasct.ledger_record import Record
name, start = sys.argv[1], float(sys.argv[2])
ledger = Ledger(git.discover())
while time.time() < start:
    time.sleep(0.005)
for i in range(20):
    ledger.append([Record("request", {"n": f"{name}-{i}"})])
"""


def test_two_writers_in_one_clone_lose_nothing(repo: GitRepo) -> None:
    """The branch moves by compare-and-swap: the loser of a race re-reads and retries."""
    repo.commit("initial")
    start = time.time() + 1.5
    procs = [subprocess.Popen((sys.executable, "-c", LOCAL_WRITER, name, str(start)),
                              cwd=repo.path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for name in ("p1", "p2")]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    assert {r.data["n"] for r in _ledger(repo).records()} == {
        f"{p}-{i}" for p in ("p1", "p2") for i in range(20)}


def _commit_blob(repo: GitRepo, path: str, content: bytes) -> str:
    """Put one file into the ledger branch with plumbing, as a damaged or hostile writer
    would; returns the new ledger commit."""
    blob = subprocess.run(("git", "hash-object", "-w", "--stdin"), cwd=repo.path, input=content,
                          capture_output=True, check=True).stdout.decode().strip()
    with tempfile.TemporaryDirectory() as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp, "index"))}
        repo.git("read-tree", "dasct-ledger", env=env)
        repo.git("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env=env)
        tree = repo.git("write-tree", env=env).strip()
    commit = repo.git("commit-tree", tree, "-p", "dasct-ledger", "-m", "damage").strip()
    repo.git("update-ref", "refs/heads/dasct-ledger", commit)
    return commit


def test_damaged_record_is_skipped_with_one_line(repo: GitRepo,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    repo.commit("initial")
    ledger = _ledger(repo)
    good = ledger.append([Record("link", {"n": 1})])[0]
    _commit_blob(repo, "link/ab/" + "ab" * 32 + ".json", b"{not json")
    forged = Record("accept", {"n": 2}, at="2026-01-01T00:00:00Z", by="x")
    commit = _commit_blob(repo, "accept/00/" + "0" * 64 + ".json", forged.canonical())
    assert ledger.records() == [good]
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2
    bad_json = next(line for line in err if "not valid JSON" in line)
    assert commit[:12] in bad_json and "link/ab/" in bad_json and bad_json.endswith("skipped")
    assert any("does not match its name" in line for line in err)
    ledger.append([Record("link", {"n": 3})])  # a damaged ledger still takes records
    assert {r.data["n"] for r in ledger.records("link")} == {1, 3}


def test_secret_never_reaches_the_ledger(repo: GitRepo,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    repo.commit("initial")
    monkeypatch.setenv("DASCT_JIRA_TOKEN", SECRET)
    monkeypatch.setenv("DASCT_ACTOR", f"bot {SECRET}")
    ledger = _ledger(repo)
    stored = ledger.append([Record("filed", {"url": f"https://jira/?t={SECRET}",
                                             SECRET: [f"x{SECRET}y"]})])
    assert SECRET not in repr(stored) and SECRET not in repr(ledger.records())
    objects = subprocess.run(("git", "cat-file", "--batch-all-objects", "--batch"),
                             cwd=repo.path, capture_output=True, check=True).stdout
    assert b"[redacted]" in objects and SECRET.encode() not in objects
    with pytest.raises(LedgerError) as err:
        ledger.append([Record("filed", {"k": {SECRET}})])  # a set: refused, message redacted
    assert SECRET not in str(err.value)


def test_push_gives_up_naming_the_remote_and_keeps_records(remote: Path,
                                                          tmp_path: Path) -> None:
    (remote / "hooks").mkdir(exist_ok=True)
    hook = remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho busy >&2\nexit 1\n")
    hook.chmod(0o755)
    a = _clone(remote, tmp_path / "a")
    ledger = _ledger(a)
    ledger.append([Record("link", {"n": 1})])
    with pytest.raises(LedgerError, match="could not push dasct-ledger to origin after 2 "
                       r"attempts \(last: \[remote rejected\] \(pre-receive hook declined\)\)"):
        ledger.push(attempts=2)
    assert _facts(ledger) == {("link", "1")}


def test_unreachable_remote_is_one_line(repo: GitRepo) -> None:
    repo.commit("initial")
    repo.git("remote", "add", "origin", str(repo.path / "nowhere.git"))
    with pytest.raises(LedgerError, match="could not fetch dasct-ledger from origin") as err:
        _ledger(repo).fetch()
    assert "\n" not in str(err.value) and "nowhere.git" in str(err.value)
    with pytest.raises(LedgerError, match="could not push dasct-ledger to origin: ") as err:
        ledger = _ledger(repo)
        ledger.append([Record("link", {"n": 1})])
        ledger.push()
    assert "\n" not in str(err.value) and "-c" not in str(err.value)
    repo.git("remote", "set-url", "origin", f"https://qa:{SECRET}@127.0.0.1:9/r.git")
    with pytest.raises(LedgerError, match="could not fetch") as err:
        _ledger(repo).fetch()
    assert SECRET not in str(err.value) and "127.0.0.1" in str(err.value)


def test_links_fingerprint(remote: Path, tmp_path: Path) -> None:
    a, b = _clone(remote, tmp_path / "a"), _clone(remote, tmp_path / "b")
    la, lb = _ledger(a), _ledger(b)
    assert la.links_fingerprint() == ""
    la.append([Record("owner", {"n": 0})])
    assert la.links_fingerprint() == ""
    la.append([Record("link", {"n": 1})])
    first = la.links_fingerprint()
    assert first
    la.append([Record("owner", {"n": 2}), Record("request", {"n": 3})])
    assert la.links_fingerprint() == first  # other types do not count
    la.push()
    b.git("fetch", "-q")
    assert lb.links_fingerprint() == first  # the same links, seen through the remote
    lb.append([Record("unlink", {"n": 4})])
    second = lb.links_fingerprint()
    assert second != first
    lb.push()
    a.git("fetch", "-q")
    assert la.links_fingerprint() not in ("", first)  # a remote accept/unlink shows
    lb.append([Record("accept", {"n": 5})])
    assert lb.links_fingerprint() not in (first, second)


def test_git_calls_do_not_grow_with_the_ledger(remote: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading is ls-tree per tip and one cat-file, whatever the number of records;
    the fingerprint is one call."""
    a, b = _clone(remote, tmp_path / "a"), _clone(remote, tmp_path / "b")
    calls: list[str] = []
    real = git.run

    def counted(*args: str, **kwargs: object) -> bytes:
        calls.append(next(x for x in args if not x.startswith("-") and "=" not in x))
        return real(*args, **kwargs)  # type: ignore[arg-type]

    counts, written = [], 0
    for size in (3, 300):
        _ledger(b).append([Record("link", {"n": f"{size}-{i}"}) for i in range(size)])
        _ledger(b).push()
        a.git("fetch", "-q")
        _ledger(a).append([Record("accept", {"n": f"{size}-local"})])  # two tips differ
        monkeypatch.setattr(git, "run", counted)
        written += size + 1
        assert len(_ledger(a).records()) == written
        written += 1  # the owner below
        records_calls = list(calls)
        calls.clear()
        _ledger(a).links_fingerprint()
        assert calls == ["cat-file"]
        calls.clear()
        _ledger(a).append([Record("owner", {"n": size})])
        counts.append((records_calls, list(calls)))
        calls.clear()
        monkeypatch.setattr(git, "run", real)
    assert counts[0] == counts[1]
    assert counts[0][0] == ["for-each-ref", "ls-tree", "ls-tree", "cat-file"]


def test_cli_log_push_fetch(remote: Path, tmp_path: Path) -> None:
    a = _clone(remote, tmp_path / "a")
    assert "holds no records" in dasct(a.path, "ledger", "log").out
    _ledger(a).append([Record("link", {"n": 1}, at="2026-01-01T00:00:00Z"),
                       Record("owner", {"n": 2}, at="2026-01-02T00:00:00Z")])
    result = dasct(a.path, "ledger", "push")
    assert result.code == 0 and "pushed to origin" in result.out
    b = _clone(remote, tmp_path / "b")
    assert dasct(b.path, "ledger", "fetch").code == 0
    records = dasct(b.path, "ledger", "log", "--format", "json").json()["records"]
    assert [(r["type"], r["data"]) for r in records] == [("link", {"n": 1}), ("owner", {"n": 2})]
    assert set(records[0]) == {"id", "type", "at", "by", "data"}
    text = dasct(b.path, "ledger", "log", "--type", "owner").out.splitlines()
    assert len(text) == 1 and text[0].startswith("2026-01-02T00:00:00Z") and '"n": 2' in text[0]
    bad = dasct(b.path, "ledger", "log", "--type", "Bad")
    assert bad.code == 1 and len(bad.err.strip().splitlines()) == 1


# (operation, clone, facts): an append writes the given facts; the same fact (with the
# same at and by) may be written in both clones, and must then be one record.
OPS = st.lists(st.tuples(st.sampled_from(("append", "push", "fetch")), st.integers(0, 1),
                         st.lists(st.integers(0, 9), min_size=1, max_size=3)), max_size=7)


def _fact(k: int) -> Record:
    return Record("link" if k % 2 else "accept", {"n": k}, at="2026-06-01T00:00:00Z", by="ci")


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_any_interleaving_converges_to_the_union(tmp_path: Path, ops: list) -> None:
    base = Path(tempfile.mkdtemp(dir=tmp_path))
    bare = base / "remote.git"
    subprocess.run(("git", "init", "-q", "--bare", str(bare)), check=True)
    clones = [_clone(bare, base / f"c{i}") for i in range(2)]
    ledgers = [_ledger(c) for c in clones]
    written: set[int] = set()
    for op, who, facts in ops:
        if op == "append":
            ledgers[who].append([_fact(k) for k in facts])
            written |= set(facts)
        elif op == "push":
            ledgers[who].push()
        else:
            ledgers[who].fetch()
    for ledger in ledgers + ledgers:  # each pushes its union, then each sees the other's
        ledger.push()
        ledger.fetch()
    for ledger in ledgers:
        records = ledger.records()
        assert sorted(r.data["n"] for r in records) == sorted(written)  # once each
        assert records == sorted(records, key=lambda r: (r.at, r.id))
