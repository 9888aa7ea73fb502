"""Ledger links (link, unlink, accept) protect exactly the lines blame carries from them.

The oracle is real `git blame -w --line-porcelain` at HEAD: a line is protected by K when
its origin commit names K (a fix commit) or a ledger record links that commit's line
(origin path and origin line number, as blame reports them) to K, minus the records that
unlink it — the last record naming a (line, defect) wins. The index must say the same,
line for line, rebuilt and updated, on generated histories with renames and merges.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from dasct import git, index, settings
from dasct.ledger import Ledger
from dasct.ledger_record import Record
from dasct_run import dasct
from gitrepo import GitRepo
from test_index_oracle import History

KEY = re.compile(r"PROJ-[0-9]+")


def origins(repo: GitRepo, path: str) -> list[tuple[str, str, int]]:
    """(origin commit, path there, line there) of every line of path at HEAD."""
    out = repo.git("-c", "blame.ignoreRevsFile=", "blame", "-w", "--line-porcelain", "HEAD",
                   "--", path)
    found: list[tuple[str, str, int]] = []
    sha, line = "", 0
    for text in out.split("\n"):
        parts = text.split(" ")
        if len(parts) >= 3 and len(parts[0]) == 40 and parts[1].isdigit():
            sha, line = parts[0], int(parts[1])
        elif text.startswith("filename "):
            found.append((sha, text[9:], line))
    return found


def expected(repo: GitRepo, records: list[Record]) -> dict[tuple[str, int], set[str]]:
    """The protected lines at HEAD by the rule, from blame and the records."""
    keys: dict[str, set[str]] = {}
    for sha in repo.git("rev-list", "HEAD").split():
        keys[sha] = set(KEY.findall(repo.git("log", "-1", "--format=%B", sha)))
    out: dict[tuple[str, int], set[str]] = {}
    for path in repo.git("ls-files").split():
        for n, (sha, where, line) in enumerate(origins(repo, path), 1):
            defects = set(keys.get(sha, set()))
            for r in records:  # oldest first: the last naming (line, defect) wins
                d = r.data
                spans = (d["lines"].get(where, []) if r.type == "accept"
                         else d["lines"] if d["path"] == where else [])
                if d["commit"] == sha and any(a <= line <= b for a, b in spans):
                    if r.type == "unlink":
                        defects.discard(d["defect"])
                    else:
                        defects.add(d["defect"])
            if defects:
                out[(path, n)] = defects
    return out


def scanned(repo: GitRepo) -> dict[tuple[str, int], set[str]]:
    result = dasct(repo.path, "scan", "--format", "json")
    assert result.code == 0, result.err
    return {(x["path"], x["line"]): set(x["defects"]) for x in result.json()["lines"]}


def _snapshot(repo: GitRepo, **kw: bool) -> index.Snapshot:
    r = git.discover(repo.path)
    return index.snapshot_at(r, settings.load(r), r.head, **kw)


def _random_records(repo: GitRepo, rng: random.Random, count: int) -> list[Record]:
    """Links, unlinks and accepts of random lines of random commits, in their coordinates."""
    records = []
    shas = repo.git("rev-list", "HEAD").split()
    for _ in range(count):
        sha = rng.choice(shas)
        files = [p for p in repo.git("ls-tree", "-r", "--name-only", sha).split()]
        if not files:
            continue
        path = rng.choice(files)
        size = len(repo.git("show", f"{sha}:{path}").splitlines())
        if not size:
            continue
        a = rng.randint(1, size)
        b = min(size, a + rng.randint(0, 4))
        defect = f"PROJ-{rng.randint(1, 12)}"
        kind = rng.choice(["link", "link", "unlink", "accept"])
        if kind == "accept":
            records.append(Record("accept", {"defect": defect, "commit": sha,
                                             "lines": {path: [[a, b]]}}))
        else:
            records.append(Record(kind, {"defect": defect, "commit": sha, "path": path,
                                         "lines": [[a, b]]}))
    return records


@pytest.mark.parametrize("seed", range(6))
def test_ledger_links_protect_what_blame_carries(repo: GitRepo, seed: int) -> None:
    history = History(repo, 500 + seed)
    history.commit()
    for _ in range(8):
        if history.rng.random() < 0.3:
            history.merge()
        else:
            history.commit()
    book = Ledger(git.discover(repo.path), "dasct-ledger", "")
    records = book.append(_random_records(repo, history.rng, 10))
    assert scanned(repo) == expected(repo, records)
    # The history grows past the links: an update replays with the same links.
    for _ in range(4):
        history.commit()
    assert scanned(repo) == expected(repo, records)
    # More links: the index is replayed with them (the ledger's fingerprint moved).
    records += book.append(_random_records(repo, history.rng, 6))
    assert scanned(repo) == expected(repo, records)
    snap = _snapshot(repo, rebuild=True)
    assert snap.lines.fp == book.links_fingerprint() != ""


def test_the_commit_time_check_reads_the_index_as_it_is(repo: GitRepo) -> None:
    """The hook never asks the ledger (its cost must not follow it); the next command
    that does, or a refresh, replays with the new links."""
    repo.commit("add", {"a.txt": "one\ntwo\nthree\n"})
    sha = repo.commit("fix\n\nPROJ-1", {"a.txt": "one\nTWO\nthree\n"})
    assert dasct(repo.path, "index").code == 0
    Ledger(git.discover(repo.path), "dasct-ledger", "").append([Record(
        "link", {"defect": "PROJ-2", "commit": sha, "path": "a.txt", "lines": [[2, 2]]})])
    repo.write("a.txt", "one\n2\nthree\n")
    repo.git("add", "a.txt")
    staged = dasct(repo.path, "check", "--staged", "--format", "json").json()
    assert [f["defect"] for f in staged["findings"]] == ["PROJ-1"]
    assert dasct(repo.path, "refresh").code == 0
    staged = dasct(repo.path, "check", "--staged", "--format", "json").json()
    assert sorted(f["defect"] for f in staged["findings"]) == ["PROJ-1", "PROJ-2"]
    # Both findings name the commit that owns the line, not the alias the index made.
    assert {f["commit"] for f in staged["findings"]} == {sha}


def test_link_and_unlink_commands(repo: GitRepo) -> None:
    first = repo.commit("add", {"a.py": "".join(f"line {i}\n" for i in range(1, 9))})
    fix = repo.commit("Fixes PROJ-3", {"a.py": "".join(
        f"line {i}{' fixed' if i in (4, 5) else ''}\n" for i in range(1, 9))})
    # Lines 2-5 at HEAD: 2-3 are the first commit's, 4-5 the fix's.
    result = dasct(repo.path, "link", "PROJ-9", "a.py:2-5", "--no-push")
    assert result.code == 0, result.err
    assert "owned by 2 commits" in result.out
    assert scanned(repo) == {("a.py", 2): {"PROJ-9"}, ("a.py", 3): {"PROJ-9"},
                             ("a.py", 4): {"PROJ-3", "PROJ-9"},
                             ("a.py", 5): {"PROJ-3", "PROJ-9"}}
    # scan says where each line's protection comes from: its commit, and the ledger.
    lines = {x["line"]: x for x in dasct(repo.path, "scan", "--format", "json").json()["lines"]}
    assert (lines[2]["commit"], lines[2]["ledger"]) == (first, ["PROJ-9"])
    assert (lines[4]["commit"], sorted(lines[4]["defects"]), lines[4]["ledger"]) == (
        fix, ["PROJ-3", "PROJ-9"], ["PROJ-9"])
    assert dasct(repo.path, "unlink", "PROJ-3", "a.py:5", "--no-push").code == 0
    assert scanned(repo)[("a.py", 5)] == {"PROJ-9"}
    why = dasct(repo.path, "why", "a.py:2", "--format", "json").json()
    assert why["commit"] == first and why["defects"] == ["PROJ-9"]
    assert why["origin"] == "linked in the ledger to PROJ-9"
    shown = dasct(repo.path, "show", "PROJ-9", "--format", "json").json()
    assert {c["commit"] for c in shown["commits"]} == {first, fix}
    assert [r["type"] for r in shown["ledger"]] == ["link", "link"]
    bad = dasct(repo.path, "link", "PROJ-9", "a.py:7-99", "--no-push")
    assert bad.code == 1 and len(bad.err.strip().splitlines()) == 1
    assert "a.py:7-99" in bad.err


def test_a_damaged_ledger_record_is_left_out_with_one_line(repo: GitRepo, tmp_path: Path
                                                           ) -> None:
    repo.commit("add", {"a.txt": "one\ntwo\n"})
    sha = repo.head()
    book = Ledger(git.discover(repo.path), "dasct-ledger", "")
    book.append([Record("link", {"defect": "PROJ-2", "commit": sha, "path": "a.txt",
                                 "lines": [[2, 1]]})])  # an empty range: not a link
    result = dasct(repo.path, "scan", "--format", "json")
    assert result.code == 0 and result.json()["lines"] == []
    assert "does not name a defect, a commit and lines: left out" in result.err


def test_the_last_record_wins_within_one_second(repo: GitRepo) -> None:
    """A link and the unlink right after it: the ledger keeps their order (its times
    have microseconds), so the line ends unprotected, and linked again after a re-link."""
    sha = repo.commit("add", {"a.txt": "one\ntwo\n"})
    book = Ledger(git.discover(repo.path), "dasct-ledger", "")
    link = {"defect": "PROJ-2", "commit": sha, "path": "a.txt", "lines": [[1, 2]]}
    for kind in ("link", "unlink", "link", "unlink"):
        book.append([Record(kind, link)])
    assert scanned(repo) == {}
    book.append([Record("link", {**link, "lines": [[2, 2]]})])
    assert scanned(repo) == {("a.txt", 2): {"PROJ-2"}}


def test_a_link_change_replays_from_before_the_commit_it_names(
        repo: GitRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    """Checkpoints and snapshots older than every commit whose links changed still hold:
    the index replays from the nearest of them, not the whole history."""
    from dasct import index_checkpoints

    monkeypatch.setattr(index_checkpoints, "MIN_SPACING", 3)
    monkeypatch.setattr(index_checkpoints, "MAX_CHECKPOINTS", 8)
    history = History(repo, 77)
    for _ in range(24):
        history.commit()
    snap = _snapshot(repo, rebuild=True)
    assert snap.stats["kind"] == 2
    book = Ledger(git.discover(repo.path), "dasct-ledger", "")
    recent = repo.git("rev-parse", "HEAD~2").strip()
    path = repo.git("diff-tree", "--no-commit-id", "--name-only", "-r", recent).split()[0]
    size = len(repo.git("show", f"{recent}:{path}").splitlines())
    records = book.append([Record("link", {"defect": "PROJ-42", "commit": recent,
                                           "path": path, "lines": [[1, size]]})])
    snap = _snapshot(repo)
    assert snap.stats["kind"] == 1 and 0 < snap.stats["commits"] <= 8, snap.stats
    assert scanned(repo) == expected(repo, records)
    # HEAD's own snapshot holds when the link names a commit HEAD does not contain.
    repo.git("checkout", "-q", "-b", "side", "HEAD~5")
    history.commit()
    side = repo.head()
    repo.git("checkout", "-q", "main")
    _snapshot(repo)
    records += book.append([Record("link", {"defect": "PROJ-43", "commit": side,
                                            "path": path, "lines": [[1, 1]]})])
    snap = _snapshot(repo)
    assert snap.stats["kind"] == 1 and snap.stats["commits"] == 0, snap.stats
    assert snap.lines.fp == book.links_fingerprint()
    assert scanned(repo) == expected(repo, records)
