"""What a ledger record is: its canonical bytes, its id, what makes one valid, and the
check of one read back from git; the ledger's one-line, redacted error.

Separate from the ledger itself (ledger_read.py reads it, ledger.py writes it) because both
sides and the QA modules that build records need it, and it runs no git.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from dasct.errors import DasctError, GitError

# The index asks for links_fingerprint() whenever it builds: json, hashlib, tempfile,
# datetime, random, pathlib and dasct.redact (~17 ms of imports together) are imported by
# the functions that read or write records, not by the ledger's modules.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

TYPE_RE = re.compile(r"[a-z][a-z0-9-]{0,39}")
# Microseconds: the records of one actor keep their order (a link and the unlink right
# after it: the last one wins); seconds alone are accepted too.
AT_RE = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.\d{6})?Z")


class LedgerError(DasctError):
    """The ledger could not be read, written, fetched or pushed (one line, redacted)."""


@dataclass(frozen=True)
class Record:
    """One fact. The ledger stores it and never interprets `type` or `data`."""

    type: str
    data: Mapping[str, Any] = field(default_factory=dict)
    at: str = ""  # ISO 8601 UTC with microseconds (seconds alone accepted); append fills it
    by: str = ""  # who; append fills it (see actor)

    def __hash__(self) -> int:  # data is a dict: hash by what the record says
        return hash(self.id)

    def canonical(self) -> bytes:
        """The stored bytes: sorted keys, no spaces, UTF-8, one line. Made once per
        record, like its id (a ticket's JSON is kilobytes: curl's 5,682 were 20 MB)."""
        made: bytes | None = self.__dict__.get("_canonical")
        if made is None:
            import json

            made = (json.dumps({"type": self.type, "at": self.at, "by": self.by,
                                "data": self.data}, sort_keys=True, separators=(",", ":"),
                               ensure_ascii=False, allow_nan=False) + "\n").encode()
            object.__setattr__(self, "_canonical", made)  # a cache, not a field
        return made

    @property
    def id(self) -> str:
        """The digest of the canonical content: the same fact written twice is one record.
        Computed once per record (data is a fact: it is not changed after creation)."""
        ident: str | None = self.__dict__.get("_id")
        if ident is None:
            from hashlib import sha256

            ident = sha256(self.canonical()).hexdigest()
            object.__setattr__(self, "_id", ident)  # a cache, not a field: not compared
        return ident

    @property
    def path(self) -> str:
        """Where the record lives in the ledger's tree."""
        ident = self.id
        return f"{self.type}/{ident[:2]}/{ident}.json"


def _json_problem(value: Any, where: str) -> str | None:
    """Why value is not plain JSON (str keys; str, int, finite float, bool, None,
    list, dict), or None."""
    if value is None or isinstance(value, (str, bool, int)):
        return None
    if isinstance(value, float):
        return None if value == value and abs(value) != float("inf") else f"{where} is {value}"
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            problem = _json_problem(item, f"{where}[{i}]")
            if problem:
                return problem
        return None
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{where} has a key {key!r} that is not a string"
            problem = _json_problem(item, f"{where}.{key}")
            if problem:
                return problem
        return None
    return f"{where} is a {type(value).__name__}, not JSON"


def problem(record: Any) -> str | None:
    """What is wrong with a record (one phrase), or None when it may be stored."""
    if not isinstance(record, Record):
        return f"is a {type(record).__name__}, not a ledger Record"
    return _shape_problem(record) or _json_problem(record.data, "data")


def _shape_problem(record: Record) -> str | None:
    """What is wrong with a record's type, at and by, and whether data is a mapping."""
    if not isinstance(record.type, str) or not TYPE_RE.fullmatch(record.type):
        return f"type {record.type!r} must match [a-z][a-z0-9-]* (40 characters at most)"
    if not isinstance(record.data, Mapping):
        return f"data is a {type(record.data).__name__}, not a mapping"
    if not isinstance(record.at, str) or (record.at and not _valid_at(record.at)):
        return (f"at {record.at!r} is not an ISO 8601 UTC time "
                "(YYYY-MM-DDTHH:MM:SS.ffffffZ, or without the fraction)")
    if not isinstance(record.by, str) or any(c in record.by for c in "\n\r\0"):
        return f"by {record.by!r} must be one line of text"
    return None


def _valid_at(at: str) -> bool:
    from datetime import datetime

    match = AT_RE.fullmatch(at)
    if not match:
        return False
    try:  # the constructor checks the ranges (Feb 30 included), cheaper than strptime
        y, mo, d, h, mi, sec = (int(g) for g in match.groups())
        datetime(y, mo, d, h, mi, sec)
    except ValueError:
        return False
    return True


def stamps(count: int) -> list[str]:
    """count times as records' `at`, from now one microsecond apart: the records of one
    append read back in the order they were given (a request before its ticket's
    `filed`), where one shared time would leave them in the order of their ids."""
    from datetime import datetime, timedelta, timezone

    start = datetime.now(timezone.utc)
    step = timedelta(microseconds=1)
    return [(start + n * step).strftime("%Y-%m-%dT%H:%M:%S.%fZ") for n in range(count)]


def parse(content: bytes, path: str) -> Record | str:
    """The record a ledger file holds, or why it holds none. Read from disk, so verified:
    the content must be the canonical form of a valid record, named by its digest."""
    import json
    from hashlib import sha256

    try:
        raw = json.loads(content)
    except ValueError as exc:  # UnicodeDecodeError included
        return f"not valid JSON ({exc})"
    if not isinstance(raw, dict) or raw.keys() != {"type", "at", "by", "data"}:
        return "not a ledger record (expected the keys type, at, by, data)"
    # json.loads gives plain JSON, NaN aside (canonical() refuses it): no deep walk needed.
    record = Record(type=raw["type"], data=raw["data"], at=raw["at"], by=raw["by"])
    wrong = _shape_problem(record) or ("its time (at) is empty" if not record.at else None)
    if wrong:
        return wrong
    try:
        canonical = record.canonical()
    except ValueError:
        return "it holds a number JSON cannot carry (NaN or infinity)"
    ident = sha256(canonical).hexdigest()
    if canonical != content or path != f"{record.type}/{ident[:2]}/{ident}.json":
        return "its content does not match its name (edited, or not written by dasct)"
    object.__setattr__(record, "_id", ident)
    return record


def clean(text: str) -> str:
    """text without a secret (it may quote git, or a remote's URL with a token in it)."""
    from dasct import redact

    return redact.redact(text)


def error(message: str) -> LedgerError:
    return LedgerError(clean(message))


def detail(exc: GitError) -> str:
    """git's own first error line, without the command line (long with our pins)."""
    return str(exc).split("` failed: ", 1)[-1]

