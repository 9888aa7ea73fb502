"""Crash safety proof: SIGKILL the engine at every journal boundary, run it again, and check
the target is exactly as before or exactly as after, with the trigger neither lost nor
applied twice."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest
from engine_kit import (
    SEED_FILES,
    cli,
    dump,
    health,
    kill_points,
    migrate_run,
    seed,
    snapshot,
    stage,
)

from dasct.audit import verify as audit_verify
from dasct.migrate import inventory, journal

pytestmark = pytest.mark.slow


def build(base: Path, *, fail: bool) -> None:
    subprocess.run(["git", "init", "-q", str(base)], check=True)
    env = seed(base)
    conn = sqlite3.connect(base / "db.sqlite")
    conn.executescript("CREATE TABLE keep (x); INSERT INTO keep VALUES (1);")
    conn.close()
    stage(env, "E1", sql=[
        ("users", "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);\n"
                  "INSERT INTO users (name) VALUES ('ada');", "DROP TABLE users;",
         "SELECT count(*) FROM users;"),
        ("keep2", "UPDATE keep SET x = x + 1;", "UPDATE keep SET x = x - 1;",
         "SELECT x = 2 FROM keep;"),
    ], files=SEED_FILES, commands=[health(1 if fail else 0)])


def state(base: Path) -> tuple[dict[str, Any], list[str]]:
    return snapshot(base / "target"), dump(base / "db.sqlite")


@pytest.mark.parametrize("fail", [False, True], ids=["success", "rollback"])
def test_sigkill_at_every_step_boundary(tmp_path: Path, fail: bool) -> None:
    base = tmp_path / "base"
    build(base, fail=fail)
    before = state(base)
    clean = tmp_path / "clean"
    shutil.copytree(base, clean, symlinks=True)
    proc = migrate_run(clean)
    assert proc.returncode == (1 if fail else 0), proc.stderr
    after = state(clean)
    assert (after == before) if fail else (after != before)
    # Every record, and every point where a step took effect but is not journaled yet.
    points = kill_points(clean / "state")
    assert sum(isinstance(k, int) for k in points) >= 20  # journal records
    expected = "rolled-back" if fail else "migrated"
    for k in points:
        work = tmp_path / f"kill{str(k).replace(':', '_')}"
        shutil.copytree(base, work, symlinks=True)
        killed = migrate_run(work, kill_at=k)
        # An `applied` point of the step that fails is never reached: no kill there.
        reached = not (fail and str(k).startswith("command:"))
        assert killed.returncode == (-9 if reached else 1), (k, killed.stdout, killed.stderr)
        again = migrate_run(work)
        assert again.returncode in (0, 1), (k, again.stderr)
        now = state(work)
        where = f"killed after journal record {k}: {again.stdout}{again.stderr}"
        if fail:
            assert now == before, where
        else:
            assert now in (before, after), where
            assert now == after, where  # the trigger stayed pending, so the rerun applied it
        result = inventory.outcome(work / "state", "E1")
        assert result is not None and result["outcome"] == expected, where
        deployments = inventory.load(work / "state")["deployments"]
        assert list(deployments) == ([] if fail else ["E1"]), where
        assert journal.pending(work / "state") is None, where
        assert not (work / "staging/triggers/model/E1.json").exists(), where
        assert audit_verify(work / "state") == [], where
        # A third run finds nothing: the trigger is never applied twice.
        third = migrate_run(work)
        assert third.returncode == 0 and state(work) == now, where
        log = (work / "state" / "audit.jsonl").read_text().splitlines()
        recovered = any(json.loads(line)["event"] == "recover" for line in log)
        assert recovered == reached, where


def test_sigkill_at_every_boundary_of_a_revert(tmp_path: Path) -> None:
    base = tmp_path / "base"
    build(base, fail=False)
    original = state(base)
    assert migrate_run(base).returncode == 0
    deployed = state(base)
    clean = tmp_path / "clean"
    shutil.copytree(base, clean, symlinks=True)
    assert cli(clean, "migrate", "revert", "E1", "--env", "model").returncode == 0
    assert state(clean) == original
    for k in kill_points(clean / "state"):
        work = tmp_path / f"kill{str(k).replace(':', '_')}"
        shutil.copytree(base, work, symlinks=True)
        killed = cli(work, "migrate", "revert", "E1", "--env", "model",
                     env={journal.KILL_VAR: str(k)})
        assert killed.returncode == -9, (k, killed.stdout, killed.stderr)
        recovered = migrate_run(work)  # the nightly run finds the journal and settles it
        assert recovered.returncode == 0, (k, recovered.stderr)
        where = f"killed after {k}: {recovered.stdout}"
        assert state(work) in (deployed, original), where
        if state(work) == deployed:  # rolled back: the revert can simply be asked again
            again = cli(work, "migrate", "revert", "E1", "--env", "model")
            assert again.returncode == 0, (where, again.stderr)
        assert state(work) == original, where
        dep = inventory.load(work / "state")["deployments"]["E1"]
        assert dep["status"] == "reverted", where
        assert journal.pending(work / "state") is None, where
        assert audit_verify(work / "state") == [], where
