"""A PostgreSQL environment on a machine without psycopg: one line naming the extra to
install, before anything is locked or journaled (never an internal error, never a journal
left marked interrupted). psycopg is made really missing for a real `dasct` process by an
import blocker on sys.meta_path, installed through a sitecustomize on PYTHONPATH."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from engine_kit import AT, SRC, cli, make_env, stage

from hidden_module import hiding

HINT = "pip install 'dasct[postgres]'"
URL = "postgresql://dasct@127.0.0.1:9/nowhere"


@pytest.fixture
def no_psycopg(tmp_path: Path) -> dict[str, str]:
    """The environment of a process in which psycopg cannot be imported."""
    return {"PYTHONPATH": f"{hiding('psycopg', tmp_path)}:{SRC}"}


def test_the_blocker_really_hides_psycopg(no_psycopg: dict[str, str]) -> None:
    import os

    proc = subprocess.run([sys.executable, "-c", "import psycopg"], capture_output=True,
                          text=True, env={**os.environ, **no_psycopg}, check=False)
    assert proc.returncode == 1 and "No module named 'psycopg'" in proc.stderr


@pytest.mark.parametrize("action", [("run", "--now", "--at", AT), ("revert", "E1")])
def test_run_or_revert_names_the_extra_before_anything_is_journaled(
        tmp_path: Path, no_psycopg: dict[str, str], action: tuple[str, ...]) -> None:
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    env = make_env(repo, database=URL)
    stage(env, "E1", sql=[("t1", "CREATE TABLE t1 (x int);", "DROP TABLE t1;", None)])
    proc = cli(repo, "migrate", *action[:1], "--env", "model", *action[1:], env=no_psycopg)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and HINT in lines[0] and "environment model" in lines[0], lines
    assert "internal error" not in proc.stderr
    assert not (env.state_dir / "journal.jsonl").exists()
    assert not (env.state_dir / "journal.last.jsonl").exists()
    assert not (env.state_dir / "lock").exists()
    assert (env.staging / "triggers" / "model" / "E1.json").exists()  # still to run


def test_connect_names_the_extra(no_psycopg: dict[str, str]) -> None:
    import os

    code = (f"from dasct.migrate.database import DatabaseError, connect\n"
            f"try:\n    connect({URL!r})\n"
            "except DatabaseError as exc:\n    print(exc)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, **no_psycopg}, check=False)
    assert proc.returncode == 0, proc.stderr
    assert HINT in proc.stdout and "psycopg" in proc.stdout
