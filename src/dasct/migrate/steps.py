"""The steps of one migration: SQL deploy and verify, file changes, verify commands.

Each function does one step and raises StepError on failure; the engine journals them
and decides what a failure means.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from dasct import durable, redact
from dasct.errors import DasctError
from dasct.migrate import trigger as trig
from dasct.migrate import trigger_check as trigc
from dasct.migrate.archive import write_beside
from dasct.migrate.database import Database, DatabaseError
from dasct.procgroup import end_group, group_alive

DEFAULT_VERIFY_TIMEOUT = 600.0
_TAIL_BYTES = 64 * 1024  # how much of a failed command's output is read for its last line
_TRACE_TAIL = 2048  # bytes of stdout and of stderr a trace record keeps of a command
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
    """The trigger's restart, health and verify commands, then the environment's verify
    commands (each a verify with no input or expected output: exit 0, time measured)."""
    out = list(t.commands)
    for i, line in enumerate(verify):
        argv = tuple(shlex.split(line))
        if argv:
            # They never enter a trigger file, so their name need not be a valid one.
            out.append(trig.StepCommand(f"verify[{i}]", argv, "verify", DEFAULT_VERIFY_TIMEOUT))
    return out


def run_command(cmd: trig.StepCommand, *, root: Path, environment: str,
                staging: Path | None = None, left_running: list[int] | None = None,
                record: Callable[..., None] | None = None) -> float:
    """Run a command in the target root without a shell; return its response time.

    The command gets dasct's environment without its secrets (redact.child_env) and runs
    in a session of its own, so that everything it starts can be ended with it: on a
    failure or a timeout the whole process group goes; after a check (health, verify)
    whatever it left behind goes too. Only a restart command may leave processes (a
    daemon); their group id is appended to left_running, for a rollback to end them.
    A verify command reads its input payload (from staging) on stdin and must exit with
    its expected status, print exactly its expected output and answer within max_seconds;
    every other command must exit 0. A verify command's StepError says how long it took.
    record (the forensic trace) is given, however the command ends, its argv, exit status,
    time and the tails of its output.
    """
    env = redact.child_env({"DASCT_ENVIRONMENT": environment, "DASCT_TARGET_ROOT": str(root)})
    # Files, not pipes: a daemon that keeps its inherited stdout open would hold a pipe
    # open and make the wait for the end of output last as long as the daemon.
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            _stdin(cmd, staging) as stdin:
        start = time.monotonic()
        try:
            proc = subprocess.Popen(cmd.argv, cwd=root, env=env, stdin=stdin,
                                    stdout=out, stderr=err, start_new_session=True)
        except FileNotFoundError:
            raise StepError(f"command {cmd.name}: {cmd.argv[0]!r} not found") from None
        try:
            return _checked(cmd, proc, out, err, start, staging, left_running)
        finally:
            if record is not None:
                record(name=cmd.name, kind=cmd.kind, argv=list(cmd.argv), exit=proc.returncode,
                       seconds=round(time.monotonic() - start, 6),
                       stdout=_tail(out), stderr=_tail(err))


def _checked(cmd: trig.StepCommand, proc: subprocess.Popen[bytes], out: IO[bytes],
             err: IO[bytes], start: float, staging: Path | None,
             left_running: list[int] | None) -> float:
    """Wait for a started command and hold it to what it must do (run_command)."""
    try:
        code = proc.wait(timeout=cmd.timeout)
    except subprocess.TimeoutExpired:
        end_group(proc.pid, leader=proc)
        raise StepError(f"command {cmd.name}: timed out after {cmd.timeout:g}s") from None
    except BaseException:  # Ctrl-C no longer reaches a command in its own session
        end_group(proc.pid, leader=proc)
        raise
    seconds = time.monotonic() - start
    if code != cmd.expect_exit or cmd.kind != "restart":
        end_group(proc.pid)
    elif left_running is not None and group_alive(proc.pid):
        left_running.append(proc.pid)
    # A verify command's failure says how long it took: a slow answer may be the cause.
    took = f" after {seconds:.3f}s" if cmd.kind == "verify" else ""
    if code != cmd.expect_exit:
        tail = _last_line(err) or _last_line(out)
        expected = f" (expected {cmd.expect_exit})" if cmd.expect_exit else ""
        raise StepError(f"command {cmd.name} exited {code}{expected}{took}"
                        + (f": {tail}" if tail else ""))
    if cmd.expect_output is not None and staging is not None:
        differs = _output_differs(out, trigc.read_payload(staging, cmd.expect_output))
        if differs:
            raise StepError(f"command {cmd.name}: {differs}{took}")
    if cmd.max_seconds is not None and seconds > cmd.max_seconds:
        raise StepError(f"command {cmd.name}: answered in {seconds:.3f}s, more than its "
                        f"max_seconds {cmd.max_seconds:g}")
    return seconds


@contextmanager
def _stdin(cmd: trig.StepCommand, staging: Path | None) -> Iterator[IO[bytes] | int]:
    """The verify command's input payload, opened for reading (checked: read_payload), or
    /dev/null for every other command."""
    if cmd.input is None or staging is None:
        yield subprocess.DEVNULL
        return
    with tempfile.TemporaryFile() as f:
        f.write(trigc.read_payload(staging, cmd.input))
        f.seek(0)
        yield f


def _output_differs(out: IO[bytes], expected: bytes) -> str | None:
    """Why a command's output is not exactly the expected bytes (first line that differs,
    redacted and clipped), or None when it is."""
    out.seek(0)
    got = out.read(len(expected) + 1)
    if got == expected:
        return None
    got_lines, want_lines = got.splitlines(), expected.splitlines()
    for n, (g, w) in enumerate(zip(got_lines, want_lines, strict=False), 1):
        if g != w:
            return f"output differs from the expected output at line {n}: got {_clip(g)}, " \
                   f"expected {_clip(w)}"
    if len(got) > len(expected):
        return f"output is longer than the expected output ({len(expected)} bytes)"
    return f"output ends early: {len(got)} of the {len(expected)} expected bytes"


def _clip(line: bytes) -> str:
    text = redact.redact(line.decode(errors="replace"))
    return repr(text if len(text) <= 80 else text[:77] + "...")


def _tail(f: IO[bytes]) -> str:
    """The end of a command's output, for the trace (which redacts it)."""
    size = f.seek(0, os.SEEK_END)
    f.seek(max(0, size - _TRACE_TAIL))
    text = f.read().decode(errors="replace")
    return text if size <= _TRACE_TAIL else "..." + text


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


def end_groups(pgids: list[int]) -> None:
    """End the process groups a migration's restart commands left running (and forget
    them): a rollback must leave nothing of the trigger running."""
    while pgids:
        end_group(pgids.pop())
