"""Evidence: the fix's tests, found in its diff and run at a commit by real processes."""

from __future__ import annotations

import hashlib
import os
import shlex
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dasct import evidence, git
from dasct.qaconfig import DEFAULT_TEST_PATHS, QaConfig
from gitrepo import GitRepo

PYTEST = f"{shlex.quote(sys.executable)} -m pytest -q -p no:cacheprovider {{tests}}"
# Tests as plain scripts, for the timeout tests: a Python start (~30 ms) rather than a
# pytest start (~1 s here, more on a loaded machine) keeps a short timeout from being hit
# before the test itself runs. -c puts the tree on sys.path, as python -m pytest does.
SCRIPT = (f"{shlex.quote(sys.executable)} -c "
          + shlex.quote("import runpy, sys; runpy.run_path(sys.argv[1], run_name='__main__')")
          + " {tests}")
SECRET = "s3cr3t-jira-token-0451"

BUGGY = "def add(a, b):\n    return a - b\n"
FIXED = "def add(a, b):\n    return a + b\n"
REBROKEN = "def add(a, b):\n    return a * b\n"
TEST_ADD = "from evpkg.calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
TEST_ZERO = "from evpkg.calc import add\n\n\ndef test_zero():\n    assert add(0, 0) == 0\n"


def cfg(**changes: object) -> QaConfig:
    return replace(QaConfig(test_command=PYTEST, test_timeout_seconds=60.0), **changes)


@pytest.fixture
def tmp_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the trees are materialised: its own dir, so a test can see it emptied."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


@pytest.fixture
def project(repo: GitRepo) -> dict[str, str]:
    """A buggy package, its fix (Fixes #1) adding one trigger test and touching a test
    that passes either way, and a later commit that breaks the code again."""
    shas = {}
    shas["base"] = repo.commit("calc", {"evpkg/__init__.py": "", "evpkg/calc.py": BUGGY,
                                        "tests/test_zero.py": TEST_ZERO})
    shas["fix"] = repo.commit("add adds\n\nFixes #1", {
        "evpkg/calc.py": FIXED, "tests/test_add.py": TEST_ADD,
        "tests/test_zero.py": TEST_ZERO + "\n\ndef test_zero_again():\n    assert add(0, 0) == 0\n",
    })
    shas["ok"] = repo.commit("docs", {"README.md": "calc\n"})
    shas["broken"] = repo.commit("speed up add", {"evpkg/calc.py": REBROKEN})
    return shas


def open_repo(repo: GitRepo) -> git.Repo:
    return git.discover(repo.path)


def test_fix_tests_are_the_changed_test_paths(repo: GitRepo, project: dict[str, str]) -> None:
    r = open_repo(repo)
    assert evidence.fix_tests(r, [project["fix"]], DEFAULT_TEST_PATHS) == [
        "tests/test_add.py", "tests/test_zero.py"]
    # The base commit is a root commit: its diff is against the empty tree.
    assert evidence.fix_tests(r, [project["base"]], DEFAULT_TEST_PATHS) == ["tests/test_zero.py"]
    assert evidence.fix_tests(r, [project["broken"]], DEFAULT_TEST_PATHS) == []
    assert evidence.fix_tests(r, [project["fix"]], ("test_add.py",)) == ["tests/test_add.py"]


def test_fix_tests_follow_renames_and_skip_deletions(repo: GitRepo) -> None:
    body = "".join(f"def test_{i}():\n    assert {i} == {i}\n" for i in range(20))
    repo.commit("start", {"tests/test_old.py": body, "tests/test_gone.py": body + "#\n"})
    repo.git("mv", "tests/test_old.py", "tests/test_new.py")
    repo.git("rm", "-q", "tests/test_gone.py")
    fix = repo.commit("Fixes #2", {"tests/test_new.py": body + "# renamed\n", "lib.py": "x\n"})
    r = open_repo(repo)
    changes = git.raw_diff(r.root, f"{fix}^", fix, renames=True)
    assert {c.status for c in changes} == {"R", "D", "A"}  # the rename really is one
    assert evidence.fix_tests(r, [fix], DEFAULT_TEST_PATHS) == ["tests/test_new.py"]


