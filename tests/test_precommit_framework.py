"""The real pre-commit framework, with this repository as the hook repository."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gitrepo import GitRepo

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_pre_commit_try_repo_shows_the_warning(repo: GitRepo, tmp_path: Path) -> None:
    pre_commit = shutil.which("pre-commit", path=str(Path(sys.executable).parent))
    assert pre_commit, "pre-commit is a dev dependency; ./dev test installs it"
    repo.commit("initial", {"x.py": "a\nb\nc\n"})
    repo.commit("Fix PROJ-42", {"x.py": "a\nb fixed\nc\n"})
    repo.write("x.py", "a\nb changed\nc\n")
    repo.git("add", "x.py")
    # pre-commit builds a virtualenv, which caches under $HOME: give it a home of its own.
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pc-cache"),
           "HOME": str(tmp_path / "pc-home")}
    proc = subprocess.run(
        (pre_commit, "try-repo", str(ROOT), "dasct-check", "--verbose"),
        cwd=repo.path, capture_output=True, text=True, env=env, check=False, timeout=600,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "Passed" in out
    assert "PROJ-42" in out and "x.py:2" in out
