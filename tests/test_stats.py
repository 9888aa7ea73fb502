"""`dasct stats`, and the escapes from a bulk fix commit: `[defects] ignore_commits` and
`[defects] max_lines_per_commit`, held against the definition (git blame -w)."""

from __future__ import annotations

import pytest

from dasct_run import dasct
from gitrepo import GitRepo


def protected(repo: GitRepo) -> set[tuple[str, int, str]]:
    lines = dasct(repo.path, "scan", "--format", "json").json()["lines"]
    return {(x["path"], x["line"], d) for x in lines for d in x["defects"]}


def blamed(repo: GitRepo, path: str, links: dict[str, str]) -> set[tuple[str, int, str]]:
    """The definition: lines whose blame commit is a linked fix commit."""
    return {(path, n, links[sha]) for n, sha in enumerate(repo.blame(path), 1) if sha in links}


@pytest.fixture
def history(repo: GitRepo) -> tuple[GitRepo, dict[str, str]]:
    """A small fix, a bulk reorganisation naming a defect, and a fix of docs and tests."""
    repo.commit("initial", {"src/app.py": "a = 1\nb = 2\n"})
    small = repo.commit("Fix PROJ-1: b", {"src/app.py": "a = 1\nb = 3  # PROJ-1\n"})
    bulk = repo.commit("Reorganise the tests for PROJ-2", {
        "tests/test_app.py": "".join(f"def test_{i}():\n    assert {i}\n\n" for i in range(8)),
        "CHANGELOG.md": "".join(f"- entry {i}\n" for i in range(40)),
    })
    docs = repo.commit("Fix PROJ-3 in the docs", {
        "docs/app.md": "# App\n\nRun it.\n", "src/app.py": '"""App."""\na = 1\nb = 3  # PROJ-1\n',
    })
    return repo, {small: "PROJ-1", bulk: "PROJ-2", docs: "PROJ-3"}


def test_stats_counts_by_defect_kind_and_path_class(
    history: tuple[GitRepo, dict[str, str]]
) -> None:
    repo, links = history
    stats = dasct(repo.path, "stats", "--format", "json").json()
    bulk = next(sha for sha, d in links.items() if d == "PROJ-2")
    assert stats["lines"] == 24 + 3 + 1 + 1  # 8 tests of 3 lines, docs, docstring, b
    assert stats["by_class"] == {"source": 2, "tests": 24, "docs": 3}
    # tests: 8 blank separators, 16 code; docs (plain text): 1 blank; a docstring; b.
    assert stats["by_kind"] == {"code": 16 + 2 + 1, "comment": 1, "blank": 8 + 1, "import": 0}
    assert stats["commits"][0] == {"commit": bulk, "lines": 24, "defects": ["PROJ-2"],
                                   "subject": "Reorganise the tests for PROJ-2"}
    assert [d["defect"] for d in stats["by_defect"]] == ["PROJ-2", "PROJ-3", "PROJ-1"]
    text = dasct(repo.path, "stats").out
    assert "29 protected lines in 3 files" in text
    assert f"     24  {bulk[:12]}  PROJ-2  Reorganise the tests for PROJ-2" in text


def test_stats_path_classes_are_configurable(history: tuple[GitRepo, dict[str, str]]) -> None:
    repo, _ = history
    repo.write(".dasct.toml", '[stats]\ntests = ["*.md"]\ndocs = []\n')
    stats = dasct(repo.path, "stats", "--format", "json").json()
    assert stats["by_class"] == {"source": 26, "tests": 3, "docs": 0}


@pytest.mark.parametrize("abbrev", [7, 12, 40])
def test_an_ignored_commit_links_nothing(
    history: tuple[GitRepo, dict[str, str]], abbrev: int
) -> None:
    repo, links = history
    before = protected(repo)  # the index exists before the setting: it must relink
    bulk = next(sha for sha, d in links.items() if d == "PROJ-2")
    repo.write(".dasct.toml", f'[defects]\nignore_commits = ["{bulk[:abbrev].upper()}"]\n')
    kept = {sha: d for sha, d in links.items() if sha != bulk}
    expected = set().union(*(blamed(repo, p, kept) for p in
                             ("src/app.py", "tests/test_app.py", "docs/app.md")))
    assert protected(repo) == expected
    assert {x for x in before if x[2] == "PROJ-2"} and not any(
        x[2] == "PROJ-2" for x in expected)
    repo.write("tests/test_app.py", "changed\n")
    repo.git("add", "-A")
    assert dasct(repo.path, "check", "--format", "json", "--all").json()["findings"] == []


@pytest.mark.parametrize("value", ['"abc12"', '"not-a-sha1"', "[1]"])
def test_a_bad_ignored_commit_is_one_line(repo: GitRepo, value: str) -> None:
    repo.commit("initial", {"x.py": "a\n", ".dasct.toml": f"[defects]\nignore_commits = [{value}]\n"
                            if value != "[1]" else "[defects]\nignore_commits = [[1]]\n"})
    result = dasct(repo.path, "scan")
    assert result.code != 0
    (line,) = result.err.strip().splitlines()
    assert "`defects.ignore_commits[0]`" in line and ".dasct.toml" in line


@pytest.mark.parametrize(("limit", "linked"), [
    (0, {"PROJ-1", "PROJ-2", "PROJ-3"}),  # no limit
    (24, {"PROJ-1", "PROJ-2", "PROJ-3"}),  # the bulk commit adds exactly 24 (CHANGELOG excluded)
    (23, {"PROJ-1", "PROJ-3"}),
    (4, {"PROJ-1", "PROJ-3"}),  # PROJ-3 adds 3 docs lines and the docstring
    (3, {"PROJ-1"}),
])
def test_a_fix_commit_above_the_size_limit_links_nothing(
    history: tuple[GitRepo, dict[str, str]], limit: int, linked: set[str]
) -> None:
    repo, links = history
    protected(repo)
    repo.write(".dasct.toml", f"[defects]\nmax_lines_per_commit = {limit}\n")
    kept = {sha: d for sha, d in links.items() if d in linked}
    expected = set().union(*(blamed(repo, p, kept) for p in
                             ("src/app.py", "tests/test_app.py", "docs/app.md")))
    assert protected(repo) == expected


def test_whitespace_only_changes_do_not_count_towards_the_limit(repo: GitRepo) -> None:
    body = "".join(f"x{i} = {i}\n" for i in range(10))
    repo.commit("initial", {"m.py": body})
    repo.commit("Fix PROJ-9", {"m.py": body.replace(" = ", "  =  ") + "y = 1\n"})
    repo.write(".dasct.toml", "[defects]\nmax_lines_per_commit = 1\n")
    assert protected(repo) == {("m.py", 11, "PROJ-9")}
