"""The append-only, hash-chained audit log every decision and step lands in.

`audit.jsonl` in a state directory holds one JSON record a line: seq, time, actor,
event, fields, prev (the previous record's hash) and hash (sha256 over the canonical
JSON of the rest). The chain head (seq and hash of the last record) is anchored in a
second file, `audit.head`, replaced atomically after each append, so that deleting the
tail of the log is detected too. That is tamper-evident against edits of the log alone;
against someone who can rewrite both files and recompute every hash, dasct.checkpoint
signs checkpoints with a key they do not have.

Records are appended and the head replaced through dasct.durable, like every file dasct
must not lose.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import re
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dasct.durable import append_line, atomic_write, fsync_dir
from dasct.errors import DasctError
from dasct.redact import REDACTED, SECRET_FIELD, redact, secret_values

LOG = "audit.jsonl"
HEAD = "audit.head"
LOCK = "audit.lock"
GENESIS = "0" * 64
_KEYS = ("seq", "time", "actor", "event", "fields", "prev", "hash")
_EVENT = re.compile(r"[a-z][a-z0-9_.-]{0,63}")
_MAX_PROBLEMS = 20


class AuditError(DasctError):
    """The audit log cannot be appended to (it was tampered with, or is unreadable)."""


def _canonical(record: Mapping[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def record_hash(record: Mapping[str, Any]) -> str:
    """sha256 over the canonical JSON of a record without its own hash."""
    return hashlib.sha256(_canonical({k: v for k, v in record.items() if k != "hash"})).hexdigest()


def actor() -> str:
    """user@host of the process writing the record."""
    try:
        user = getpass.getuser()
    except Exception:  # no login name in a bare container: fall back to the uid
        user = f"uid{os.getuid()}"
    return f"{user}@{socket.gethostname()}"


def _plain(value: Any, secrets: list[str]) -> Any:
    """A JSON-safe copy of a field value without secrets (dasct.redact), nested values
    included."""
    if isinstance(value, Mapping):
        return {
            redact(str(k), secrets): REDACTED if SECRET_FIELD.search(str(k))
            else _plain(v, secrets)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        return [_plain(v, secrets) for v in items]
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat()
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else str(value)
    return redact(str(value), secrets)


def _write_head(state_dir: Path, seq: int, digest: str) -> None:
    data = (json.dumps({"seq": seq, "hash": digest}) + "\n").encode()
    atomic_write(state_dir / HEAD, data, mode=0o640)


def _read_head(state_dir: Path) -> tuple[int, str] | None:
    path = state_dir / HEAD
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise AuditError(f"{path}: unreadable chain head: {exc}") from None
    if (
        not isinstance(data, dict)
        or type(data.get("seq")) is not int
        or not isinstance(data.get("hash"), str)
    ):
        raise AuditError(f"{path}: malformed chain head")
    return data["seq"], data["hash"]


def _last_line(path: Path) -> tuple[bytes | None, int]:
    """The last complete line of a file and the length of any torn tail after it."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return None, 0
    with path.open("rb") as f:
        block = 1 << 16
        pos = size
        tail = b""
        while pos > 0:
            step = min(block, pos)
            pos -= step
            f.seek(pos)
            tail = f.read(step) + tail
            lines = tail.split(b"\n")
            # lines[-1] is the torn tail (b"" when the file ends with a newline)
            if len(lines) >= 3 or (pos == 0 and len(lines) >= 2):
                return lines[-2], len(lines[-1])
        return None, len(tail)


