"""Line kinds (src/dasct/kinds.py): the scanner's rules, Pygments as its oracle, and what
check, why and scan report by kind through the real CLI."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dasct import kinds
from dasct_run import dasct
from gitrepo import GitRepo
from kinds_oracle import agreement, oracle

JAVA = """package org.example;

import java.util.List;
import static java.util.Objects.requireNonNull;

/**
 * Javadoc of A: http://example.com/x.
 */
public class A { // a trailing comment
    private String s = "http://not/a/comment"; /* trailing */
    /* leading */ int x;

    int f() {
        // a whole-line comment
        return x; /* opens
        still inside
        */
    }
}
"""
JAVA_KINDS = ["import", "blank", "import", "import", "blank", "comment", "comment", "comment",
              "code", "code", "code", "blank", "code", "comment", "code", "comment", "comment",
              "blank", "blank"]

PYTHON = '''"""Module docstring.

Second paragraph.
"""
from os import (
    path,
    sep,
)
import sys


def f():
    """One-line docstring."""
    text = "# not a comment"
    # a comment
    return (
        text,
    )
'''
PYTHON_KINDS = ["comment", "blank", "comment", "comment", "import", "import", "import",
                "blank", "import", "blank", "blank", "code", "comment", "code", "comment",
                "code", "code", "blank"]


def kinds_of(path: str, text: str) -> list[str]:
    found = kinds.classify(path, text.encode())
    return [found[n] for n in range(1, len(found) + 1)]


@pytest.mark.parametrize(("path", "text", "expected"), [
    ("src/A.java", JAVA, JAVA_KINDS),
    ("a.py", PYTHON, PYTHON_KINDS),
    ("main.go", 'package main\n\nimport (\n\t"fmt"\n)\n\nvar s = `a\n// in a raw string\n`\n',
     ["import", "blank", "import", "import", "blank", "blank", "code", "code", "code"]),
    ("x.c", '#include <stdio.h>\n#define N 1\n  }\n', ["import", "code", "blank"]),
    ("run.sh", 'echo $# # count\n# whole\nx="#a"\n', ["code", "comment", "code"]),
    ("conf.yaml", "# c\nkey: value # c\nurl: http://x#frag\n", ["comment", "code", "code"]),
    ("q.sql", "-- c\nselect '--' from t; -- x\n/* a\nb */\n", ["comment", "code", "comment",
                                                             "comment"]),
    ("pom.xml", "<a>\n<!-- c\n  d -->\n</a>\n", ["code", "comment", "comment", "code"]),
    ("README", "text\n\n  });\n", ["code", "blank", "blank"]),
    ("Makefile", "all:\n\t# recipe comment\n", ["code", "comment"]),
])
def test_examples(path: str, text: str, expected: list[str]) -> None:
    assert kinds_of(path, text) == expected


@pytest.mark.parametrize(("path", "text"), [("src/A.java", JAVA), ("a.py", PYTHON)])
def test_pygments_agrees_on_the_examples(path: str, text: str) -> None:
    assert agreement(path, text.encode()) == []
    assert [oracle(path, text)[n] for n in range(1, text.count("\n") + 1)] == kinds_of(path,
                                                                                      text)


# Fragments of C-family and Python files whose kinds both scanner and oracle know.
C_FRAGMENTS = [
    "int {name} = {n};", "// {words}", "/* {words} */", "/**\n * {words}\n */", "}}", "",
    "import a.{name};", 'String {name} = "{words} // not /* a comment";',
    "call({name}); // {words}", "/* {words}\n   {words}\n*/ int {name};", "  }});",
    "char c = '/';", "#include <{name}.h>",
]
PY_FRAGMENTS = [
    "{name} = {n}", "# {words}", '"""{words}"""', '"""{words}\n\n{words}\n"""', ")", "",
    "import {name}", "from {name} import {name}", 's = "{words} # not a comment"',
    "{name}({n})  # {words}", "x = '''{words}\n# inside a string\n'''",
]
names = st.from_regex(r"[a-z][a-z0-9]{0,6}", fullmatch=True).filter(
    lambda s: s not in {"import", "from", "package", "in", "if", "is", "or", "as", "def",
                        "for", "not", "and", "use", "del", "try", "with"})
words = st.lists(st.from_regex(r"[a-z]{1,6}", fullmatch=True), min_size=1, max_size=4).map(
    " ".join)


def _file(fragments: list[str], picks: list[tuple[int, str, str, int]]) -> str:
    return "".join(fragments[i].format(name=nm, words=w, n=n) + "\n" for i, nm, w, n in picks)


def _picks(count: int) -> st.SearchStrategy[list[tuple[int, str, str, int]]]:
    return st.lists(st.tuples(st.integers(0, count - 1), names, words, st.integers(0, 99)),
                    max_size=25)


@settings(max_examples=60, deadline=None)
@given(picks=_picks(len(C_FRAGMENTS)), ext=st.sampled_from(["java", "c", "kt", "scala"]))
def test_generated_c_family_files_agree_with_pygments(
    picks: list[tuple[int, str, str, int]], ext: str
) -> None:
    text = _file(C_FRAGMENTS, picks)
    # An import in the language's own words: #include in C, import in the others.
    text = (text.replace("import a.", "int a_") if ext == "c"
            else text.replace("#include", "// include"))
    assert agreement(f"src/F.{ext}", text.encode()) == []


@settings(max_examples=60, deadline=None)
@given(picks=_picks(len(PY_FRAGMENTS)))
def test_generated_python_files_agree_with_pygments(
    picks: list[tuple[int, str, str, int]]
) -> None:
    assert agreement("m.py", _file(PY_FRAGMENTS, picks).encode()) == []


@settings(deadline=None)  # the machine is shared: no per-example deadline
@given(inner=st.text(st.sampled_from("ab /*\"'#\n"), max_size=40), code=names)
def test_a_string_holding_comment_markers_is_code_and_opens_nothing(
    inner: str, code: str
) -> None:
    literal = inner.replace("\\", "").replace('"', "").replace("\n", " ")
    text = f'x = "{literal}";\nint {code} = 1;\n'
    assert kinds_of("F.java", text) == ["code", "code"]
    py = f'x = "{literal}"\n{code} = 1\n'
    assert kinds_of("f.py", py) == ["code", "code"]


@settings(deadline=None)  # the machine is shared: no per-example deadline
@given(body=st.lists(st.text(st.sampled_from("ab */{}/\t"), max_size=12), max_size=8))
def test_every_line_of_a_block_comment_is_comment_or_blank(body: list[str]) -> None:
    # Nested markers: "/*" inside a block comment does not nest, "*/" ends it.
    lines = [b.replace("*/", "* /") for b in body]
    text = "/*\n" + "".join(x + "\n" for x in lines) + "*/\nint x;\n"
    got = kinds_of("F.c", text)
    assert got[-1] == "code"
    for line, kind in zip(["/*", *lines, "*/"], got, strict=False):
        assert kind == ("blank" if not line.strip() else "comment"), (line, kind)


@settings(deadline=None)  # the machine is shared: no per-example deadline
@given(picks=_picks(len(C_FRAGMENTS)), data=st.data())
def test_asking_for_some_lines_answers_as_for_all(
    picks: list[tuple[int, str, str, int]], data: st.DataObject
) -> None:
    text = _file(C_FRAGMENTS, picks).encode()
    every = kinds.classify("F.java", text)
    some = data.draw(st.sets(st.sampled_from(sorted(every)))) if every else set()
    assert kinds.classify("F.java", text, some) == {n: every[n] for n in some}


# Through the CLI: what check, why and scan report by kind.

FIXED = "import os\n\n\ndef f():\n    # why: the crash\n    return os.sep\n"


@pytest.fixture
def fixed(repo: GitRepo) -> GitRepo:
    """x.py whose import, blank, comment and code lines were all written by PROJ-1."""
    repo.commit("initial", {"x.py": "a = 1\n"})
    repo.commit("Fix PROJ-1", {"x.py": FIXED})
    return repo


def test_check_reports_code_by_default_and_every_kind_with_all(fixed: GitRepo) -> None:
    fixed.write("x.py", "import sys\n\n\ndef f():\n    # the crash, reworded\n    return 1\n")
    fixed.git("add", "x.py")
    result = dasct(fixed.path, "check", "--format", "json")
    assert [(f["line"], f["kind"]) for f in result.json()["findings"]] == [(6, "code")]
    assert result.json()["not_reported"] == 2
    every = dasct(fixed.path, "check", "--format", "json", "--all").json()
    assert [(f["line"], f["kind"]) for f in every["findings"]] == [
        (1, "import"), (5, "comment"), (6, "code")]
    text = dasct(fixed.path, "check").out
    assert "x.py:6\n" in text
    assert "(2 touched comment/import lines not reported; --all)" in text


def test_a_comment_only_touch_warns_nowhere_and_blocks_nothing(fixed: GitRepo) -> None:
    fixed.write("x.py", FIXED.replace("the crash", "the crash, reworded"))
    fixed.git("add", "x.py")
    result = dasct(fixed.path, "check", "--strict")
    assert result.code == 0
    assert result.out == ("dasct: staged changes: no reported protected lines touched "
                          "(1 touched comment line not reported; --all)\n")
    assert dasct(fixed.path, "check", "--format", "github").out == ""
    sarif = json.loads(dasct(fixed.path, "check", "--format", "sarif").out)
    assert sarif["runs"][0]["results"] == []
    assert dasct(fixed.path, "check", "--strict", "--all").code == 1


def test_check_kinds_in_the_config_choose(fixed: GitRepo) -> None:
    fixed.write(".dasct.toml", '[check]\nkinds = ["comment", "import"]\n')
    fixed.write("x.py", "import sys\n\n\ndef f():\n    # reworded\n    return 1\n")
    fixed.git("add", "x.py")
    found = dasct(fixed.path, "check", "--format", "json").json()["findings"]
    assert [(f["line"], f["kind"]) for f in found] == [(1, "import"), (5, "comment")]


def test_check_commit_classifies_the_base_version(fixed: GitRepo) -> None:
    # The commit turns line 6 into a comment: the touched line was code at the base.
    fixed.commit("rework", {"x.py": FIXED.replace("return os.sep", "# return os.sep")})
    found = dasct(fixed.path, "check", "--commit", "HEAD", "--format", "json").json()
    assert [(f["line"], f["kind"]) for f in found["findings"]] == [(6, "code")]


def test_a_bad_kind_in_the_config_is_one_line(fixed: GitRepo) -> None:
    fixed.write(".dasct.toml", '[check]\nkinds = ["code", "docs"]\n')
    result = dasct(fixed.path, "check")
    assert result.code != 0 or "kinds" in result.err
    assert "`check.kinds[1]`: 'docs' is not a line kind (code, comment, blank, import)" in (
        result.err)


def test_why_shows_the_kind_and_marks_the_line_in_its_hunk(fixed: GitRepo) -> None:
    result = dasct(fixed.path, "why", "x.py:5")
    assert result.code == 0
    assert "x.py:5 protects PROJ-1 (a comment line)" in result.out
    marked = [x for x in result.out.splitlines() if x.startswith("> ")]
    assert marked == ["> +    # why: the crash"]
    data = dasct(fixed.path, "why", "x.py:6", "--format", "json").json()
    assert data["kind"] == "code"
    assert data["hunk_line"] == "+    return os.sep"


def test_scan_gives_each_line_its_kind(fixed: GitRepo) -> None:
    lines = dasct(fixed.path, "scan", "--format", "json").json()["lines"]
    assert [(x["line"], x["kind"]) for x in lines] == [
        (1, "import"), (2, "blank"), (3, "blank"), (4, "code"), (5, "comment"), (6, "code")]
    text = dasct(fixed.path, "scan").out
    assert "x.py:1\tPROJ-1\timport\n" in text
    assert "x.py:2-3\tPROJ-1\tblank\n" in text


def test_annotate_all_reads_many_revisions_at_once_and_survives_a_missing_one(
        repo: GitRepo) -> None:
    from dasct.check import Finding

    first = repo.commit("one", {"a.py": "# note\nx = 1\n"})
    second = repo.commit("two", {"a.py": "import os\n# note\nx = 1\n"})
    groups = [(first, [Finding("P-1", "a.py", 1, first), Finding("P-1", "a.py", 2, first)]),
              (second, [Finding("P-1", "a.py", 1, second)])]
    kinds.annotate_all(repo.path, groups)
    assert [f.kind for _, fs in groups for f in fs] == ["comment", "code", "import"]
    # A revision git cannot give: the others are still classified, its lines stay code.
    missing = "0" * 40
    groups = [(first, [Finding("P-1", "a.py", 1, first)]),
              (missing, [Finding("P-1", "a.py", 1, missing)])]
    kinds.annotate_all(repo.path, groups)
    assert [f.kind for _, fs in groups for f in fs] == ["comment", "code"]
