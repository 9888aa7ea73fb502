"""Shallow clones, grafts and replaced history: what dasct says must be what blame can know.

PRODUCT.md: a line whose origin lies beyond a shallow boundary has an unknown origin and
protects nothing; the boundary commit links only the lines it changed itself (in a clone
that lacks its parent, none can be shown to be its own); every command says in one line
that protection is incomplete. History changed under the same HEAD (unshallowed, grafted,
replaced) is a different history: the index follows it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dasct_run import dasct
from gitrepo import GitRepo

NOTICE = "shallow clone: protection is incomplete"
BASE = "".join(f"line {i}\n" for i in range(1, 9))


def lines(*changes: tuple[int, str]) -> str:
    out = [f"line {i}" for i in range(1, 9)]
    for n, text in changes:
        out[n - 1] = text
    return "".join(x + "\n" for x in out)


@pytest.fixture
def origin(repo: GitRepo) -> GitRepo:
    """x.py: line 2 fixed by PROJ-1 (oldest), line 5 by PROJ-2, line 7 by PROJ-3 (newest)."""
    repo.commit("initial", {"x.py": BASE, "y.py": "alpha\nbeta\n"})
    repo.commit("Fix PROJ-1", {"x.py": lines((2, "two fixed"))})
    repo.commit("Unrelated", {"y.py": "alpha\nBETA\n"})
    repo.commit("Fix PROJ-2", {"x.py": lines((2, "two fixed"), (5, "five fixed"))})
    repo.commit("Fix PROJ-3", {"x.py": lines((2, "two fixed"), (5, "five fixed"),
                                            (7, "seven fixed"))})
    return repo


def clone(origin: GitRepo, path: Path, *depth: str) -> GitRepo:
    target = GitRepo(path, init=False)
    GitRepo(path.parent, init=False).git("clone", "-q", *depth, f"file://{origin.path}",
                                         str(path))
    return target


def scan(repo: GitRepo) -> tuple[set[tuple[str, int, str]], str]:
    result = dasct(repo.path, "scan", "--format", "json")
    assert result.code == 0, result.err
    pairs = {(e["path"], e["line"], d) for e in result.json()["lines"] for d in e["defects"]}
    return pairs, result.err


def fix_commits(repo: GitRepo) -> dict[str, str]:
    """sha -> the defect of every "Fix KEY" commit here."""
    fixes = {}
    for line in repo.git("log", "--format=%H %s").splitlines():
        sha, subject = line.split(" ", 1)
        if subject.startswith("Fix "):
            fixes[sha] = subject[4:]
    return fixes


def blame_oracle(repo: GitRepo) -> set[tuple[str, int, str]]:
    """Protected pairs by plain blame: a boundary commit (^sha) is an unknown origin."""
    fixes = fix_commits(repo)
    pairs = set()
    for path in repo.git("ls-files").splitlines():
        out = repo.git("blame", "-w", "--porcelain", "HEAD", "--", path)
        current, number = "", 0
        boundary: set[str] = set()  # porcelain says "boundary" once per commit
        for text in out.splitlines():
            parts = text.split(" ")
            if len(parts) >= 3 and len(parts[0]) == 40 and parts[1].isdigit():
                current, number = parts[0], int(parts[2])
            elif text == "boundary":
                boundary.add(current)
            elif text.startswith("\t") and current in fixes and current not in boundary:
                pairs.add((path, number, fixes[current]))
    return pairs


def test_a_full_clone_has_every_fix(origin: GitRepo, tmp_path: Path) -> None:
    full = clone(origin, tmp_path / "full")
    pairs, err = scan(full)
    assert pairs == {("x.py", 2, "PROJ-1"), ("x.py", 5, "PROJ-2"), ("x.py", 7, "PROJ-3")}
    assert NOTICE not in err


def test_depth_one_on_a_fix_commit_protects_nothing_and_says_so(
    origin: GitRepo, tmp_path: Path
) -> None:
    shallow = clone(origin, tmp_path / "d1", "--depth", "1")
    pairs, err = scan(shallow)
    assert pairs == set() == blame_oracle(shallow)  # not "every line is PROJ-3's"
    assert err.count(NOTICE) == 1
    shallow.write("x.py", lines((1, "one changed"), (7, "seven changed")))
    shallow.git("add", "x.py")
    check = dasct(shallow.path, "check", "--staged", "--format", "json")
    assert check.code == 0 and check.json()["findings"] == []
    assert NOTICE in check.err


@pytest.mark.parametrize("depth", ["2", "3"])
def test_a_deeper_clone_agrees_with_blame(origin: GitRepo, tmp_path: Path, depth: str) -> None:
    shallow = clone(origin, tmp_path / f"d{depth}", "--depth", depth)
    pairs, err = scan(shallow)
    assert pairs == blame_oracle(shallow)
    assert ("x.py", 7, "PROJ-3") in pairs and ("x.py", 2, "PROJ-1") not in pairs
    assert NOTICE in err


def test_every_command_says_it_once(origin: GitRepo, tmp_path: Path) -> None:
    shallow = clone(origin, tmp_path / "d2", "--depth", "2")
    for args in (("scan",), ("index",), ("why", "x.py:7"), ("show", "PROJ-3"),
                 ("check", "--staged"), ("check", "--commit", "HEAD")):
        result = dasct(shallow.path, *args)
        assert result.err.count(NOTICE) == 1, (args, result.err)


def test_ci_fails_when_the_base_lies_beyond_the_boundary(origin: GitRepo, tmp_path: Path) -> None:
    shallow = clone(origin, tmp_path / "d1", "--depth", "1")
    for args in (("check", "--commit", "HEAD"), ("check", "--range", "HEAD~1..HEAD")):
        result = dasct(shallow.path, *args)
        assert result.code == 1, (args, result.out, result.err)
        (line,) = result.err.splitlines()
        assert NOTICE in line and "fetch" in line


def test_unshallowing_changes_the_answer_at_the_same_head(origin: GitRepo, tmp_path: Path) -> None:
    shallow = clone(origin, tmp_path / "d2", "--depth", "2")
    before, _ = scan(shallow)
    shallow.git("fetch", "-q", "--unshallow")
    after, err = scan(shallow)
    assert before != after
    assert after == {("x.py", 2, "PROJ-1"), ("x.py", 5, "PROJ-2"), ("x.py", 7, "PROJ-3")}
    assert NOTICE not in err


def test_a_graft_changes_the_answer_at_the_same_head(origin: GitRepo) -> None:
    before, _ = scan(origin)
    # Make "Fix PROJ-2" a root: PROJ-1's line now comes from beyond it, like a boundary.
    proj2 = origin.git("rev-parse", "HEAD~1").strip()
    origin.git("replace", "--graft", proj2)
    after, _ = scan(origin)
    assert after != before and after == blame_oracle_full(origin)
    origin.git("replace", "-d", proj2)
    assert scan(origin)[0] == before


def blame_oracle_full(repo: GitRepo) -> set[tuple[str, int, str]]:
    """Blame with replace refs honoured: a root commit owns what it has."""
    fixes = fix_commits(repo)
    pairs = set()
    for path in repo.git("ls-files").splitlines():
        for n, sha in enumerate(repo.blame(path), 1):
            if sha in fixes:
                pairs.add((path, n, fixes[sha]))
    return pairs


def test_index_json_says_shallow(origin: GitRepo, tmp_path: Path) -> None:
    shallow = clone(origin, tmp_path / "d2", "--depth", "2")
    result = dasct(shallow.path, "index", "--format", "json")
    assert json.loads(result.out)["shallow"] is True