@contextmanager
def locked(state_dir: Path) -> Iterator[None]:
    """Hold the audit lock of state_dir: appends and checkpoints are serialized on it."""
    import fcntl

    with (state_dir / LOCK).open("a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


class AuditLog:
    """The audit log of one state directory; append is safe across processes."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / LOG
        self.started = False  # this object wrote the log's first record (dasct.checkpoint)

    def append(self, event: str, **fields: Any) -> dict[str, Any]:
        """Append one record (fsynced, head re-anchored) and return it.

        Refuses (AuditError) to extend a log whose tail no longer matches its anchor, so
        that appending can never paper over a truncation.
        """
        if not _EVENT.fullmatch(event):
            raise AuditError(f"not an audit event name: {event!r}")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with locked(self.state_dir):
            seq, prev = self._tail()
            record: dict[str, Any] = {
                "seq": seq + 1,
                "time": datetime.now(timezone.utc).isoformat(timespec="microseconds"),
                "actor": actor(),
                "event": event,
                "fields": _plain(fields, secret_values()),
                "prev": prev,
            }
            record["hash"] = record_hash(record)
            append_line(self.path, _canonical(record) + b"\n")
            if seq == 0:
                fsync_dir(self.state_dir)
                self.started = True
            _write_head(self.state_dir, record["seq"], record["hash"])
        return record

    def _tail(self) -> tuple[int, str]:
        """(seq, hash) of the last record, after checking it against the anchor."""
        last, torn = _last_line(self.path)
        if torn:
            # A crash mid-append leaves a partial line that was never acknowledged: drop
            # it, so that the next record starts on a line of its own.
            with self.path.open("r+b") as f:
                f.truncate(self.path.stat().st_size - torn)
                os.fsync(f.fileno())
        head = _read_head(self.state_dir)
        if last is None:
            if head is not None:
                raise AuditError(f"{self.path}: the log is gone but its head says seq {head[0]}")
            return 0, GENESIS
        try:
            record = json.loads(last)
            seq, digest = record["seq"], record["hash"]
        except (ValueError, KeyError, TypeError):
            raise AuditError(f"{self.path}: the last record is unreadable") from None
        if not isinstance(seq, int) or record_hash(record) != digest or last != _canonical(
            record
        ):
            raise AuditError(f"{self.path}: the last record (seq {seq}) was altered")
        if head is None:
            raise AuditError(f"{self.path}: the chain head {HEAD} is missing")
        # The head may lag by one record: a crash between the append and the anchor.
        if (seq, digest) != head and not (seq == head[0] + 1 and record["prev"] == head[1]):
            raise AuditError(
                f"{self.path}: the log ends at seq {seq} but its head says seq {head[0]} "
                "(truncated or rewritten); run `dasct audit verify`"
            )
        return seq, digest


def records(state_dir: Path) -> list[dict[str, Any]]:
    """Every readable record of the log, in file order (for display; no verification)."""
    path = Path(state_dir) / LOG
    if not path.exists():
        return []
    out = []
    for line in path.read_bytes().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            out.append(record)
    return out


def verify(state_dir: Path) -> list[str]:
    """What is wrong with the log in state_dir: edits, deletions, reordering, truncation."""
    state_dir = Path(state_dir)
    path = state_dir / LOG
    problems: list[str] = []
    try:
        head = _read_head(state_dir)
    except AuditError as exc:
        problems.append(str(exc))
        head = None
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        if head is not None:
            problems.append(f"{path}: missing, but its head says seq {head[0]}")
        return problems
    except OSError as exc:
        return [*problems, f"{path}: unreadable: {exc.strerror}"]
    lines = data.split(b"\n")
    if lines[-1]:
        problems.append(f"{path}: the last line is incomplete (a torn write)")
    prev, expected, last_seq = GENESIS, 1, 0
    hashes: dict[int, str] = {}
    for number, line in enumerate(lines[:-1], start=1):
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except ValueError:
            problems.append(f"{where}: not a JSON record")
            continue
        if not isinstance(record, dict) or set(record) != set(_KEYS):
            problems.append(f"{where}: not an audit record")
            continue
        seq = record["seq"]
        if type(seq) is not int:
            problems.append(f"{where}: seq is not an integer")
            continue
        if record_hash(record) != record["hash"]:
            problems.append(f"{where}: record seq {seq} was edited (its hash does not match)")
        elif line != _canonical(record):
            # Same record, other bytes (e.g. \u00e9 rewritten as \u00E9): the log is written
            # in canonical form only, so any other spelling is an edit too.
            problems.append(f"{where}: record seq {seq} was edited (not as it was written)")
        if seq != expected:
            what = "missing" if seq > expected else "out of order"
            problems.append(f"{where}: seq {seq} where {expected} was expected "
                            f"(records {what})")
        elif record["prev"] != prev:
            problems.append(f"{where}: seq {seq} does not chain to the record before it")
        prev, expected, last_seq = record["hash"], seq + 1, seq
        hashes[seq] = record["hash"]
    if head is None:
        if last_seq and not any("chain head" in p for p in problems):
            problems.append(f"{state_dir / HEAD}: missing, the log cannot be checked for "
                            "truncation")
    else:
        head_seq, head_hash = head
        if head_seq > last_seq:
            problems.append(f"{path}: truncated: ends at seq {last_seq}, its head says "
                            f"seq {head_seq}")
        elif hashes.get(head_seq) != head_hash:
            problems.append(f"{path}: record seq {head_seq} is not the one the head anchored")
        elif last_seq > head_seq + 1:
            problems.append(f"{path}: {last_seq - head_seq} records after the anchored head "
                            f"seq {head_seq}")
    if len(problems) > _MAX_PROBLEMS:
        more = len(problems) - _MAX_PROBLEMS
        problems = [*problems[:_MAX_PROBLEMS], f"... and {more} more problem(s)"]
    return problems
