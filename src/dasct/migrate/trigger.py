"""Trigger files: the self-contained, checksummed instruction to migrate one enhancement.

A staging directory holds `triggers/<environment>/<id>.json` and the content-addressed
payloads `objects/<aa>/<sha256>` they name (file contents and SQL scripts), so the target
needs no git access. The format is documented, versioned, in docs/triggers.md. Everything
read from disk is hostile until verified: every problem is a one-line TriggerError.

This module is the format and its reading side: the records, the canonical JSON, digest
and signature, reading and verifying, payloads, the check against a target, where a
trigger lives. Writing one (the document, payloads, retarget for promotion) is
trigger_write.py; building one from a git range is create.py's job.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import stat
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from dasct.errors import DasctError

FORMAT = "dasct-trigger"
FORMAT_VERSION = 1
MAX_TRIGGER_BYTES = 16 << 20  # a trigger is a manifest; anything this big is not one

FileOp = Literal["add", "modify", "delete", "rename"]
CommandKind = Literal["restart", "health"]
FILE_OPS: tuple[FileOp, ...] = ("add", "modify", "delete", "rename")
COMMAND_KINDS: tuple[CommandKind, ...] = ("restart", "health")
MODES = {"644": 0o644, "755": 0o755}

_SHA = re.compile(r"[0-9a-f]{64}")
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
NAME_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@+-]{0,127}")
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
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
    """A command run after the files: restart the system, or check its health."""

    name: str
    argv: tuple[str, ...]
    kind: CommandKind
    timeout: float  # seconds


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


# --------------------------------------------------------------------------- reading


def _join(key: str, sub: str) -> str:
    return f"{key}.{sub}" if key else sub


class _Reader:
    """Typed access to an untrusted JSON document; every mistake is a TriggerError."""

    def __init__(self, where: Path) -> None:
        self.where = where

    def fail(self, what: str) -> TriggerError:
        return TriggerError(f"{self.where}: {what}")

    def obj(self, value: object, key: str, allowed: Collection[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(f"`{key}` must be an object, not {type(value).__name__}")
        unknown = sorted(set(value) - set(allowed))
        if unknown:
            raise self.fail(f"unknown key `{_join(key, clip(unknown[0])[1:-1])}`")
        missing = sorted(set(allowed) - set(value))
        if missing:
            raise self.fail(f"missing key `{_join(key, missing[0])}`")
        return value

    def str_(self, value: object, key: str, pattern: re.Pattern[str] | None = None) -> str:
        if not isinstance(value, str):
            raise self.fail(f"`{key}` must be a string, not {type(value).__name__}")
        if pattern is not None and not pattern.fullmatch(value):
            raise self.fail(f"`{key}` is not valid: {clip(value)}")
        return value

    def opt_str(self, value: object, key: str, pattern: re.Pattern[str]) -> str | None:
        return None if value is None else self.str_(value, key, pattern)

    def list_(self, value: object, key: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(f"`{key}` must be a list, not {type(value).__name__}")
        return value

    def strs(self, value: object, key: str, pattern: re.Pattern[str]) -> tuple[str, ...]:
        items = self.list_(value, key)
        out = tuple(self.str_(v, f"{key}[{i}]", pattern) for i, v in enumerate(items))
        if len(set(out)) != len(out):
            raise self.fail(f"`{key}` has a duplicate entry")
        return out

    def time(self, value: object, key: str) -> datetime:
        text = self.str_(value, key)
        if not _TIME.fullmatch(text):
            raise self.fail(f"`{key}` must be a UTC time like 2026-01-31T23:00:00Z: {clip(text)}")
        try:
            return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
        except ValueError:
            raise self.fail(f"`{key}` is not a valid time: {clip(text)}") from None

    def path(self, value: object, key: str) -> str:
        text = self.str_(value, key)
        problem = path_problem(text)
        if problem:
            raise self.fail(f"path `{key}` {problem}: {clip(text)}")
        return text


_TOP = (
    "format", "version", "id", "system", "environment", "not_before", "expires", "defects",
    "commits", "steps", "depends_on", "conflicts_with", "digest", "signature",
)
_STEPS = ("sql", "files", "commands")
_SQL = ("name", "deploy", "revert", "verify")
_FILE = ("op", "path", "old_path", "pre_sha256", "post_sha256", "mode")
_COMMAND = ("name", "argv", "kind", "timeout")
_COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_DEFECT = re.compile(r"[^\x00-\x1f\x7f]{1,200}")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def read_document(path: Path) -> dict[str, Any]:
    """The JSON object in a trigger file, unverified; TriggerError if it is not one."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_TRIGGER_BYTES + 1)
    except OSError as exc:
        raise TriggerError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_TRIGGER_BYTES:
        raise TriggerError(f"{path}: larger than {MAX_TRIGGER_BYTES} bytes, not a trigger")
    try:
        doc = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise TriggerError(f"{path}: not UTF-8") from None
    except (ValueError, RecursionError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise TriggerError(f"{path}: not valid JSON: {first}") from None
    if not isinstance(doc, dict):
        raise TriggerError(f"{path}: not a trigger (the top level must be an object)")
    return doc


def _parse_sql(r: _Reader, value: object, key: str) -> SqlChange:
    d = r.obj(value, key, _SQL)
    return SqlChange(
        name=r.str_(d["name"], f"{key}.name", NAME_PATTERN),
        deploy=r.str_(d["deploy"], f"{key}.deploy", _SHA),
        revert=r.str_(d["revert"], f"{key}.revert", _SHA),
        verify=r.opt_str(d["verify"], f"{key}.verify", _SHA),
    )


def _parse_file(r: _Reader, value: object, key: str) -> FileChange:
    d = r.obj(value, key, _FILE)
    op = r.str_(d["op"], f"{key}.op")
    if op not in FILE_OPS:
        raise r.fail(f"`{key}.op` must be one of {', '.join(FILE_OPS)}: {clip(op)}")
    mode = r.str_(d["mode"], f"{key}.mode")
    if mode not in MODES:
        raise r.fail(f"`{key}.mode` must be \"644\" or \"755\": {clip(mode)}")
    change = FileChange(
        op=op,
        path=r.path(d["path"], f"{key}.path"),
        old_path=None if d["old_path"] is None else r.path(d["old_path"], f"{key}.old_path"),
        pre_sha256=r.opt_str(d["pre_sha256"], f"{key}.pre_sha256", _SHA),
        post_sha256=r.opt_str(d["post_sha256"], f"{key}.post_sha256", _SHA),
        mode=MODES[mode],
    )
    shape = {
        "add": (False, False, True),
        "modify": (False, True, True),
        "delete": (False, True, False),
        "rename": (True, True, True),
    }[change.op]
    have = (change.old_path is not None, change.pre_sha256 is not None,
            change.post_sha256 is not None)
    if have != shape:
        names = ("old_path", "pre_sha256", "post_sha256")
        wrong, had = next((n, h) for n, h, s in zip(names, have, shape, strict=True) if h != s)
        need = "must not have" if had else "needs"
        raise r.fail(f"`{key}`: a {change.op} {need} `{wrong}`")
    return change


def _parse_command(r: _Reader, value: object, key: str) -> StepCommand:
    d = r.obj(value, key, _COMMAND)
    argv = r.list_(d["argv"], f"{key}.argv")
    if not argv:
        raise r.fail(f"`{key}.argv` is empty")
    args = tuple(r.str_(a, f"{key}.argv[{i}]") for i, a in enumerate(argv))
    if any("\x00" in a for a in args):
        raise r.fail(f"`{key}.argv` contains NUL")
    kind = r.str_(d["kind"], f"{key}.kind")
    if kind not in COMMAND_KINDS:
        raise r.fail(f"`{key}.kind` must be restart or health: {clip(kind)}")
    timeout = d["timeout"]
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise r.fail(f"`{key}.timeout` must be a number, not {type(timeout).__name__}")
    if not 0 < timeout <= 86400:
        raise r.fail(f"`{key}.timeout` must be between 0 and 86400 seconds: {clip(timeout)}")
    return StepCommand(
        name=r.str_(d["name"], f"{key}.name", NAME_PATTERN), argv=args,
        kind=kind, timeout=float(timeout),
    )


def _check_unique_paths(r: _Reader, files: Iterable[FileChange]) -> None:
    # One path per trigger: two operations on the same path would depend on their order.
    seen: set[str] = set()
    for change in files:
        for p in (change.path, change.old_path):
            if p is None:
                continue
            if p in seen:
                raise r.fail(f"path {clip(p)} appears in more than one file change")
            seen.add(p)


def parse(
    doc: object,
    path: Path,
    *,
    environments: Collection[str],
    key: bytes | None,
    require_signature: bool,
    previous_keys: Sequence[bytes] = (),
) -> Trigger:
    """Verify an already-decoded trigger document (see load)."""
    r = _Reader(path)
    d = r.obj(doc, "", _TOP)
    if d["format"] != FORMAT:
        raise r.fail(f"not a trigger: `format` is {clip(d['format'])}, not {FORMAT!r}")
    version = d["version"]
    if isinstance(version, bool) or not isinstance(version, int):
        raise r.fail(f"`version` must be an integer, not {type(version).__name__}")
    if version != FORMAT_VERSION:
        raise r.fail(f"unknown trigger format version {clip(version)} "
                     f"(this dasct reads version {FORMAT_VERSION})")
    digest = r.str_(d["digest"], "digest", _SHA)
    try:
        actual = compute_digest(d)
    except (RecursionError, ValueError):  # nesting json.loads just accepted, or a huge int
        raise r.fail("cannot compute the digest (nested too deeply)") from None
    if not hmac.compare_digest(actual, digest):
        raise r.fail("digest mismatch: the trigger was changed after it was written")
    signature = r.opt_str(d["signature"], "signature", _SHA)
    signed_by = _check_signature(r, digest, signature, (key, *previous_keys),
                                 require_signature)
    environment = r.str_(d["environment"], "environment", ENV_PATTERN)
    if environment not in environments:
        allowed = ", ".join(sorted(environments)) or "none"
        raise r.fail(f"environment {clip(environment)} is not one of: {allowed}")
    tid = r.str_(d["id"], "id", ID_PATTERN)
    steps = r.obj(d["steps"], "steps", _STEPS)
    files = tuple(
        _parse_file(r, v, f"steps.files[{i}]")
        for i, v in enumerate(r.list_(steps["files"], "steps.files"))
    )
    _check_unique_paths(r, files)
    sql = tuple(
        _parse_sql(r, v, f"steps.sql[{i}]")
        for i, v in enumerate(r.list_(steps["sql"], "steps.sql"))
    )
    if len({c.name for c in sql}) != len(sql):
        raise r.fail("a SQL change appears twice")
    trigger = Trigger(
        version=version,
        id=tid,
        system=r.str_(d["system"], "system", NAME_PATTERN),
        environment=environment,
        not_before=r.time(d["not_before"], "not_before"),
        expires=r.time(d["expires"], "expires"),
        defects=r.strs(d["defects"], "defects", _DEFECT),
        commits=r.strs(d["commits"], "commits", _COMMIT),
        sql=sql,
        files=files,
        commands=tuple(
            _parse_command(r, v, f"steps.commands[{i}]")
            for i, v in enumerate(r.list_(steps["commands"], "steps.commands"))
        ),
        depends_on=r.strs(d["depends_on"], "depends_on", ID_PATTERN),
        conflicts_with=r.strs(d["conflicts_with"], "conflicts_with", ID_PATTERN),
        digest=digest,
        signature=signature,
        path=path,
        signed_by=signed_by,
    )
    if trigger.expires <= trigger.not_before:
        raise r.fail("`expires` is not after `not_before`")
    if tid in trigger.depends_on or tid in trigger.conflicts_with:
        raise r.fail("the trigger depends on or conflicts with itself")
    # In a staging area the file's place must agree with its content, so that a model
    # trigger copied into triggers/production/ is refused rather than run there.
    if path.parent.parent.name == "triggers":
        if path.parent.name != environment:
            raise r.fail(f"lies under triggers/{path.parent.name}/ but is for {environment!r}")
        if path.name != f"{tid}.json":
            raise r.fail(f"file name does not match its id {tid!r}")
    return trigger


def _check_signature(r: _Reader, digest: str, signature: str | None,
                     keys: Sequence[bytes | None], require: bool) -> int | None:
    """The index in keys of the key that made signature; None when it was not checked."""
    if signature is None:
        if require:
            raise r.fail("unsigned, and signatures are required")
        return None
    tried = False
    for i, key in enumerate(keys):
        if key is None:
            continue
        tried = True
        if hmac.compare_digest(sign(digest, key), signature):
            return i
    if tried:
        raise r.fail("bad signature (no verification key matches: wrong key, or the trigger "
                     "was forged)")
    if require:
        raise r.fail("signed, but no signing key is available to verify it")
    return None


def load(
    path: Path,
    *,
    environments: Collection[str],
    key: bytes | None,
    require_signature: bool,
    previous_keys: Sequence[bytes] = (),
) -> Trigger:
    """Read and verify a trigger file: format, version, digest, signature, environment, paths.

    Pass the environment you are about to migrate as `environments`. The signature is
    checked with key (the current one) or any of previous_keys (a rotation); the Trigger's
    `signed_by` says which. Payloads and the target are checked separately (read_payload,
    check_target).
    """
    return parse(
        read_document(path), path, environments=environments, key=key,
        require_signature=require_signature, previous_keys=previous_keys,
    )


def object_path(staging: Path, sha256: str) -> Path:
    """Where the payload with this sha256 lives in a staging directory."""
    return staging / "objects" / sha256[:2] / sha256


def read_payload(staging: Path, sha256: str) -> bytes:
    """The payload named sha256, verified; TriggerError when missing or corrupt."""
    if not _SHA.fullmatch(sha256):
        raise TriggerError(f"{staging}: not a payload name: {clip(sha256)}")
    where = object_path(staging, sha256)
    try:
        data = where.read_bytes()
    except FileNotFoundError:
        raise TriggerError(f"{where}: payload missing") from None
    except OSError as exc:
        raise TriggerError(f"{where}: cannot read payload: {exc.strerror or exc}") from None
    if sha256_hex(data) != sha256:
        raise TriggerError(f"{where}: payload corrupt (its sha256 does not match its name)")
    return data


def check_payloads(trigger: Trigger, staging: Path | None = None) -> None:
    """Every payload the trigger names is present and intact."""
    for name in trigger.payloads():
        try:
            read_payload(staging or trigger.staging, name)
        except TriggerError as exc:
            raise TriggerError(f"{trigger.path}: {exc}") from None


def file_sha256(path: Path) -> str:
    """The sha256 of a file's content, read in chunks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _walk(root: Path, rel: str, where: Path) -> os.stat_result | None:
    """lstat of root/rel after checking no component on the way is a symlink or file."""
    parts = rel.split("/")
    current = root
    for i, part in enumerate(parts):
        current = current / part
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise TriggerError(f"{where}: cannot inspect {rel!r}: {exc.strerror}") from None
        if stat.S_ISLNK(st.st_mode):
            shown = "/".join(parts[: i + 1])
            raise TriggerError(f"{where}: {rel!r} goes through the symlink {shown!r} on the target")
        if i < len(parts) - 1 and not stat.S_ISDIR(st.st_mode):
            shown = "/".join(parts[: i + 1])
            raise TriggerError(f"{where}: {rel!r} goes through {shown!r}, not a directory")
        if i == len(parts) - 1:
            return st
    return None  # pragma: no cover - parts is never empty


def check_target(trigger: Trigger, root: Path) -> None:
    """Refuse, before touching anything, a target the trigger cannot safely apply to.

    No path escapes root; every pre-image matches (nobody changed it by hand); add and
    rename targets are absent (so a baseline, all adds, needs a target without its files).
    """
    where = trigger.path
    try:
        base = root.resolve(strict=True)
    except (OSError, RuntimeError):
        raise TriggerError(f"{where}: target root {str(root)!r} does not exist") from None
    if not base.is_dir():
        raise TriggerError(f"{where}: target root {str(root)!r} is not a directory")
    present: list[str] = []  # add and rename targets that already exist
    for change in trigger.files:
        for rel in (change.path, change.old_path):
            if rel is not None and (problem := path_problem(rel)):
                raise TriggerError(f"{where}: path {clip(rel)} {problem}")
        if change.op in ("modify", "delete", "rename"):
            source = change.old_path if change.op == "rename" else change.path
            assert source is not None and change.pre_sha256 is not None
            st = _walk(base, source, where)
            if st is None:
                raise TriggerError(f"{where}: {source!r} is missing on the target; a first "
                                   "deployment needs `dasct trigger create --baseline REV`")
            if not stat.S_ISREG(st.st_mode):
                raise TriggerError(f"{where}: {source!r} on the target is not a regular file")
            try:
                actual = file_sha256(base / source)
            except OSError as exc:
                raise TriggerError(f"{where}: cannot read {source!r}: {exc.strerror}") from None
            if actual != change.pre_sha256:
                raise TriggerError(
                    f"{where}: {source!r} was changed on the target by hand "
                    f"(sha256 {actual[:12]}, expected {change.pre_sha256[:12]})"
                )
        if change.op in ("add", "rename") and _walk(base, change.path, where) is not None:
            present.append(change.path)
    if present and all(c.op == "add" for c in trigger.files):
        # A trigger made only of adds is a baseline (or starts a new area): name them all,
        # since the usual cause is a target that is not empty, not one stray file.
        shown = ", ".join(repr(p) for p in present[:5]) + (", ..." if len(present) > 5 else "")
        raise TriggerError(
            f"{where}: {len(present)} of its {len(trigger.files)} new file(s) already exist "
            f"on the target ({shown}); a trigger that only adds files, like a baseline, "
            "applies only to a target that has none of them"
        )
    if present:
        raise TriggerError(f"{where}: {present[0]!r} already exists on the target")


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
