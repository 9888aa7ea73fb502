"""The intent/outcome journal: the engine's memory across a crash.

Before a step touches the target the engine writes `intent`, after it `done`; each record
is fsynced before the engine goes on. A journal file that exists when a run starts means
the previous run died in a migration: `recovery.recover` reads it and finishes or rolls back.

Test hook: `DASCT_TEST_KILL_AT` makes the process SIGKILL itself right after a journal
record is durable, to prove crash safety. Its value is the 1-based number of the record
in this process (e.g. `3`), or `STEP:PHASE` (e.g. `file:0:intent`); `STEP:applied` kills
after the step took effect and before its `done` record. `DASCT_TEST_DROP_AT` (same
values) SIGKILLs the parent process instead: on a remote target that is the SSH server's
session, so the connection drops there while the engine lives on (tests/remote). Nothing
else reads them.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dasct.durable import append_line, fsync_dir
from dasct.redact import scrub

JOURNAL_NAME = "journal.jsonl"
LAST_NAME = "journal.last.jsonl"
KILL_VAR = "DASCT_TEST_KILL_AT"
DROP_VAR = "DASCT_TEST_DROP_AT"

_records_written = 0
# What recovery reads back to find the migration and its steps: dasct's own identifiers,
# never redacted. Everything else (a rollback's reason quoting a command) is.
_IDENTIFIERS = ("step", "phase", "time", "trigger", "path", "steps", "kind", "reverts",
                "change", "op", "command")


def _maybe_die(step: str, phase: str) -> None:
    for variable, pid in ((KILL_VAR, os.getpid), (DROP_VAR, os.getppid)):
        target = os.environ.get(variable)
        if target and (target == str(_records_written) or target == f"{step}:{phase}"):
            os.kill(pid(), signal.SIGKILL)


class Journal:
    """The journal of the one migration in flight in an environment."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / JOURNAL_NAME
        self.state_dir = state_dir

    @classmethod
    def begin(cls, state_dir: Path, *, trigger: str, **data: Any) -> Journal:
        """Start the journal of a new migration (there must be none in flight)."""
        journal = cls(state_dir)
        state_dir.mkdir(parents=True, exist_ok=True)
        if journal.path.exists():
            raise RuntimeError(f"{journal.path} exists: recover the interrupted migration first")
        journal.record("begin", "begin", trigger=trigger, **data)
        fsync_dir(state_dir)
        return journal

    def record(self, step: str, phase: str, /, **data: Any) -> None:
        """Append one record, redacted (dasct.redact), and make it durable before returning."""
        global _records_written
        record = {"step": step, "phase": phase, "time": time.time(), **data}
        line = json.dumps(scrub(record, keep=_IDENTIFIERS))
        append_line(self.path, line.encode() + b"\n", mode=0o644)
        _records_written += 1
        _maybe_die(step, phase)

    @contextmanager
    def step(self, name: str, /, **data: Any) -> Iterator[dict[str, Any]]:
        """Journal intent before the block and done after it (nothing if it raises).

        The block may put what it measured (a verify command's response time) into the
        dict it is given: the done record carries it, so a commit finished by recovery
        after a crash still reports it.
        """
        self.record(name, "intent", **data)
        measured: dict[str, Any] = {}
        yield measured
        _maybe_die(name, "applied")  # the step took effect but is not journaled yet
        self.record(name, "done", **data, **measured)

    def finish(self, outcome: str) -> None:
        """Close the journal: the migration is settled and needs no recovery."""
        self.record("end", outcome)
        os.replace(self.path, self.state_dir / LAST_NAME)
        fsync_dir(self.state_dir)


def pending(state_dir: Path) -> list[dict[str, Any]] | None:
    """The records of an interrupted migration, or None when nothing is in flight."""
    path = state_dir / JOURNAL_NAME
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    records = []
    for line in raw.splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            break  # a torn last record (power loss): the step it describes never started
    return records


def done_steps(records: list[dict[str, Any]]) -> set[str]:
    """The steps whose `done` record is in the journal."""
    return {r["step"] for r in records if r["phase"] == "done"}
