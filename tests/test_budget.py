"""A defect pattern that backtracks catastrophically never hangs a commit: nested
repetitions are refused at config load, and the commit-time check has a time budget."""

from __future__ import annotations

import fcntl
import os
import subprocess
import time

import pytest

from dasct import refs
from dasct.config import DEFAULT_JIRA_PATTERN, GITHUB_CLOSING_PATTERN
from dasct_run import dasct
from gitrepo import GitRepo

BASE = "".join(f"line {i}\n" for i in range(1, 7))
EVIL_MESSAGE = "a" * 40 + "!"  # the reproduction of the issue


def history(repo: GitRepo, config: str) -> GitRepo:
    repo.commit("initial", {"x.py": BASE})
    repo.commit(EVIL_MESSAGE, {"x.py": BASE.replace("line 2\n", "line 2 changed\n")})
    repo.commit("Fix PROJ-1", {"x.py": BASE.replace("line 3\n", "line 3 fixed\n")})
    repo.write(".dasct.toml", config)
    # The hook is what is tested here: it, not install, must meet the bad pattern first.
    assert dasct(repo.path, "install", "--quiet", "--no-index").code == 0
    repo.write("x.py", BASE)
    return repo


def commit_through_the_hook(repo: GitRepo) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    proc = subprocess.run(("git", "commit", "-qam", "touch it"), cwd=repo.path,
                          capture_output=True, text=True, timeout=120, check=False)
    return proc, time.monotonic() - started


def test_the_reproduction_is_refused_at_config_load_and_the_commit_goes_on(
    repo: GitRepo,
) -> None:
    history(repo, "[defects]\npatterns = ['(a+)+$']\n")
    proc, seconds = commit_through_the_hook(repo)
    assert proc.returncode == 0 and seconds < 30
    (line,) = proc.stderr.splitlines()
    assert ".dasct.toml" in line and "`defects.patterns[0]`" in line and "(a+)" in line
    assert repo.git("log", "-1", "--format=%s").strip() == "touch it"


def test_a_slow_pattern_stops_at_the_budget_and_the_commit_goes_on(repo: GitRepo) -> None:
    # Overlapping alternatives are not refused (no nested repetition) yet take minutes on
    # 40 a's and a "!": only the budget stops them.
    history(repo, "[defects]\npatterns = ['(a|aa)+$', 'PROJ-[0-9]+']\n"
                  "[check]\nbudget_seconds = 1\n")
    # Only the pre-commit hook is under test: the post-commit refresh (it delays nothing)
    # would spend its CPU limit, ten minutes by default, after the test ended.
    (repo.path / ".git" / "hooks" / "post-commit").unlink()
    proc, seconds = commit_through_the_hook(repo)
    assert proc.returncode == 0, proc.stderr
    assert seconds < 30
    (line,) = proc.stderr.splitlines()
    assert line.startswith("dasct: the check ran past its budget of 1 s ([check] budget_seconds)")
    assert repo.git("log", "-1", "--format=%s").strip() == "touch it"
    assert list((repo.path / ".git" / "dasct" / "index").glob(".*.tmp")) == []
    repo.write("x.py", BASE.replace("line 4\n", "line 4 again\n"))
    repo.git("add", "x.py")
    strict = dasct(repo.path, "check", "--staged", "--strict")
    assert strict.code == 1 and "budget" in strict.err  # strict: dasct's failure blocks
    assert "Traceback" not in strict.err


def _stopped(repo: GitRepo, started: float) -> str:
    error = repo.path / ".git" / "dasct" / "refresh.error"
    while not error.exists() and time.monotonic() - started < 60:
        time.sleep(0.1)
    assert error.exists(), "the refresh was not stopped within a minute"
    return error.read_text()


def test_the_background_refresh_is_stopped_at_its_cpu_limit_and_says_so(
        repo: GitRepo) -> None:
    # The pattern spends minutes in the regex engine; the refresh has no budget_seconds.
    history(repo, "[defects]\npatterns = ['(a|aa)+$', 'PROJ-[0-9]+']\n"
                  "[check]\nrefresh_cpu_seconds = 1\n")
    assert dasct(repo.path, "refresh", "--background").code == 0  # returns at once
    text = _stopped(repo, time.monotonic())
    assert "stopped after 1 s of CPU ([check] refresh_cpu_seconds)" in text, text
    assert not list((repo.path / ".git" / "dasct" / "index").glob("*.snap"))
    fd = os.open(repo.path / ".git" / "dasct" / "refresh.lock", os.O_RDONLY)
    try:  # the stopped worker holds the refresh lock no longer
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(fd)
    told = dasct(repo.path, "refresh", "--background")  # the next shim tells it, once
    assert told.code == 0 and told.err.count("\n") == 1, told.err
    assert "the last index refresh failed" in told.err and "refresh_cpu_seconds" in told.err
    _stopped(repo, time.monotonic())  # the refresh it started is stopped the same way


def test_a_check_within_the_budget_is_untouched(repo: GitRepo) -> None:
    history(repo, "[check]\nbudget_seconds = 30\n")
    proc, _ = commit_through_the_hook(repo)
    assert proc.returncode == 0 and "PROJ-1" in proc.stderr and "budget" not in proc.stderr


def test_budget_must_be_positive(repo: GitRepo) -> None:
    repo.commit("initial", {"x.py": BASE, ".dasct.toml": "[check]\nbudget_seconds = 0\n"})
    result = dasct(repo.path, "scan")
    assert result.code == 1 and "`check.budget_seconds` must be more than 0" in result.err


@pytest.mark.parametrize("pattern", [
    "(a+)+$", r"(\w+\s?)*$", "(?:x{1,3})+", "(x|(a*))+", "(?=(a+)+)b", "((ab)*c?)*",
    r"(?P<key>(\d+)+)",
])
def test_nested_repetitions_are_refused(pattern: str) -> None:
    assert refs.pathological(pattern) is not None


@pytest.mark.parametrize("pattern", [
    DEFAULT_JIRA_PATTERN, GITHUB_CLOSING_PATTERN, r"BUG(?P<key>\d+)", "a+b+", "(ab)+",
    "(a{3})+", "(a++)+", "(?>a+)+", r"(?:[\w.-]+/[\w.-]+)?#\d+",
])
def test_ordinary_patterns_pass(pattern: str) -> None:
    assert refs.pathological(pattern) is None


def test_strict_in_the_config_makes_the_hooks_own_failure_block(repo: GitRepo) -> None:
    # PRODUCT.md: the hook lets the commit through on its own failure "unless strict mode
    # is on" — `[check] strict = true` as much as `--strict`.
    history(repo, "[defects]\npatterns = ['(a|aa)+$', 'PROJ-[0-9]+']\n"
                  "[check]\nbudget_seconds = 1\nstrict = true\n")
    proc, _ = commit_through_the_hook(repo)
    assert proc.returncode != 0
    (line,) = proc.stderr.splitlines()
    assert line.startswith("dasct: the check ran past its budget of 1 s")
    assert repo.git("log", "-1", "--format=%s").strip() == "Fix PROJ-1"  # nothing committed
