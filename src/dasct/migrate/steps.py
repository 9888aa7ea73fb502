"""The steps of one migration: SQL deploy and verify, file changes, verify commands.

Each function does one step and raises StepError on failure; the engine journals them
and decides what a failure means.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO

from dasct import durable, redact
from dasct.errors import DasctError
from dasct.migrate import trigger as trig
from dasct.migrate import trigger_check as trigc
from dasct.migrate.archive import write_beside
from dasct.migrate.database import Database, DatabaseError

DEFAULT_VERIFY_TIMEOUT = 600.0
_GRACE = 2.0  # seconds a process group has between SIGTERM and SIGKILL
_TAIL_BYTES = 64 * 1024  # how much of a failed command's output is read for its last line
_MAX_DETAIL = 500


class StepError(DasctError):
    """A step failed; the message says which and why."""


def sql_deploy(db: Database, t: trig.Trigger, index: int) -> None:
    """Run the deploy script of SQL change index in one transaction."""
    change = t.sql[index]
    script = trigc.read_payload(t.staging, change.deploy).decode()
    try:
        db.run_script(script, label=f"deploy {change.name}", mark=(t.id, change.name))
    except DatabaseError as exc:
        raise StepError(f"SQL deploy failed: {exc}") from None


def sql_verify(db: Database, t: trig.Trigger, index: int) -> None:
    """Run the verify script of SQL change index (when it has one)."""
    change = t.sql[index]
    if change.verify is None:
        return
    script = trigc.read_payload(t.staging, change.verify).decode()
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
            write_beside(target, trigc.read_payload(t.staging, change.post_sha256), change.mode)
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


def run_command(cmd: trig.StepCommand, *, root: Path, environment: str,
                left_running: list[int] | None = None) -> None:
    """Run a command in the target root without a shell; non-zero exit is a StepError.

    The command gets dasct's environment without its secrets (redact.child_env) and runs
    in a session of its own, so that everything it starts can be ended with it: on a
    failure or a timeout the whole process group goes; after a check (health, verify)
    whatever it left behind goes too. Only a restart command may leave processes (a
    daemon); their group id is appended to left_running, for a rollback to end them.
    """
    env = redact.child_env({"DASCT_ENVIRONMENT": environment, "DASCT_TARGET_ROOT": str(root)})
    # Files, not pipes: a daemon that keeps its inherited stdout open would hold a pipe
    # open and make the wait for the end of output last as long as the daemon.
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen(cmd.argv, cwd=root, env=env, stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=err, start_new_session=True)
        except FileNotFoundError:
            raise StepError(f"command {cmd.name}: {cmd.argv[0]!r} not found") from None
        try:
            code = proc.wait(timeout=cmd.timeout)
        except subprocess.TimeoutExpired:
            end_group(proc.pid, leader=proc)
            raise StepError(f"command {cmd.name}: timed out after {cmd.timeout:g}s") from None
        except BaseException:  # Ctrl-C no longer reaches a command in its own session
            end_group(proc.pid, leader=proc)
            raise
        if code != 0 or cmd.kind != "restart":
            end_group(proc.pid)
        elif left_running is not None and _group_alive(proc.pid):
            left_running.append(proc.pid)
        if code != 0:
            tail = _last_line(err) or _last_line(out)
            raise StepError(f"command {cmd.name} exited {code}" + (f": {tail}" if tail else ""))


def _last_line(f: IO[bytes]) -> str:
    """The last non-empty line of a command's output, redacted (whole output first, so a
    secret spanning lines is still seen whole)."""
    size = f.seek(0, os.SEEK_END)
    f.seek(max(0, size - _TAIL_BYTES))
    text = f.read().decode(errors="replace")
    if size > _TAIL_BYTES:
        text = text.partition("\n")[2]  # a line cut by the seek is not shown
    lines = redact.redact(text).strip().splitlines()
    line = lines[-1].strip() if lines else ""
    return line if len(line) <= _MAX_DETAIL else line[: _MAX_DETAIL - 3] + "..."


def _group_alive(pgid: int) -> bool:
    """True while a process of group pgid runs (zombies do not count)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a member changed its user: it is there all the same
        pass
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:  # no /proc: take the kernel's word, zombies included
        return True
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as f:
                stat = f.read()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
        fields = stat[stat.rfind(")") + 2:].split()
        # An orphan's zombie stays in the group until pid 1 reaps it, and in a container
        # pid 1 often never does.
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            return True
    return False


def end_group(pgid: int, *, leader: subprocess.Popen[bytes] | None = None,
              grace: float = _GRACE) -> None:
    """End every process of group pgid: SIGTERM, up to grace seconds, then SIGKILL.

    A process that started a session of its own (setsid, a daemon(3) double fork) has
    left the group and is out of reach; see docs/migration.md.
    """
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 1.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        except PermissionError:
            pass
        deadline = time.monotonic() + wait
        while True:
            if leader is not None:
                leader.poll()  # reap it, or its zombie keeps the group alive
            if not _group_alive(pgid) or time.monotonic() >= deadline:
                break
            time.sleep(0.02)
        if not _group_alive(pgid):
            break
    if leader is not None:
        leader.poll()


def end_groups(pgids: list[int]) -> None:
    """End the process groups a migration's restart commands left running (and forget
    them): a rollback must leave nothing of the trigger running."""
    while pgids:
        end_group(pgids.pop())