def test_fix_tests_of_several_commits_and_java_globs(repo: GitRepo) -> None:
    java = "src/test/java/com/acme"
    a = repo.commit("PROJ-1 one", {f"{java}/FooTest.java": "class FooTest {}\n",
                                   "src/main/java/com/acme/Foo.java": "class Foo {}\n"})
    b = repo.commit("PROJ-1 two", {f"{java}/BarTest.java": "class BarTest {}\n",
                                   f"{java}/FooTest.java": "class FooTest { }\n",
                                   f"{java}/Helper.java": "class Helper {}\n"})
    r = open_repo(repo)
    tests = evidence.fix_tests(r, [a, b], ("*Test.java",))
    assert tests == [f"{java}/BarTest.java", f"{java}/FooTest.java"]
    assert evidence.argv_for("mvn -q -Dtest={classes} test", tests, b) == [
        "mvn", "-q", "-Dtest=BarTest,FooTest", "test"]
    # And as a real process: a stand-in for mvn prints the argv it was given.
    script = "import sys; print('ARGV', sys.argv[1:]); sys.exit(3)"
    template = (f"{shlex.quote(sys.executable)} -c {shlex.quote(script)}"
                " -Dtest={classes} {commit}")
    out = evidence.run_tests(r, b, tests, cfg(test_command=template))
    assert out.status == "failed"
    assert f"ARGV ['-Dtest=BarTest,FooTest', '{b}']" in out.tail
    assert out.reason == "exit code 3"


@settings(max_examples=50, deadline=None)
@given(st.lists(st.from_regex(r"[a-z]{1,5}(/[a-z]{1,5}){0,2}/[A-Za-z]{1,6}\.(py|java)",
                              fullmatch=True), min_size=1, max_size=5, unique=True))
def test_placeholders_expand_to_the_tests(tests: list[str]) -> None:
    argv = evidence.argv_for("run --x {tests} --file={tests} -k {classes} @{commit}", tests, "c0")
    n = len(tests)
    assert argv[:2] == ["run", "--x"]
    assert argv[2 : 2 + n] == tests
    assert argv[2 + n : 2 + 2 * n] == [f"--file={t}" for t in tests]
    stems = dict.fromkeys(Path(t).name.split(".")[0] for t in tests)
    assert argv[2 + 2 * n :] == ["-k", ",".join(stems), "@c0"]


def test_passed_at_a_commit_that_keeps_the_fix(repo: GitRepo, project: dict[str, str],
                                               tmp_root: Path) -> None:
    r = open_repo(repo)
    tests = evidence.fix_tests(r, [project["fix"]], DEFAULT_TEST_PATHS)
    out = evidence.run_tests(r, project["ok"], tests, cfg())
    assert out.status == "passed", out
    assert out.tests == tuple(tests) and out.commit == project["ok"]
    assert out.command.endswith("tests/test_add.py tests/test_zero.py")
    assert out.seconds > 0 and out.tail == ""
    assert list(tmp_root.iterdir()) == []  # the tree and its index are gone
    section = evidence.ticket_section(out)
    assert section.startswith(f"Fix tests at {project['ok'][:12]}: passed (2 tests, ")


def test_failed_at_a_commit_that_breaks_the_fix(repo: GitRepo, project: dict[str, str],
                                                tmp_root: Path) -> None:
    r = open_repo(repo)
    # The user's state: a staged and an unstaged change, both kept as they are.
    repo.write("evpkg/calc.py", FIXED + "# wip\n")
    repo.git("add", "evpkg/calc.py")
    repo.write("README.md", "local edit\n")
    status = repo.git("status", "--porcelain")
    index = hashlib.sha256((repo.path / ".git/index").read_bytes()).hexdigest()
    out = evidence.run_tests(r, project["broken"], ["tests/test_add.py"], cfg())
    assert out.status == "failed", out
    assert "assert 6 == 5" in out.tail
    assert len(out.tail.splitlines()) <= evidence.TAIL_LINES
    assert repo.git("status", "--porcelain") == status
    assert hashlib.sha256((repo.path / ".git/index").read_bytes()).hexdigest() == index
    assert len(repo.git("worktree", "list").splitlines()) == 1
    assert list(tmp_root.iterdir()) == []
    section = evidence.ticket_section(out.as_dict())  # as the ledger gives it back
    assert "failed — probable regression" in section
    assert "```\n" in section and "assert 6 == 5" in section


