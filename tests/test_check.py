"""Findings: the semantics of PRODUCT.md, through the real CLI on real repositories."""

from __future__ import annotations

import json

import pytest

from dasct_run import dasct
from gitrepo import GitRepo
from sarif_schema import validate_sarif

BASE = "".join(f"line {i}\n" for i in range(1, 11))


def lines(*changes: tuple[int, str]) -> str:
    out = [f"line {i}" for i in range(1, 11)]
    for n, text in changes:
        out[n - 1] = text
    return "".join(x + "\n" for x in out)


@pytest.fixture
def fixed(repo: GitRepo) -> GitRepo:
    """x.py with lines 3-4 fixed by PROJ-7 and line 4 also by PROJ-8; line 8 by #12."""
    repo.commit("initial", {"x.py": BASE, "CHANGELOG.md": "v1\n"})
    repo.commit("Fix crash PROJ-7", {"x.py": lines((3, "fixed three"), (4, "fixed four")),
                                     "CHANGELOG.md": "v1\nfixed PROJ-7\n"})
    repo.commit("Harden PROJ-8 too", {"x.py": lines((3, "fixed three"), (4, "fixed four"))})
    # Linking PROJ-8 to line 4 needs a commit that rewrites line 4 naming both.
    repo.commit("Rewrite for PROJ-8 and PROJ-7",
                {"x.py": lines((3, "fixed three"), (4, "fixed FOUR"))})
    repo.commit("Squash merge of a feature (#99)\n\nfixes #12",
                {"x.py": lines((3, "fixed three"), (4, "fixed FOUR"), (8, "eight fixed"))})
    return repo


def staged_findings(repo: GitRepo) -> list[tuple[str, str, int]]:
    result = dasct(repo.path, "check", "--staged", "--format", "json")
    assert result.code == 0, result.err
    return [(f["defect"], f["path"], f["line"]) for f in result.json()["findings"]]


def test_rewriting_a_protected_line_touches_every_defect_on_it(fixed: GitRepo) -> None:
    fixed.write("x.py", lines((3, "fixed three"), (4, "changed"), (8, "eight fixed")))
    fixed.git("add", "x.py")
    assert staged_findings(fixed) == [("PROJ-7", "x.py", 4), ("PROJ-8", "x.py", 4)]


def test_json_contract_has_the_linked_commit(fixed: GitRepo) -> None:
    fixed.write("x.py", lines((3, "changed"), (4, "fixed FOUR"), (8, "eight fixed")))
    fixed.git("add", "x.py")
    result = dasct(fixed.path, "check", "--staged", "--format", "json")
    (finding,) = result.json()["findings"]
    assert finding == {
        "defect": "PROJ-7", "path": "x.py", "line": 3,
        "commit": fixed.git("rev-parse", "HEAD~3").strip(),
        "after_path": "x.py", "after_line": 3, "kind": "code",
    }


def test_pure_insertion_next_to_protected_lines_touches_nothing(fixed: GitRepo) -> None:
    text = lines((3, "fixed three"), (4, "fixed FOUR"), (8, "eight fixed")).splitlines()
    text.insert(3, "inserted between 3 and 4")
    fixed.write("x.py", "\n".join(text) + "\n")
    fixed.git("add", "x.py")
    assert staged_findings(fixed) == []


def test_whitespace_only_change_touches_nothing(fixed: GitRepo) -> None:
    fixed.write("x.py", lines((3, "  fixed   three"), (4, "fixed FOUR\t"), (8, "eight fixed")))
    fixed.git("add", "x.py")
    assert staged_findings(fixed) == []


def test_github_closing_keyword_is_a_defect_and_pr_number_is_not(fixed: GitRepo) -> None:
    fixed.write("x.py", lines((3, "fixed three"), (4, "fixed FOUR"), (8, "eight again")))
    fixed.git("add", "x.py")
    assert staged_findings(fixed) == [("#12", "x.py", 8)]


def test_deleting_the_file_touches_all_its_protected_lines(fixed: GitRepo) -> None:
    fixed.git("rm", "-q", "x.py")
    found = staged_findings(fixed)
    assert ("PROJ-7", "x.py", 3) in found and ("#12", "x.py", 8) in found
    assert len(found) == 4


def test_excluded_paths_are_never_reported(fixed: GitRepo) -> None:
    fixed.write("CHANGELOG.md", "rewritten\n")
    fixed.git("add", "CHANGELOG.md")
    assert staged_findings(fixed) == []


def test_rename_with_edit_reports_the_old_path(fixed: GitRepo) -> None:
    fixed.git("mv", "x.py", "y.py")
    fixed.write("y.py", lines((3, "changed"), (4, "fixed FOUR"), (8, "eight fixed")))
    fixed.git("add", "y.py")
    assert staged_findings(fixed) == [("PROJ-7", "x.py", 3)]


def test_text_output_groups_lines_and_names_the_fix(fixed: GitRepo) -> None:
    fixed.write("x.py", lines((3, "a"), (4, "b"), (8, "eight fixed")))
    fixed.git("add", "x.py")
    result = dasct(fixed.path, "check", "--staged")
    assert result.code == 0
    assert "PROJ-7" in result.out and "x.py:3-4" in result.out
    assert "Fix crash PROJ-7" in result.out and "git show" in result.out


