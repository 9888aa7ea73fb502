"""Trigger files: the self-contained, checksummed instruction to migrate one enhancement.

A staging directory holds `triggers/<environment>/<id>.json` and the content-addressed
payloads `objects/<aa>/<sha256>` they name (file contents and SQL scripts), so the target
needs no git access. The format is documented, versioned, in docs/triggers.md. Everything
read from disk is hostile until verified: every problem is a one-line TriggerError.

This module is the format: the records, the canonical JSON, digest and signature, safe
paths, where a trigger and its payloads live in a staging directory. Reading and verifying
one (parse, load) is trigger_read.py; checking its payloads and its target before a run is
trigger_check.py; writing one (the document, payloads, retarget for promotion) is
trigger_write.py; building one from a git range is create.py's job.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from dasct.errors import DasctError

FORMAT = "dasct-trigger"
FORMAT_VERSION = 1
MAX_TRIGGER_BYTES = 16 << 20  # a trigger is a manifest; anything this big is not one

FileOp = Literal["add", "modify", "delete", "rename"]
CommandKind = Literal["restart", "health", "verify"]
FILE_OPS: tuple[FileOp, ...] = ("add", "modify", "delete", "rename")
COMMAND_KINDS: tuple[CommandKind, ...] = ("restart", "health", "verify")
MODES = {"644": 0o644, "755": 0o755}

SHA_PATTERN = re.compile(r"[0-9a-f]{64}")
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
NAME_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@+-]{0,127}")
ENV_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class TriggerError(DasctError):
    """A trigger that cannot be built, read or trusted; one line naming the file."""

    def __init__(self, message: str) -> None:
        # Hostile file names and JSON values may carry newlines; the message stays one line.
        super().__init__(message.replace("\r", "\\r").replace("\n", "\\n"))


@dataclass(frozen=True)
class SqlChange:
    """One Sqitch-style change: sha256 of its deploy, revert and (optional) verify script."""

    name: str
    deploy: str
    revert: str
    verify: str | None


@dataclass(frozen=True)
class FileChange:
    """One file operation; paths are posix, relative to the target root.

    pre_sha256 is the content the target must have before (None for add); post_sha256
    names the payload object with the new content (None for delete).
    """

    op: FileOp
    path: str
    old_path: str | None
    pre_sha256: str | None
    post_sha256: str | None
    mode: int  # 0o644 or 0o755

    @property
    def label(self) -> str:
        """The path for people: `OLD -> NEW` for a rename."""
        return f"{self.old_path} -> {self.path}" if self.old_path else self.path


@dataclass(frozen=True)
class StepCommand:
    """A command run after the files: restart the system, check its health, or verify it.

    A verify command (the seed's remote testing) may read predetermined input from a
    payload on stdin and must then exit with expect_exit and, when expect_output names a
    payload, print exactly its bytes; its response time is measured, and with max_seconds
    a slower answer fails verification. Restart and health commands leave these at their
    defaults (no input, exit 0, any output, no limit).
    """

    name: str
    argv: tuple[str, ...]
    kind: CommandKind
    timeout: float  # seconds
    input: str | None = None  # sha256 of the payload fed on stdin
    expect_output: str | None = None  # sha256 of the payload stdout must equal
    expect_exit: int = 0
    max_seconds: float | None = None


@dataclass(frozen=True)
class Trigger:
    """A verified trigger file (see load)."""

    version: int
    id: str
    system: str
    environment: str
    not_before: datetime  # tz-aware UTC
    expires: datetime  # tz-aware UTC; not run after this, reported instead
    defects: tuple[str, ...]
    commits: tuple[str, ...]
    sql: tuple[SqlChange, ...]
    files: tuple[FileChange, ...]
    commands: tuple[StepCommand, ...]
    depends_on: tuple[str, ...]
    conflicts_with: tuple[str, ...]
    digest: str
    signature: str | None
    path: Path
    # Which verification key checked the signature: 0 the current key, N the N-th previous
    # one; None when the trigger is unsigned or no key was available to check it.
    signed_by: int | None = None

    @property
    def staging(self) -> Path:
        """The staging directory the trigger file lives in (triggers/<env>/<id>.json)."""
        return self.path.parent.parent.parent

    def payloads(self) -> tuple[str, ...]:
        """Every payload object the trigger needs, in step order, without repeats."""
        names: list[str] = []
        for change in self.sql:
            names += [change.deploy, change.revert] + ([change.verify] if change.verify else [])
        names += [f.post_sha256 for f in self.files if f.post_sha256]
        names += [n for c in self.commands for n in (c.input, c.expect_output) if n]
        return tuple(dict.fromkeys(names))


# --------------------------------------------------------------------------- helpers


def clip(value: object, limit: int = 60) -> str:
    """repr(value), cut to limit characters: a hostile value in a one-line message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def sha256_hex(data: bytes) -> str:
    """The lowercase hex SHA-256 of data."""
    return hashlib.sha256(data).hexdigest()


def canonical(doc: Mapping[str, Any]) -> bytes:
    """The canonical JSON the digest covers: sorted keys, no spaces, ASCII only."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def compute_digest(doc: Mapping[str, Any]) -> str:
    """sha256 over the canonical JSON of everything but digest and signature."""
    body = {k: v for k, v in doc.items() if k not in ("digest", "signature")}
    return sha256_hex(canonical(body))


def sign(digest: str, key: bytes) -> str:
    """HMAC-SHA256 of the digest (its hex text) with key."""
    return hmac.new(key, digest.encode("ascii"), hashlib.sha256).hexdigest()


def format_time(when: datetime) -> str:
    """A UTC time as the trigger stores it: 2026-11-23T23:00:00Z."""
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def path_problem(path: str) -> str | None:
    """Why a trigger path is not a safe relative posix path, or None when it is."""
    if not path:
        return "is empty"
    if "\x00" in path:
        return "contains NUL"
    if "\\" in path:
        return "contains a backslash"
    if path.startswith("/"):
        return "is absolute"
    if re.match(r"[A-Za-z]:", path):
        return "starts with a drive letter"
    parts = path.split("/")
    if any(p == "" for p in parts):
        return "has an empty component"
    if any(p in (".", "..") for p in parts):
        return "has a . or .. component"
    return None


# --------------------------------------------------------------------------- staging


def object_path(staging: Path, sha256: str) -> Path:
    """Where the payload with this sha256 lives in a staging directory."""
    return staging / "objects" / sha256[:2] / sha256


def pending(staging: Path, environment: str) -> list[Path]:
    """The trigger files waiting in staging for environment, by file name."""
    folder = staging / "triggers" / environment
    if not ENV_PATTERN.fullmatch(environment) or not folder.is_dir():
        return []
    return sorted(
        p for p in folder.iterdir()
        if p.suffix == ".json" and not p.name.startswith(".") and p.is_file()
    )


def trigger_path(staging: Path, environment: str, tid: str) -> Path:
    """Where the trigger id for environment lives in a staging directory."""
    return staging / "triggers" / environment / f"{tid}.json"