def test_outcome_round_trips_through_a_dict() -> None:
    out = evidence.Outcome("failed", "exit code 1", "tail", 1.5, "cmd", ("a", "b"), "c" * 40)
    assert evidence.Outcome.from_dict(out.as_dict()) == out
    assert out.as_dict()["tests"] == ["a", "b"]


def test_tail_keeps_the_last_lines(repo: GitRepo, tmp_root: Path) -> None:
    script = "import sys\nfor i in range(500): print('line', i)\nsys.exit(1)\n"
    sha = repo.commit("Fixes #3", {"tests/test_many.py": script})
    out = evidence.run_tests(open_repo(repo), sha, ["tests/test_many.py"], cfg(
        test_command=f"{shlex.quote(sys.executable)} {{tests}}"))
    assert out.tail.splitlines() == [f"line {i}" for i in range(460, 500)]


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # an orphan's zombie lingers until pid 1 reaps it: it runs nothing
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] not in "ZX"


def test_a_hanging_test_is_killed_with_its_group(repo: GitRepo, tmp_path: Path,
                                                 tmp_root: Path) -> None:
    pids = tmp_path / "pids"
    hang = (
        "import os, subprocess, time\n"
        "child = subprocess.Popen(['sleep', '300'])\n"
        f"with open({str(pids)!r}, 'w') as f:\n"
        "    f.write(f'{os.getpid()} {child.pid}')\n"
        "print('waiting forever', flush=True)\n"
        "time.sleep(300)\n"
    )
    sha = repo.commit("Fixes #4", {"tests/test_hang.py": hang})
    start = time.monotonic()
    out = evidence.run_tests(open_repo(repo), sha, ["tests/test_hang.py"],
                             cfg(test_timeout_seconds=3.0, test_command=SCRIPT))
    assert time.monotonic() - start < 30
    assert out.status == "not-run" and out.reason == "timed out after 3 s"
    assert "waiting forever" in out.tail
    written = [int(p) for p in pids.read_text().split()]
    assert len(written) == 2
    assert not any(_running(pid) for pid in written)
    assert list(tmp_root.iterdir()) == []
    assert "not run: timed out after 3 s" in evidence.ticket_section(out)


def test_a_missing_command_is_not_run(repo: GitRepo, project: dict[str, str]) -> None:
    r = open_repo(repo)
    out = evidence.run_tests(r, project["fix"], ["tests/test_add.py"],
                             cfg(test_command="no-such-runner-7q {tests}"))
    assert out.status == "not-run"
    assert out.reason == "no-such-runner-7q: not found"
    assert evidence.ticket_section(out).startswith(
        f"Fix tests at {project['fix'][:12]}: not run: no-such-runner-7q: not found")


@pytest.mark.parametrize(("changes", "tests", "reason"), [
    ({"test_command": ""}, ["tests/test_add.py"], "no test_command configured"),
    ({"test_command": "  "}, ["tests/test_add.py"], "no test_command configured"),
    ({}, [], "no tests among the fix commits' changes"),
    ({"test_command": "pytest 'unclosed {tests}"}, ["tests/test_add.py"],
     "[qa] test_command: No closing quotation"),
])
def test_reasons_for_not_running(repo: GitRepo, project: dict[str, str],
                                 changes: dict[str, object], tests: list[str],
                                 reason: str) -> None:
    out = evidence.run_tests(open_repo(repo), project["fix"], tests, cfg(**changes))
    assert (out.status, out.reason) == ("not-run", reason)


def test_tests_gone_at_the_commit(repo: GitRepo, project: dict[str, str]) -> None:
    repo.git("rm", "-q", "tests/test_add.py")
    gone = repo.commit("drop test")
    r = open_repo(repo)
    out = evidence.run_tests(r, gone, ["tests/test_add.py"], cfg())
    assert out.status == "not-run"
    assert out.reason == f"the tests are gone at {gone[:12]}: tests/test_add.py"
    out = evidence.run_tests(r, gone, ["tests/test_add.py", "tests/test_zero.py"], cfg())
    assert out.status == "passed" and out.tests == ("tests/test_zero.py",)
    assert out.reason == f"gone at {gone[:12]}, not run: tests/test_add.py"


