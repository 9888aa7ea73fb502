"""The steps of one migration: SQL deploy and verify, file changes, verify commands.

Each function does one step and raises StepError on failure; the engine journals them
and decides what a failure means.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

from dasct import durable
from dasct.errors import DasctError
from dasct.migrate import trigger as trig
from dasct.migrate.archive import write_beside
from dasct.migrate.database import Database, DatabaseError

DEFAULT_VERIFY_TIMEOUT = 600.0


class StepError(DasctError):
    """A step failed; the message says which and why."""


def sql_deploy(db: Database, t: trig.Trigger, index: int) -> None:
    """Run the deploy script of SQL change index in one transaction."""
    change = t.sql[index]
    script = trig.read_payload(t.staging, change.deploy).decode()
    try:
        db.run_script(script, label=f"deploy {change.name}", mark=(t.id, change.name))
    except DatabaseError as exc:
        raise StepError(f"SQL deploy failed: {exc}") from None


def sql_verify(db: Database, t: trig.Trigger, index: int) -> None:
    """Run the verify script of SQL change index (when it has one)."""
    change = t.sql[index]
    if change.verify is None:
        return
    script = trig.read_payload(t.staging, change.verify).decode()
    try:
        db.verify_script(script, label=f"verify {change.name}")
    except DatabaseError as exc:
        raise StepError(f"SQL verify failed: {exc}") from None


def sql_revert(db: Database, t_id: str, name: str, script: str) -> None:
    """Run one revert script in one transaction (and forget its bookkeeping row)."""
    try:
        db.run_script(script, label=f"revert {name}", unmark=(t_id, name))
    except DatabaseError as exc:
        raise StepError(f"SQL revert failed: {exc}") from None


def apply_file(t: trig.Trigger, index: int, root: Path) -> None:
    """Apply file change index: new content written beside and renamed into place."""
    change = t.files[index]
    target = root / change.path
    try:
        if change.post_sha256 is not None:
            write_beside(target, trig.read_payload(t.staging, change.post_sha256), change.mode)
        if change.op == "delete":
            _remove(root, target)
        elif change.op == "rename" and change.old_path is not None:
            _remove(root, root / change.old_path)
    except OSError as exc:
        raise StepError(f"file {change.op} {change.path}: {exc.strerror or exc}") from None


def _remove(root: Path, target: Path) -> None:
    # Like a git checkout: a directory left empty by the last file leaving it goes too.
    target.unlink()
    folder = target.parent
    while folder != root and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent
    durable.fsync_dir(folder)


def commands(t: trig.Trigger, verify: tuple[str, ...]) -> list[trig.StepCommand]:
    """The trigger's restart/health commands, then the environment's verify commands."""
    out = list(t.commands)
    for i, line in enumerate(verify):
        argv = tuple(shlex.split(line))
        if argv:
            # The environment's verify commands check the system as a trigger's health
            # commands do; they never enter a trigger file, so their name need not be valid.
            out.append(trig.StepCommand(f"verify[{i}]", argv, "health", DEFAULT_VERIFY_TIMEOUT))
    return out


def run_command(cmd: trig.StepCommand, *, root: Path, environment: str) -> None:
    """Run a command in the target root without a shell; non-zero exit is a StepError."""
    env = dict(os.environ, DASCT_ENVIRONMENT=environment, DASCT_TARGET_ROOT=str(root))
    try:
        proc = subprocess.run(cmd.argv, cwd=root, env=env, capture_output=True,
                              timeout=cmd.timeout, check=False)
    except FileNotFoundError:
        raise StepError(f"command {cmd.name}: {cmd.argv[0]!r} not found") from None
    except subprocess.TimeoutExpired:
        raise StepError(f"command {cmd.name}: timed out after {cmd.timeout:g}s") from None
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).decode(errors="replace").strip().splitlines()
        detail = f": {tail[-1]}" if tail else ""
        raise StepError(f"command {cmd.name} exited {proc.returncode}{detail}")
