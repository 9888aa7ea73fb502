"""The forensic trace (seed 004, example 3): detail kept from just before a failure.

Full debug detail every night is too much to keep and none is too little when a night
goes wrong. So each run (a `migrate run`, a revert, the same on an SSH target, an agent's
install) keeps its detailed records in memory, in a ring buffer bounded by a number of
records and an age: every audit event, every line the run printed, each journal step with
its timing, each command's argv, exit status and output tails. Nothing is written while
the run goes well. When a trigger is rolled back or escalated, a trigger is refused, or
the run itself fails, the whole buffer is written once, at the end of the run, to
`<state_dir>/traces/<stamp>.jsonl` (beside archives/), and a `trace-kept` audit record
names the triggers that failed and holds the file's sha256, so `dasct migrate trace`
shows it only after checking it against the audit log. Traces are pruned like archives.

With `trace_full_after_failure` (the default) a kept trace also marks the environment, and
its next run keeps every record, unbounded, and writes its trace whatever its outcome:
the night after a failure is the one a person wants to see in full.

Every string goes through the one redaction (redact.scrub) when it is added, so a secret
a command printed never reaches the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dasct import audit, durable, redact
from dasct.errors import DasctError

__all__ = ["FULL_MARK", "Kept", "Trace", "TraceError", "find", "load", "prune", "traces_dir"]

FULL_MARK = "trace-full-next-run"
_FORMAT = "dasct-trace"


class TraceError(DasctError):
    """A kept trace that is missing, unreadable, or not the one the audit log recorded."""


@dataclass(frozen=True)
class Kept:
    """A trace written to disk: where, its sha256, how many records."""

    path: Path
    sha256: str
    records: int
    dropped: int


def traces_dir(state_dir: Path) -> Path:
    """Where an environment's kept traces are (beside archives/)."""
    return state_dir / "traces"


class Trace:
    """The ring buffer of one run: the last `records` records none older than `minutes`;
    unbounded when `full` (the run after a failure)."""

    def __init__(self, *, records: int = 5000, minutes: float = 60.0, full: bool = False,
                 clock: Any = time.time) -> None:
        self.full = full
        self.limit = None if full else records
        self.max_age = None if full else minutes * 60.0
        self._clock = clock
        self._buf: deque[dict[str, Any]] = deque(maxlen=self.limit)
        self.dropped = 0  # records the bound pushed out
        self.seq = 0
        # What makes this run's trace worth keeping: (trigger or "", what happened).
        self.failures: list[tuple[str, str]] = []

    def add(self, record: str, /, **fields: Any) -> None:
        """Record one detail of type record (audit, output, command, file, sql, session),
        redacted now: the buffer never holds a secret."""
        now = self._clock()
        self.seq += 1
        if self.limit is not None and len(self._buf) == self.limit:
            self.dropped += 1
        self._buf.append({"seq": self.seq, "t": round(now, 6), "record": record,
                          "fields": redact.scrub(fields)})
        if self.max_age is not None:
            while self._buf and self._buf[0]["t"] < now - self.max_age:
                self._buf.popleft()
                self.dropped += 1

    def failed(self, trigger: str, why: str) -> None:
        """Say the run failed (rolled back, escalated, refused, raised): keep the trace."""
        self.failures.append((trigger, why))

    def records(self) -> list[dict[str, Any]]:
        """What the buffer holds now, oldest first."""
        return list(self._buf)

    def keep(self, state_dir: Path) -> Kept:
        """Write the whole buffer to traces/<stamp>.jsonl (atomically) and return it."""
        rows = self.records()
        head = {"format": _FORMAT, "version": 1, "full": self.full, "limit": self.limit,
                "max_age_seconds": self.max_age, "dropped": self.dropped,
                "failures": redact.scrub([why for _, why in self.failures]),
                "triggers": self.names(),
                "records": len(rows)}
        text = "".join(json.dumps(r, sort_keys=True, default=str) + "\n" for r in [head, *rows])
        data = text.encode()
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
        folder = traces_dir(state_dir)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{stamp}-{os.getpid()}.jsonl"
        durable.atomic_write(path, data, mode=0o640)
        return Kept(path, hashlib.sha256(data).hexdigest(), len(rows), self.dropped)

    def names(self) -> list[str]:
        """The triggers the failures name, first failure first (`run` when none does)."""
        found = [name for name, _ in self.failures if name]
        return list(dict.fromkeys(found)) or ["run"]


def keep_recorded(t: Trace, state_dir: Path, env_name: str,
                  record: Callable[..., None]) -> tuple[Kept, str]:
    """Keep t, append through record (a Reporter's audit) the `trace-kept` record that
    find() and load() verify against, and return it with the line that says where it is."""
    kept = t.keep(state_dir)
    record("trace-kept", path=kept.path.relative_to(state_dir).as_posix(), sha256=kept.sha256,
           records=kept.records, dropped=kept.dropped, full=t.full, triggers=t.names(),
           failures=[why for _, why in t.failures])
    return kept, (f"trace: {kept.records} record(s) kept in {kept.path}; `dasct migrate "
                  f"trace {t.names()[0]} --env {env_name}` shows them")


def find(state_dir: Path, tid: str | None = None) -> list[dict[str, Any]]:
    """The `trace-kept` audit records (their fields) naming tid, or all; oldest first.
    The audit log is checked first (its hash chain): the digests it holds are what a
    trace is believed against."""
    problems = audit.verify(state_dir)
    if problems:
        raise TraceError(f"{state_dir}: the audit log does not verify ({problems[0]}); "
                         "its trace digests are not believed (see `dasct audit verify`)")
    out = []
    for record in audit.records(state_dir):
        fields = record.get("fields", {})
        named = tid is None or tid in fields.get("triggers", ())
        if record.get("event") == "trace-kept" and named:
            out.append(fields)
    return out


def load(state_dir: Path, entry: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A kept trace's head and records, verified against the sha256 its audit record holds."""
    path = state_dir / str(entry.get("path", ""))
    if traces_dir(state_dir) not in path.parents:
        raise TraceError(f"{state_dir}: a trace-kept record names {entry.get('path')!r}, "
                         "which is not under traces/")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TraceError(f"{path}: cannot read the trace ({exc.strerror}); pruned by "
                         "retention or removed") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != entry.get("sha256"):
        raise TraceError(f"{path}: its sha256 {digest[:12]} is not the "
                         f"{str(entry.get('sha256'))[:12]} the audit log recorded; the trace "
                         "was changed after it was kept")
    try:
        rows = [json.loads(line) for line in data.decode().splitlines()]
    except ValueError:
        raise TraceError(f"{path}: not a dasct trace (a line is not JSON)") from None
    if not rows or not isinstance(rows[0], dict) or rows[0].get("format") != _FORMAT:
        raise TraceError(f"{path}: not a dasct trace")
    return rows[0], rows[1:]


def prune(state_dir: Path, *, keep_count: int, keep_days: int) -> list[Path]:
    """Remove kept traces beyond retention, as archives are kept: those older than
    keep_days that are not among the newest keep_count."""
    folder = traces_dir(state_dir)
    if not folder.is_dir():
        return []
    kept = sorted(folder.glob("*.jsonl"), key=lambda p: p.name)  # the name is the time
    cutoff = time.time() - keep_days * 86400
    removed = []
    for path in kept[:-keep_count] if keep_count else kept:
        with suppress(OSError):
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed.append(path)
    return removed