def test_strict_mode_fails_only_on_a_touch(fixed: GitRepo) -> None:
    assert dasct(fixed.path, "check", "--staged", "--strict").code == 0
    fixed.write("x.py", lines((3, "a"), (4, "fixed FOUR"), (8, "eight fixed")))
    fixed.git("add", "x.py")
    assert dasct(fixed.path, "check", "--staged", "--strict").code == 1
    fixed.write(".dasct.toml", "[check]\nstrict = true\n")
    assert dasct(fixed.path, "check", "--staged").code == 1


def test_check_commit_and_range(fixed: GitRepo) -> None:
    fixed.commit("touch it", {"x.py": lines((3, "a"), (4, "fixed FOUR"), (8, "eight fixed"))})
    by_commit = dasct(fixed.path, "check", "--commit", "HEAD", "--format", "json").json()
    assert [f["defect"] for f in by_commit["findings"]] == ["PROJ-7"]
    by_range = dasct(fixed.path, "check", "--range", "HEAD~1..HEAD", "--format", "json").json()
    assert by_range == by_commit
    root = dasct(fixed.path, "check", "--commit", "HEAD~5", "--format", "json").json()
    assert root == {"findings": [], "not_reported": 0}


def test_configured_patterns_and_jira_projects(repo: GitRepo) -> None:
    repo.write(".dasct.toml", '[defects]\npatterns = [\'BUG(?P<key>\\d+)\']\n'
                              'jira_projects = ["LANG"]\ngithub = false\n')
    repo.commit("initial", {"x.py": BASE})
    repo.commit("BUG42 and LANG-3, fixes #5, UTF-8", {"x.py": lines((2, "two fixed"))})
    repo.write("x.py", BASE)
    repo.git("add", "x.py")
    assert sorted(d for d, _, _ in staged_findings(repo)) == ["42", "LANG-3"]


@pytest.mark.parametrize(
    "message",
    ["Use UTF-8 everywhere", "Switch to SHA-256", "Latin ISO-8859-1", "Patch CVE-2021-44228",
     "Squash merge (#123)"],
)
def test_default_patterns_ignore_false_keys(repo: GitRepo, message: str) -> None:
    repo.commit("initial", {"x.py": BASE})
    repo.commit(message, {"x.py": lines((2, "two"))})
    repo.write("x.py", BASE)
    repo.git("add", "x.py")
    assert staged_findings(repo) == []


def test_bad_config_names_file_and_key_but_lets_the_commit_through(fixed: GitRepo) -> None:
    fixed.write(".dasct.toml", "[check]\nstrikt = true\n")
    result = dasct(fixed.path, "check", "--staged")
    assert result.code == 0
    assert ".dasct.toml" in result.err and "check.strikt" in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert dasct(fixed.path, "scan").code == 1


def test_skip_variable(fixed: GitRepo) -> None:
    fixed.write("x.py", "gone\n")
    fixed.git("add", "x.py")
    result = dasct(fixed.path, "check", "--staged", "--strict", env={"DASCT_SKIP": "1"})
    assert result.code == 0 and "skipped" in result.err


def test_scan_why_show(fixed: GitRepo) -> None:
    scan = dasct(fixed.path, "scan", "--format", "json").json()

    def blamed(n: int) -> str:
        return fixed.git("blame", "-w", "--porcelain", f"-L{n},{n}", "x.py").split()[0]

    assert scan == {"lines": [
        {"path": "x.py", "line": 3, "defects": ["PROJ-7"], "kind": "code",
         "commit": blamed(3), "ledger": []},
        {"path": "x.py", "line": 4, "defects": ["PROJ-8", "PROJ-7"], "kind": "code",
         "commit": blamed(4), "ledger": []},
        {"path": "x.py", "line": 8, "defects": ["#12"], "kind": "code",
         "commit": blamed(8), "ledger": []},
    ]}
    why = dasct(fixed.path, "why", "x.py:4")
    assert why.code == 0 and "PROJ-8" in why.out and "+fixed FOUR" in why.out
    assert dasct(fixed.path, "why", "x.py:1").code == 1
    show = dasct(fixed.path, "show", "PROJ-7", "--format", "json").json()
    assert len(show["commits"]) == 2
    assert show["lines"] == [{"path": "x.py", "line": 3}, {"path": "x.py", "line": 4}]


def test_annotations_point_into_the_new_version(fixed: GitRepo) -> None:
    text = lines((3, "fixed three"), (4, "fixed FOUR"), (8, "eight rewritten")).splitlines()
    text[0:0] = ["new first line", "new second line"]  # shifts everything by two
    fixed.git("mv", "x.py", "moved.py")
    fixed.write("moved.py", "\n".join(text) + "\n")
    fixed.git("add", "moved.py")
    (finding,) = dasct(fixed.path, "check", "--staged", "--format", "json").json()["findings"]
    assert (finding["path"], finding["line"]) == ("x.py", 8)
    assert (finding["after_path"], finding["after_line"]) == ("moved.py", 10)
    github = dasct(fixed.path, "check", "--staged", "--format", "github").out
    assert github.startswith("::warning file=moved.py,line=10,title=Touches #12::")
    sarif = json.loads(dasct(fixed.path, "check", "--staged", "--format", "sarif").out)
    validate_sarif(sarif)
    (result,) = sarif["runs"][0]["results"]
    assert result["locations"][0]["physicalLocation"]["region"]["startLine"] == 10
    assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "moved.py"
    assert sarif["version"] == "2.1.0"


def test_sarif_without_findings_is_an_empty_run(fixed: GitRepo) -> None:
    sarif = json.loads(dasct(fixed.path, "check", "--staged", "--format", "sarif").out)
    validate_sarif(sarif)
    assert sarif["runs"][0]["results"] == []
