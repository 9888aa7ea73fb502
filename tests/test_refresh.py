"""The index follows HEAD in the background: install builds it, git's post-* hooks refresh
it detached, never two at once, and a failure is told once, never to git."""

from __future__ import annotations

import fcntl
import os
import subprocess
import time
from pathlib import Path

import pytest

from dasct_run import dasct
from gitrepo import GitRepo

POST_HOOKS = ("post-checkout", "post-merge", "post-rewrite", "post-commit")


def _snapshot(repo: GitRepo, rev: str = "HEAD") -> Path:
    return repo.path / ".git" / "dasct" / "index" / f"{repo.git('rev-parse', rev).strip()}.snap"


def _wait_for(path: Path, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists():
            return True
        time.sleep(0.05)
    return path.exists()


def _git(repo: GitRepo, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(("git", *args), cwd=repo.path, capture_output=True, text=True,
                          check=False)


@pytest.fixture
def history(repo: GitRepo) -> GitRepo:
    repo.commit("initial", {"a.py": "one\ntwo\nthree\n"})
    repo.commit("Fix PROJ-1", {"a.py": "one\nTWO\nthree\n"})
    return repo


def test_install_builds_the_index_and_writes_every_hook(history: GitRepo) -> None:
    result = dasct(history.path, "install")
    assert result.code == 0, result.err
    assert _snapshot(history).exists()  # built by install, not by the first commit
    assert "index rebuilt" in result.out
    hooks = history.path / ".git" / "hooks"
    for name in ("pre-commit", *POST_HOOKS):
        text = (hooks / name).read_text()
        assert "DASCT-SHIM" in text and "@HOOK@" not in text and "@PYTHON@" not in text
        assert os.access(hooks / name, os.X_OK)
    assert dasct(history.path, "uninstall").code == 0
    assert not any((hooks / name).exists() for name in ("pre-commit", *POST_HOOKS))


def test_install_no_index_builds_nothing(history: GitRepo) -> None:
    assert dasct(history.path, "install", "--quiet", "--no-index").code == 0
    assert not _snapshot(history).exists()


def test_commit_checkout_merge_and_rebase_refresh_in_the_background(history: GitRepo) -> None:
    assert dasct(history.path, "install", "--quiet").code == 0
    history.write("a.py", "one\nTWO\nthree\nfour\n")
    assert _git(history, "commit", "-qam", "more").returncode == 0
    assert _wait_for(_snapshot(history)), "post-commit did not refresh the index"
    assert _git(history, "checkout", "-q", "-b", "side", "HEAD~1").returncode == 0
    history.write("b.py", "side\n")
    history.git("add", "b.py")
    assert _git(history, "commit", "-qm", "side work").returncode == 0
    assert _wait_for(_snapshot(history))
    assert _git(history, "checkout", "-q", "main").returncode == 0
    assert _git(history, "merge", "-q", "--no-ff", "-m", "merge side", "side").returncode == 0
    assert _wait_for(_snapshot(history)), "post-merge did not refresh the index"
    assert _git(history, "checkout", "-q", "side").returncode == 0
    assert _git(history, "rebase", "-q", "main").returncode == 0
    assert _wait_for(_snapshot(history)), "post-rewrite/checkout did not refresh the index"


def test_a_chained_post_hook_runs_first_and_keeps_its_exit_status(history: GitRepo) -> None:
    hooks = history.path / ".git" / "hooks"
    hooks.mkdir(exist_ok=True)
    mine = hooks / "post-checkout"
    mine.write_text('#!/bin/sh\necho "previous post-checkout $3" >&2\nexit 3\n')
    mine.chmod(0o755)
    assert dasct(history.path, "install", "--quiet").code == 0
    proc = _git(history, "checkout", "-q", "-b", "other")
    assert "previous post-checkout 1" in proc.stderr
    assert proc.returncode != 0  # the chained hook's failure still reaches git
    assert dasct(history.path, "uninstall", "--quiet").code == 0
    assert mine.read_text().startswith("#!/bin/sh\necho \"previous post-checkout")


def test_never_two_refreshes_at_once(history: GitRepo) -> None:
    state = history.path / ".git" / "dasct"
    state.mkdir(parents=True, exist_ok=True)
    fd = os.open(state / "refresh.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # a refresh in progress
        result = dasct(history.path, "refresh", "--background")
        assert result.code == 0 and result.out == "" and result.err == ""
        time.sleep(1.0)
        assert not _snapshot(history).exists(), "a second refresh ran beside the first"
    finally:
        os.close(fd)
    assert dasct(history.path, "refresh").code == 0
    assert _snapshot(history).exists()


def test_a_background_failure_is_told_once_and_never_fails_git(history: GitRepo) -> None:
    history.write(".dasct.toml", "[check]\nstrikt = true\n")
    result = dasct(history.path, "refresh", "--background")
    assert result.code == 0 and result.err == ""
    error = history.path / ".git" / "dasct" / "refresh.error"
    assert _wait_for(error)
    told = dasct(history.path, "refresh", "--background")
    assert told.code == 0
    assert told.err.count("\n") == 1 and "check.strikt" in told.err
    assert "the last index refresh failed" in told.err
    (history.path / ".dasct.toml").unlink()
    assert _wait_for(_snapshot(history))
    assert dasct(history.path, "refresh", "--background").err == ""


def test_refresh_in_the_foreground_fails_loudly(history: GitRepo) -> None:
    history.write(".dasct.toml", "[check]\nstrikt = true\n")
    result = dasct(history.path, "refresh")
    assert result.code == 1 and "check.strikt" in result.err


def test_skip_variable_skips_the_refresh_hooks(history: GitRepo) -> None:
    assert dasct(history.path, "install", "--quiet", "--no-index").code == 0
    proc = subprocess.run(("git", "checkout", "-q", "-b", "skipped"), cwd=history.path,
                          capture_output=True, text=True, check=False,
                          env={**os.environ, "DASCT_SKIP": "1"})
    assert proc.returncode == 0 and proc.stderr == ""
    time.sleep(1.0)
    assert not _snapshot(history).exists()


def test_install_with_a_bad_config_installs_the_hooks_and_says_the_index_was_not_built(
    history: GitRepo,
) -> None:
    history.write(".dasct.toml", "[check]\nstrikt = true\n")
    result = dasct(history.path, "install")
    assert result.code == 1
    assert "the hooks are installed, but the index was not built" in result.err
    assert "check.strikt" in result.err and result.err.count("\n") == 1
    assert "DASCT-SHIM" in (history.path / ".git" / "hooks" / "post-commit").read_text()
