"""What the core commands print: closed pipes, hostile names, honest words, valid SARIF."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dasct_run import dasct
from gitrepo import GitRepo
from sarif_schema import validate_sarif
from test_check import BASE, lines


@pytest.fixture
def fixed(repo: GitRepo) -> GitRepo:
    """x.py: line 3 fixed by PROJ-7, line 4 by one commit naming PROJ-7 and PROJ-8."""
    repo.commit("initial", {"x.py": BASE, "CHANGELOG.md": "v1\n", "empty.txt": ""})
    repo.commit("Fix PROJ-7", {"x.py": lines((3, "fixed three")),
                               "CHANGELOG.md": "v1\nfixed PROJ-7\n"})
    repo.commit("Fix PROJ-7 and PROJ-8", {"x.py": lines((3, "fixed three"), (4, "four"))})
    return repo


# Item 6: a closed pipe ends the command quietly, as git does (exit 141, nothing on stderr).

def into_closed_pipe(cwd: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first byte: every write fails (EPIPE)
    try:
        return subprocess.run((sys.executable, "-m", "dasct", *args), cwd=cwd, stdout=write,
                              stderr=subprocess.PIPE, check=False, timeout=120)
    finally:
        os.close(write)


@pytest.mark.parametrize(("args", "code"), [
    (("scan",), 141), (("show", "PROJ-7"), 141), (("why", "x.py:3"), 141),
    (("check", "--commit", "HEAD"), 141), (("migrate", "status", "--env", "model"), 141),
    (("index",), 141),
    # The staged check fails open (it is the hook): quiet, and the commit goes on.
    (("check", "--format", "json"), 0), (("check", "--staged"), 0),
])
def test_a_closed_pipe_ends_the_command_quietly(
    fixed: GitRepo, args: tuple[str, ...], code: int
) -> None:
    fixed.write("x.py", BASE)
    fixed.git("add", "x.py")
    proc = into_closed_pipe(fixed.path, *args)
    assert (proc.returncode, proc.stderr) == (code, b"")
    assert not (fixed.path / ".git" / "dasct" / "crash.log").exists()


def test_scan_into_head(fixed: GitRepo) -> None:
    many = {f"pkg/m{i}.py": "a\nb\n" for i in range(3000)}
    fixed.commit("base of many", many)
    fixed.commit("Fix PROJ-9", {p: "a\nB\n" for p in many})  # far more than a pipe holds
    proc = subprocess.run(("bash", "-c", f"set -o pipefail; {sys.executable} -m dasct scan "
                           "| head -3"), cwd=fixed.path, capture_output=True, text=True,
                          check=False, timeout=300)
    assert proc.returncode == 141 and proc.stderr == "" and len(proc.stdout.splitlines()) == 3


# Item 7: names and subjects are quoted in text, as git quotes paths.

def test_names_and_subjects_are_quoted_in_text(repo: GitRepo) -> None:
    evil, accent = "evil\nx.py:1\tPROJ-666.py", "caf\u00e9.py"
    repo.commit("initial", {evil: BASE, accent: BASE})
    repo.commit("Fix PROJ-1 \x1b[2J\x1b[31mred", {evil: lines((2, "two")),
                                                   accent: lines((2, "two"))})
    scan = dasct(repo.path, "scan")
    assert scan.out.splitlines() == [
        '"caf\\303\\251.py":2\tPROJ-1\tcode', '"evil\\nx.py:1\\tPROJ-666.py":2\tPROJ-1\tcode']
    repo.write(evil, BASE)
    repo.write(accent, BASE)
    repo.git("add", "-A")
    check = dasct(repo.path, "check", "--staged")
    assert "\x1b" not in check.out and "PROJ-666" not in check.out.replace('\\tPROJ-666', '')
    assert '    "evil\\nx.py:1\\tPROJ-666.py":2\n' in check.out
    assert "Fix PROJ-1 \\033[2J\\033[31mred" in check.out
    show = dasct(repo.path, "show", "PROJ-1")
    assert "\x1b" not in show.out and '"caf\\303\\251.py":2' in show.out
    why = dasct(repo.path, "why", f"{accent}:2")
    assert why.out.startswith('"caf\\303\\251.py":2 protects PROJ-1') and "\x1b" not in why.out
    assert dasct(repo.path, "check", "--staged", "--format", "json").json()["findings"][0][
        "path"] == accent  # JSON keeps the name itself


# Item 16: messages say only what happens; counts agree with scan; words agree with numbers.

def test_the_warning_promises_nothing_that_does_not_happen(fixed: GitRepo) -> None:
    fixed.write("x.py", BASE)
    fixed.git("add", "x.py")
    text = dasct(fixed.path, "check", "--staged").out
    assert text.startswith("dasct: staged changes: lines that fixed 2 defects are changed; "
                           "the commit goes on.\n")
    assert "QA" not in text and "line numbers are those before the change" in text
    github = dasct(fixed.path, "check", "--staged", "--format", "github").out
    assert "QA" not in github


def test_annotations_say_which_numbering_is_which(fixed: GitRepo) -> None:
    text = lines((3, "fixed three"), (4, "four")).splitlines()
    text[0:0] = ["new 1", "new 2"]
    text[4] = "rewritten three"  # base line 3, new line 5
    fixed.write("x.py", "\n".join(text) + "\n")
    fixed.git("add", "x.py")
    sarif = json.loads(dasct(fixed.path, "check", "--staged", "--format", "sarif").out)
    (result,) = sarif["runs"][0]["results"]
    assert result["locations"][0]["physicalLocation"]["region"]["startLine"] == 5
    assert result["message"]["text"].startswith(
        "Line 3 of x.py before this change (line 5 after the change) fixed PROJ-7 (")
    fixed.git("rm", "-q", "--cached", "x.py")
    gone = dasct(fixed.path, "check", "--staged", "--format", "github").out
    assert "Lines 3-4 of x.py before this change (the change deletes the file)" in gone


def test_index_counts_agree_with_scan_and_across_rebuilds(fixed: GitRepo) -> None:
    scanned = len(dasct(fixed.path, "scan", "--format", "json").json()["lines"])
    rebuilt = dasct(fixed.path, "index", "--rebuild", "--format", "json").json()
    cached = dasct(fixed.path, "index", "--format", "json").json()
    assert rebuilt["action"] != cached["action"]
    for key in ("files", "lines", "protected_lines", "fix_commits"):
        assert rebuilt[key] == cached[key], key
    assert cached["protected_lines"] == scanned == 2  # CHANGELOG.md's fixed line is excluded
    assert cached["files"] == 2  # empty.txt has no lines
    fixed.commit("one fix only", {"y.py": "y\n"})
    text = dasct(fixed.path, "index").out
    assert "2 protected by 2 fix commits" in text
    single = GitRepo(fixed.path.parent / "single")
    single.commit("initial", {"a.py": "a\n"})
    single.commit("Fix PROJ-1", {"a.py": "A\n"})
    assert "1 file, 1 line, 1 protected by 1 fix commit;" in dasct(single.path, "index").out


# Item 24: SARIF is valid against the official schema, formats checked.

def test_the_format_checker_really_checks_uris() -> None:
    bad = {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "x"}}, "results": [
        {"message": {"text": "m"}, "locations": [{"physicalLocation": {
            "artifactLocation": {"uri": "a b%zz.py"}}}]}]}]}
    with pytest.raises(AssertionError, match="uri-reference"):
        validate_sarif(bad)


@pytest.mark.parametrize("name", ["plain.py", "with space.py", "100%.py", "a,b.py",
                                  "c:d.py", "caf\u00e9/\u00fcber.py", "q#1?.py"])
def test_sarif_is_valid_for_any_path(repo: GitRepo, name: str) -> None:
    repo.commit("initial", {name: BASE})
    repo.commit("Fix PROJ-1", {name: lines((2, "two"))})
    repo.write(name, BASE)
    repo.git("add", "-A")
    document = json.loads(dasct(repo.path, "check", "--staged", "--format", "sarif").out)
    validate_sarif(document)
    (result,) = document["runs"][0]["results"]
    uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(uri)  # a relative path: "c:" is no scheme, "#" no fragment, "?" no query
    assert (parts.scheme, parts.netloc, parts.query, parts.fragment) == ("", "", "", "")
    assert unquote(parts.path) == name


def test_an_empty_sarif_is_valid(fixed: GitRepo) -> None:
    validate_sarif(json.loads(dasct(fixed.path, "check", "--staged", "--format", "sarif").out))


# Item 25: the core commands' small lies and silences.

def test_a_check_that_finds_nothing_says_so_in_text_only(fixed: GitRepo) -> None:
    fixed.write("x.py", lines((3, "fixed three"), (4, "four")) + "appended\n")
    fixed.git("add", "x.py")
    assert dasct(fixed.path, "check").out == "dasct: staged changes: no protected lines touched\n"
    assert dasct(fixed.path, "check", "--format", "github").out == ""
    empty = {"findings": [], "not_reported": 0}
    assert dasct(fixed.path, "check", "--format", "json").json() == empty


def test_show_suggests_the_quoted_issue_key(repo: GitRepo) -> None:
    repo.commit("initial", {"x.py": BASE})
    repo.commit("Parser crash\n\nfixes #2208", {"x.py": lines((2, "two"))})
    result = dasct(repo.path, "show", "2208")
    assert result.code == 1
    assert "did you mean dasct show '#2208'?" in result.out
    assert dasct(repo.path, "show", "#2208").code == 0
    assert "quoted" in dasct(repo.path, "show", "--help").out


def test_scan_prints_one_row_for_a_line_of_two_defects(fixed: GitRepo) -> None:
    assert dasct(fixed.path, "scan").out.splitlines() == ["x.py:3\tPROJ-7\tcode",
                                                          "x.py:4\tPROJ-7, PROJ-8\tcode"]


def test_a_bad_option_shows_the_commands_usage(fixed: GitRepo) -> None:
    result = dasct(fixed.path, "check", "--bogus")
    assert result.code == 2
    assert result.err.startswith("usage: dasct check ")
    assert "dasct check: error: unrecognized arguments: --bogus" in result.err


def test_check_help_describes_format(fixed: GitRepo) -> None:
    out = " ".join(dasct(fixed.path, "check", "--help").out.split())
    assert "sarif, a SARIF 2.1.0 document" in out


def test_the_license_is_an_spdx_expression() -> None:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert project["project"]["license"] == "MIT"  # a table is deprecated (PEP 639)