def test_no_secret_reaches_the_tests_or_their_tail(repo: GitRepo, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DASCT_JIRA_TOKEN", SECRET)
    seen = tmp_path / "seen"
    leak = (
        "import os\n\n\ndef test_leak():\n"
        f"    with open({str(seen)!r}, 'w') as f:\n"
        "        f.write(repr(sorted(os.environ)))\n"
        "    print('token is', os.environ.get('DASCT_JIRA_TOKEN'))\n"
        f"    print('hard-coded', {SECRET!r})\n"
        "    assert False\n"
    )
    sha = repo.commit("Fixes #5", {"tests/test_leak.py": leak})
    out = evidence.run_tests(open_repo(repo), sha, ["tests/test_leak.py"],
                             cfg(test_command=PYTEST + f" --basetemp=x{SECRET}"))
    assert out.status == "failed"
    names = seen.read_text()
    assert "DASCT_JIRA_TOKEN" not in names and "GIT_DIR" not in names
    assert "'DASCT_COMMIT'" in names
    assert "token is None" in out.tail
    assert "hard-coded" in out.tail
    text = repr(out.as_dict()) + evidence.ticket_section(out)
    assert SECRET not in text
    assert "[redacted]" in out.tail and "[redacted]" in out.command


def test_tests_run_outside_the_repository(repo: GitRepo, tmp_path: Path) -> None:
    where = tmp_path / "where"
    probe = (
        "import os, subprocess\n\n\ndef test_where():\n"
        f"    with open({str(where)!r}, 'w') as f:\n"
        "        f.write(os.getcwd() + chr(10) + repr(os.environ.get('GIT_DIR')))\n"
    )
    sha = repo.commit("Fixes #6", {"tests/test_where.py": probe})
    index = (repo.path / ".git/index").read_bytes()
    # As in a hook: git's own variables point at the user's repository and index.
    os.environ["GIT_DIR"] = str(repo.path / ".git")
    os.environ["GIT_INDEX_FILE"] = str(repo.path / ".git/index")
    try:
        out = evidence.run_tests(open_repo(repo), sha, ["tests/test_where.py"], cfg())
    finally:
        del os.environ["GIT_DIR"], os.environ["GIT_INDEX_FILE"]
    assert (repo.path / ".git/index").read_bytes() == index
    assert out.status == "passed", out
    seen, git_dir = where.read_text().split("\n")
    cwd = Path(seen)
    assert git_dir == "None"
    assert not cwd.exists()
    assert repo.path not in cwd.parents and cwd != repo.path


def test_trigger_tests_are_verified(repo: GitRepo, project: dict[str, str],
                                    tmp_root: Path) -> None:
    r = open_repo(repo)
    tests = evidence.fix_tests(r, [project["fix"]], DEFAULT_TEST_PATHS)
    result = evidence.verify_trigger_tests(r, project["fix"], tests, cfg())
    assert result["fix"] == project["fix"] and result["parent"] == project["base"]
    assert result["verified"] == ["tests/test_add.py"]
    assert result["rejected"] == {"tests/test_zero.py": "passes before the fix"}
    assert result["not_run"] == "" and result["seconds"] > 0
    assert list(tmp_root.iterdir()) == []
    assert len(repo.git("worktree", "list").splitlines()) == 1
    text = evidence.describe("#1", fixes={project["fix"]: "add adds"}, tests=tests,
                             verifications=[result])
    assert "1 verified" in text and "verified tests/test_add.py" in text
    assert "rejected tests/test_zero.py: passes before the fix" in text


def test_a_test_needing_what_the_fix_added_fails_before_it(repo: GitRepo) -> None:
    # Defects4J's rule: the fix's test runs against the code before the fix; an import of
    # a function the fix adds fails there, which is failing.
    repo.commit("start", {"evpkg/__init__.py": "", "evpkg/calc.py": BUGGY})
    test = "from evpkg.calc import sub\n\n\ndef test_sub():\n    assert sub(3, 2) == 1\n"
    fix = repo.commit("PROJ-2 sub", {"evpkg/calc.py": BUGGY + "\n\ndef sub(a, b):\n"
                                     "    return a - b\n", "tests/test_sub.py": test})
    result = evidence.verify_trigger_tests(open_repo(repo), fix, ["tests/test_sub.py"], cfg())
    assert result["verified"] == ["tests/test_sub.py"], result


def test_a_test_failing_at_the_fix_is_rejected(repo: GitRepo) -> None:
    repo.commit("start", {"evpkg/__init__.py": "", "evpkg/calc.py": BUGGY})
    wrong = "from evpkg.calc import add\n\n\ndef test_add():\n    assert add(2, 2) == 5\n"
    fix = repo.commit("Fixes #7", {"evpkg/calc.py": FIXED, "tests/test_wrong.py": wrong})
    result = evidence.verify_trigger_tests(open_repo(repo), fix,
                                           ["tests/test_wrong.py", "tests/test_nothere.py"],
                                           cfg())
    assert result["verified"] == []
    assert result["rejected"] == {"tests/test_wrong.py": "fails at the fix",
                                  "tests/test_nothere.py": "absent at the fix"}


def test_verification_without_a_command_decides_nothing(repo: GitRepo,
                                                        project: dict[str, str]) -> None:
    result = evidence.verify_trigger_tests(open_repo(repo), project["fix"],
                                           ["tests/test_add.py"],
                                           cfg(test_command="no-such-runner-7q {tests}"))
    assert result["verified"] == [] and result["rejected"] == {}
    assert result["not_run"] == "no-such-runner-7q: not found"
    text = evidence.describe("#1", fixes={project["fix"]: "add adds"},
                             tests=["tests/test_add.py"], verifications=[result])
    assert "not verified: no-such-runner-7q: not found" in text
    assert "no evidence" in text


def test_describe_lists_fixes_tests_and_runs(project: dict[str, str]) -> None:
    run = evidence.Outcome("passed", seconds=4.12, command="pytest t", tests=("t",),
                           commit=project["broken"])
    text = evidence.describe("PROJ-1", fixes={project["fix"]: "add adds"}, tests=["t"],
                             outcomes=[run.as_dict()])
    lines = text.splitlines()
    assert lines[0] == "PROJ-1: 1 fix commit"
    assert lines[1] == f"  {project['fix'][:12]} add adds"
    assert "trigger tests: not verified" in lines
    assert f"Fix tests at {project['broken'][:12]}: passed (1 test, 4.1 s)" in lines
    assert "runs: none yet" in evidence.describe("PROJ-1", fixes={}, tests=[])


def test_before_the_fix_runs_the_fix_version_of_a_changed_test(repo: GitRepo) -> None:
    # The fix rewrites a test that passed before it: its old version still passes at the
    # parent, its new one fails there. The new one is what must fail before the fix.
    repo.commit("start", {"evpkg/__init__.py": "", "evpkg/calc.py": BUGGY,
                          "tests/test_calc.py": TEST_ZERO})
    fix = repo.commit("Fixes #8", {"evpkg/calc.py": FIXED, "tests/test_calc.py": TEST_ADD})
    result = evidence.verify_trigger_tests(open_repo(repo), fix, ["tests/test_calc.py"], cfg())
    assert result["verified"] == ["tests/test_calc.py"], result


def test_a_tree_that_cannot_be_written_is_not_run(repo: GitRepo, tmp_root: Path) -> None:
    # A required smudge filter that fails (as an LFS smudge without its server does).
    repo.git("config", "filter.broken.clean", "cat")
    repo.git("config", "filter.broken.smudge", "false")
    repo.git("config", "filter.broken.required", "true")
    sha = repo.commit("Fixes #9", {".gitattributes": "*.py filter=broken\n",
                                   "tests/test_x.py": "def test_x():\n    pass\n"})
    r = open_repo(repo)
    out = evidence.run_tests(r, sha, ["tests/test_x.py"], cfg())
    assert out.status == "not-run"
    assert out.reason.startswith(f"the tree of {sha[:12]} could not be written: ")
    assert "external filter 'false' failed" in out.reason
    result = evidence.verify_trigger_tests(r, sha, ["tests/test_x.py"], cfg())
    assert "external filter 'false' failed" in result["not_run"]
    assert result["verified"] == [] and result["rejected"] == {}
    assert list(tmp_root.iterdir()) == []


def test_timeouts_in_verification(repo: GitRepo) -> None:
    # Hanging on the buggy code is failing before the fix; hanging at the fix is failing
    # at the fix.
    loop = "def add(a, b):\n    while True:\n        pass\n"
    repo.commit("start", {"evpkg/__init__.py": "", "evpkg/calc.py": loop})
    test = "from evpkg.calc import add\nassert add(2, 3) == 5\n"
    hang = "import time\ntime.sleep(300)\n"
    fix = repo.commit("Fixes #10", {"evpkg/calc.py": FIXED, "tests/test_add.py": test,
                                    "tests/test_hang.py": hang})
    result = evidence.verify_trigger_tests(open_repo(repo), fix,
                                           ["tests/test_add.py", "tests/test_hang.py"],
                                           cfg(test_timeout_seconds=2.0, test_command=SCRIPT))
    assert result["verified"] == ["tests/test_add.py"]
    assert result["rejected"] == {"tests/test_hang.py": "fails at the fix (timed out after 2 s)"}


def test_a_merge_fix_brings_the_tests_of_its_branch(repo: GitRepo) -> None:
    repo.commit("start", {"lib.py": "a\n"})
    repo.git("checkout", "-q", "-b", "topic")
    repo.commit("the fix", {"lib.py": "b\n", "tests/test_lib.py": "def test(): pass\n"})
    repo.git("checkout", "-q", "main")
    repo.commit("meanwhile", {"tests/test_other.py": "def test(): pass\n"})
    repo.git("merge", "-q", "--no-ff", "-m", "Merge topic\n\nFixes #11", "topic")
    merge = repo.head()
    # Against the first parent: what the merge brought to main, not what main had.
    assert evidence.fix_tests(open_repo(repo), [merge], DEFAULT_TEST_PATHS) == [
        "tests/test_lib.py"]


NAMES = st.sampled_from(["tests/test_a.py", "tests/test_b.py", "src/a.py", "src/b.py",
                         "pkg/tests/helper.py", "FooTest.java", "docs/test_c.md", "c_test.go"])
CONTENT = st.sampled_from([f"line {i}\n" * 30 for i in range(4)])


@settings(max_examples=20, deadline=None)
@given(before=st.dictionaries(NAMES, CONTENT, max_size=6),
       after=st.dictionaries(NAMES, CONTENT, max_size=6),
       globs=st.lists(st.sampled_from([*DEFAULT_TEST_PATHS, "docs/*", "*.go"]),
                      min_size=1, max_size=4))
def test_fix_tests_are_the_written_paths_matching_the_globs(
        tmp_path_factory: pytest.TempPathFactory, before: dict[str, str],
        after: dict[str, str], globs: list[str]) -> None:
    from dasct.settings import matches_glob

    repo = GitRepo(tmp_path_factory.mktemp("prop"))
    repo.commit("before", before)
    for name in before:
        if name not in after:
            (repo.path / name).unlink()
    fix = repo.commit("Fixes #12", after)
    # Written by the fix: a new path (a file moved as it is too: git reports the rename
    # under its new name) or new content.
    written = {n for n, text in after.items() if before.get(n) != text}
    expected = sorted(n for n in written if matches_glob(n, tuple(globs)))
    assert evidence.fix_tests(git.discover(repo.path), [fix], globs) == expected


def test_a_configured_credential_variable_never_reaches_the_tests(
        repo: GitRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dasct import config, qaconfig, redact

    # A name the secret patterns do not know: only the config says it is a credential.
    monkeypatch.setenv("JIRA_PAT_VALUE", "pat-0123456789")
    seen = tmp_path / "seen"
    probe = ("import os\n\n\ndef test_env():\n"
             f"    open({str(seen)!r}, 'w').write(repr(sorted(os.environ)))\n")
    sha = repo.commit("Fixes #13", {"tests/test_env.py": probe})
    qa = replace(cfg(), jira=qaconfig.JiraTracker(token_env="JIRA_PAT_VALUE"))
    redact.configure(replace(config.Config(), qa=qa))
    try:
        out = evidence.run_tests(open_repo(repo), sha, ["tests/test_env.py"], qa)
    finally:
        redact.configure(config.Config())
    assert out.status == "passed", out
    assert "JIRA_PAT_VALUE" not in seen.read_text()


def test_paths_like_options_and_commands_not_executable(repo: GitRepo, tmp_path: Path) -> None:
    assert evidence.argv_for("t {tests}", ["-x_test.py", "a/-b.py"], "c") == [
        "t", "./-x_test.py", "a/-b.py"]
    plain = tmp_path / "runner"
    plain.write_text("#!/bin/sh\nexit 0\n")  # no x bit
    sha = repo.commit("Fixes #14", {"tests/test_y.py": "def test_y():\n    pass\n"})
    out = evidence.run_tests(open_repo(repo), sha, ["tests/test_y.py"],
                             cfg(test_command=f"{plain} {{tests}}"))
    assert (out.status, out.reason) == ("not-run", f"{plain}: not executable")


def test_a_tail_with_backticks_keeps_its_fence() -> None:
    out = evidence.Outcome("failed", "exit code 1", "E   ```\nE   ````x", 0.1, "t", ("t",))
    lines = evidence.ticket_section(out).splitlines()
    assert lines[0] == "Fix tests: failed — probable regression (1 test, 0.1 s, exit code 1)"
    assert lines[-1] == lines[-4] == "`````"


def test_a_submodule_is_an_empty_directory(repo: GitRepo, tmp_path: Path) -> None:
    sub = GitRepo(tmp_path / "sub")
    sub.commit("inside", {"lib.py": "x = 1\n"})
    repo.git("-c", "protocol.file.allow=always", "submodule", "add", "-q", str(sub.path), "sm")
    probe = ("import os\n\n\ndef test_sm():\n"
             "    assert os.path.isdir('sm')\n    assert os.listdir('sm') == []\n")
    sha = repo.commit("Fixes #15", {"tests/test_sm.py": probe})
    out = evidence.run_tests(open_repo(repo), sha, ["tests/test_sm.py"], cfg())
    assert out.status == "passed", out


def test_what_a_passing_test_leaves_running_is_ended(repo: GitRepo, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    leave = ("import subprocess\n\n\ndef test_leave():\n"
             "    child = subprocess.Popen(['sleep', '300'])\n"
             f"    open({str(pid_file)!r}, 'w').write(str(child.pid))\n")
    sha = repo.commit("Fixes #16", {"tests/test_leave.py": leave})
    out = evidence.run_tests(open_repo(repo), sha, ["tests/test_leave.py"], cfg())
    assert out.status == "passed", out
    assert not _running(int(pid_file.read_text()))


def test_a_runner_script_of_the_repository(repo: GitRepo) -> None:
    # ./run-tests resolves in the tree the tests run in, with its executable bit.
    runner = "#!/bin/sh\necho \"ran $*\"\nkill -9 $$\n"
    repo.write("run-tests", runner).chmod(0o755)
    sha = repo.commit("Fixes #17", {"tests/test_z.py": "def test_z():\n    pass\n"})
    out = evidence.run_tests(open_repo(repo), sha, ["tests/test_z.py"],
                             cfg(test_command="./run-tests {tests}"))
    assert (out.status, out.reason) == ("failed", "killed by signal 9"), out
    assert out.tail == "ran tests/test_z.py"


def test_evidence_runs_only_verified_tests_when_asked(repo: GitRepo,
                                                      project: dict[str, str]) -> None:
    r = open_repo(repo)
    out = evidence.evidence_at(r, project["broken"], [project["fix"]], cfg())
    assert out.status == "failed" and out.tests == ("tests/test_add.py", "tests/test_zero.py")
    strict = cfg(verify_trigger_tests=True)
    out = evidence.evidence_at(r, project["broken"], [project["fix"]], strict)
    assert (out.status, out.reason) == ("not-run", "no evidence: no verified trigger test")
    tests = evidence.fix_tests(r, [project["fix"]], strict.test_globs)
    result = evidence.verify_trigger_tests(r, project["fix"], tests, strict)
    out = evidence.evidence_at(r, project["ok"], [project["fix"]], strict, [result])
    assert out.status == "passed" and out.tests == ("tests/test_add.py",)
