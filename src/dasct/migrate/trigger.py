"""Trigger files: the self-contained, checksummed instruction to migrate one enhancement.

A staging directory holds `triggers/<environment>/<id>.json` and the content-addressed
payloads `objects/<aa>/<sha256>` they name (file contents and SQL scripts), so the target
needs no git access. The format is documented, versioned, in docs/triggers.md. Everything
read from disk is hostile until verified: every problem is a one-line TriggerError.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import stat
import sys
import tempfile
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

from dasct import diff, git, refs
from dasct.errors import DasctError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

FORMAT = "dasct-trigger"
FORMAT_VERSION = 1
MAX_TRIGGER_BYTES = 16 << 20  # a trigger is a manifest; anything this big is not one

FileOp = Literal["add", "modify", "delete", "rename"]
CommandKind = Literal["restart", "health"]
FILE_OPS: tuple[FileOp, ...] = ("add", "modify", "delete", "rename")
COMMAND_KINDS: tuple[CommandKind, ...] = ("restart", "health")
MODES = {"644": 0o644, "755": 0o755}

_SHA = re.compile(r"[0-9a-f]{64}")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@+-]{0,127}")
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
_ENV = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


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


def _show(value: object, limit: int = 60) -> str:
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


def atomic_write(path: Path, data: bytes) -> None:
    """Write data to path so that readers see the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    # The rename is durable only once the directory entry is.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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
            raise self.fail(f"unknown key `{_join(key, _show(unknown[0])[1:-1])}`")
        missing = sorted(set(allowed) - set(value))
        if missing:
            raise self.fail(f"missing key `{_join(key, missing[0])}`")
        return value

    def str_(self, value: object, key: str, pattern: re.Pattern[str] | None = None) -> str:
        if not isinstance(value, str):
            raise self.fail(f"`{key}` must be a string, not {type(value).__name__}")
        if pattern is not None and not pattern.fullmatch(value):
            raise self.fail(f"`{key}` is not valid: {_show(value)}")
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
            raise self.fail(f"`{key}` must be a UTC time like 2026-01-31T23:00:00Z: {_show(text)}")
        try:
            return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
        except ValueError:
            raise self.fail(f"`{key}` is not a valid time: {_show(text)}") from None

    def path(self, value: object, key: str) -> str:
        text = self.str_(value, key)
        problem = path_problem(text)
        if problem:
            raise self.fail(f"path `{key}` {problem}: {_show(text)}")
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
        name=r.str_(d["name"], f"{key}.name", _NAME),
        deploy=r.str_(d["deploy"], f"{key}.deploy", _SHA),
        revert=r.str_(d["revert"], f"{key}.revert", _SHA),
        verify=r.opt_str(d["verify"], f"{key}.verify", _SHA),
    )


def _parse_file(r: _Reader, value: object, key: str) -> FileChange:
    d = r.obj(value, key, _FILE)
    op = r.str_(d["op"], f"{key}.op")
    if op not in FILE_OPS:
        raise r.fail(f"`{key}.op` must be one of {', '.join(FILE_OPS)}: {_show(op)}")
    mode = r.str_(d["mode"], f"{key}.mode")
    if mode not in MODES:
        raise r.fail(f"`{key}.mode` must be \"644\" or \"755\": {_show(mode)}")
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
        raise r.fail(f"`{key}.kind` must be restart or health: {_show(kind)}")
    timeout = d["timeout"]
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise r.fail(f"`{key}.timeout` must be a number, not {type(timeout).__name__}")
    if not 0 < timeout <= 86400:
        raise r.fail(f"`{key}.timeout` must be between 0 and 86400 seconds: {_show(timeout)}")
    return StepCommand(
        name=r.str_(d["name"], f"{key}.name", _NAME), argv=args,
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
                raise r.fail(f"path {_show(p)} appears in more than one file change")
            seen.add(p)


def parse(
    doc: object,
    path: Path,
    *,
    environments: Collection[str],
    key: bytes | None,
    require_signature: bool,
) -> Trigger:
    """Verify an already-decoded trigger document (see load)."""
    r = _Reader(path)
    d = r.obj(doc, "", _TOP)
    if d["format"] != FORMAT:
        raise r.fail(f"not a trigger: `format` is {_show(d['format'])}, not {FORMAT!r}")
    version = d["version"]
    if isinstance(version, bool) or not isinstance(version, int):
        raise r.fail(f"`version` must be an integer, not {type(version).__name__}")
    if version != FORMAT_VERSION:
        raise r.fail(f"unknown trigger format version {_show(version)} "
                     f"(this dasct reads version {FORMAT_VERSION})")
    digest = r.str_(d["digest"], "digest", _SHA)
    try:
        actual = compute_digest(d)
    except (RecursionError, ValueError):  # nesting json.loads just accepted, or a huge int
        raise r.fail("cannot compute the digest (nested too deeply)") from None
    if not hmac.compare_digest(actual, digest):
        raise r.fail("digest mismatch: the trigger was changed after it was written")
    signature = r.opt_str(d["signature"], "signature", _SHA)
    if signature is None:
        if require_signature:
            raise r.fail("unsigned, and signatures are required")
    elif key is not None:
        if not hmac.compare_digest(sign(digest, key), signature):
            raise r.fail("bad signature (wrong key, or the trigger was forged)")
    elif require_signature:
        raise r.fail("signed, but no signing key is available to verify it")
    environment = r.str_(d["environment"], "environment", _ENV)
    if environment not in environments:
        allowed = ", ".join(sorted(environments)) or "none"
        raise r.fail(f"environment {_show(environment)} is not one of: {allowed}")
    tid = r.str_(d["id"], "id", _ID)
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
        system=r.str_(d["system"], "system", _NAME),
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
        depends_on=r.strs(d["depends_on"], "depends_on", _ID),
        conflicts_with=r.strs(d["conflicts_with"], "conflicts_with", _ID),
        digest=digest,
        signature=signature,
        path=path,
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


def load(
    path: Path,
    *,
    environments: Collection[str],
    key: bytes | None,
    require_signature: bool,
) -> Trigger:
    """Read and verify a trigger file: format, version, digest, signature, environment, paths.

    Pass the environment you are about to migrate as `environments`. Payloads and the
    target are checked separately (read_payload, check_target).
    """
    return parse(
        read_document(path), path, environments=environments, key=key,
        require_signature=require_signature,
    )


def object_path(staging: Path, sha256: str) -> Path:
    """Where the payload with this sha256 lives in a staging directory."""
    return staging / "objects" / sha256[:2] / sha256


def read_payload(staging: Path, sha256: str) -> bytes:
    """The payload named sha256, verified; TriggerError when missing or corrupt."""
    if not _SHA.fullmatch(sha256):
        raise TriggerError(f"{staging}: not a payload name: {_show(sha256)}")
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
    rename targets are absent.
    """
    where = trigger.path
    try:
        base = root.resolve(strict=True)
    except (OSError, RuntimeError):
        raise TriggerError(f"{where}: target root {str(root)!r} does not exist") from None
    if not base.is_dir():
        raise TriggerError(f"{where}: target root {str(root)!r} is not a directory")
    for change in trigger.files:
        for rel in (change.path, change.old_path):
            if rel is not None and (problem := path_problem(rel)):
                raise TriggerError(f"{where}: path {_show(rel)} {problem}")
        if change.op in ("modify", "delete", "rename"):
            source = change.old_path if change.op == "rename" else change.path
            assert source is not None and change.pre_sha256 is not None
            st = _walk(base, source, where)
            if st is None:
                raise TriggerError(f"{where}: {source!r} is missing on the target")
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
            raise TriggerError(f"{where}: {change.path!r} already exists on the target")


def pending(staging: Path, environment: str) -> list[Path]:
    """The trigger files waiting in staging for environment, by file name."""
    folder = staging / "triggers" / environment
    if not _ENV.fullmatch(environment) or not folder.is_dir():
        return []
    return sorted(
        p for p in folder.iterdir()
        if p.suffix == ".json" and not p.name.startswith(".") and p.is_file()
    )


# --------------------------------------------------------------------------- writing


def document(
    *,
    id: str,
    system: str,
    environment: str,
    not_before: datetime,
    expires: datetime,
    defects: Iterable[str],
    commits: Iterable[str],
    sql: Iterable[SqlChange],
    files: Iterable[FileChange],
    commands: Iterable[StepCommand],
    depends_on: Iterable[str] = (),
    conflicts_with: Iterable[str] = (),
    key: bytes | None = None,
) -> dict[str, Any]:
    """The JSON document of a trigger, with its digest and (with key) signature."""
    mode_names = {v: k for k, v in MODES.items()}
    doc: dict[str, Any] = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "id": id,
        "system": system,
        "environment": environment,
        "not_before": format_time(not_before),
        "expires": format_time(expires),
        "defects": list(defects),
        "commits": list(commits),
        "steps": {
            "sql": [
                {"name": c.name, "deploy": c.deploy, "revert": c.revert, "verify": c.verify}
                for c in sql
            ],
            "files": [
                {
                    "op": f.op, "path": f.path, "old_path": f.old_path,
                    "pre_sha256": f.pre_sha256, "post_sha256": f.post_sha256,
                    "mode": mode_names[f.mode],
                }
                for f in files
            ],
            "commands": [
                {"name": c.name, "argv": list(c.argv), "kind": c.kind, "timeout": c.timeout}
                for c in commands
            ],
        },
        "depends_on": list(depends_on),
        "conflicts_with": list(conflicts_with),
    }
    doc["digest"] = compute_digest(doc)
    doc["signature"] = sign(doc["digest"], key) if key is not None else None
    return doc


def render(doc: Mapping[str, Any]) -> bytes:
    """The bytes of a trigger file: sorted keys, indented for people, UTF-8."""
    return (json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()


def write_payload(staging: Path, data: bytes) -> str:
    """Store data as a content-addressed payload (once); return its sha256."""
    name = sha256_hex(data)
    where = object_path(staging, name)
    if not (where.is_file() and file_sha256(where) == name):
        atomic_write(where, data)
    return name


def trigger_path(staging: Path, environment: str, tid: str) -> Path:
    """Where the trigger id for environment lives in a staging directory."""
    return staging / "triggers" / environment / f"{tid}.json"


def write(staging: Path, doc: Mapping[str, Any], *, key: bytes | None) -> Trigger:
    """Verify a trigger document and its payloads, then write it atomically.

    Nothing invalid is ever written. An identical existing file is fine (re-running CI);
    a different one under the same id is an error.
    """
    env, tid = doc.get("environment"), doc.get("id")
    if not (isinstance(env, str) and _ENV.fullmatch(env)):
        raise TriggerError(f"{staging}: not an environment name: {_show(env)}")
    if not (isinstance(tid, str) and _ID.fullmatch(tid)):
        raise TriggerError(f"{staging}: not a trigger id: {_show(tid)}")
    path = trigger_path(staging, env, tid)
    data = render(doc)
    trigger = parse(json.loads(data), path, environments=[env], key=key, require_signature=False)
    check_payloads(trigger)
    if path.exists():
        try:
            same = path.read_bytes() == data
        except OSError:
            same = False
        if not same:
            raise TriggerError(f"{path}: a different trigger with this id already exists")
    else:
        atomic_write(path, data)
    return trigger


def as_document(trigger: Trigger) -> dict[str, Any]:
    """The JSON document of a loaded trigger (as written, digest and signature included)."""
    doc = document(
        id=trigger.id, system=trigger.system, environment=trigger.environment,
        not_before=trigger.not_before, expires=trigger.expires, defects=trigger.defects,
        commits=trigger.commits, sql=trigger.sql, files=trigger.files,
        commands=trigger.commands, depends_on=trigger.depends_on,
        conflicts_with=trigger.conflicts_with,
    )
    doc["signature"] = trigger.signature
    return doc


def retarget(
    trigger: Trigger,
    environment: str,
    *,
    staging: Path | None = None,
    not_before: datetime | None = None,
    expiry: timedelta | None = None,
    key: bytes | None = None,
) -> Trigger:
    """Write the same enhancement (same id and steps) as a trigger for another environment.

    Payloads are copied when the target staging differs; the schedule keeps its length
    unless given. This is what promotion to production uses.
    """
    if not _ENV.fullmatch(environment):
        raise TriggerError(f"{trigger.path}: not an environment name: {_show(environment)}")
    target = staging or trigger.staging
    start = not_before or trigger.not_before
    length = expiry if expiry is not None else trigger.expires - trigger.not_before
    for name in trigger.payloads():
        data = read_payload(trigger.staging, name)
        if target != trigger.staging:
            write_payload(target, data)
    promoted = replace(trigger, environment=environment, not_before=start, expires=start + length)
    doc = document(
        id=promoted.id, system=promoted.system, environment=environment,
        not_before=promoted.not_before, expires=promoted.expires, defects=promoted.defects,
        commits=promoted.commits, sql=promoted.sql, files=promoted.files,
        commands=promoted.commands, depends_on=promoted.depends_on,
        conflicts_with=promoted.conflicts_with, key=key,
    )
    return write(target, doc, key=key)


# --------------------------------------------------------------------------- creating

COMMANDS_FILE = "deploy/commands.toml"  # restart and health commands of the enhancement
PLAN_FILE = "sqitch.plan"  # inside the SQL directory: the order of the changes
DEFAULT_TIMEOUT = 60.0
_SQL_SCRIPT = re.compile(r"(deploy|revert|verify)/([^/]+)\.sql")
_GIT_MODES = {"100644": 0o644, "100755": 0o755}
_OPS: dict[str, FileOp] = {"A": "add", "M": "modify", "D": "delete", "R": "rename"}


@dataclass(frozen=True)
class _RawChange:
    status: str  # git's status letter: A, M, D, R, T, ...
    old_mode: str
    new_mode: str
    old_blob: str
    new_blob: str
    path: str
    old_path: str | None


def _decode_path(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise TriggerError(f"{where}: path {raw!r} is not UTF-8") from None


def _raw_diff(root: Path, base: str, head: str, *, renames: bool, where: str) -> list[_RawChange]:
    """The raw records of `git diff A B`, read by the one diff parser (dasct.diff)."""
    out = git.run(
        "diff", "--raw", "--no-abbrev", "--no-ext-diff", "--no-relative",
        "-M" if renames else "--no-renames", base, head, "--", cwd=root,
    )
    changes: list[_RawChange] = []
    for section in diff.parse(out.splitlines(keepends=True), commits=False):
        for record in section.files:
            path = record.new_path if record.new_path is not None else record.old_path
            assert path is not None
            old_path = record.old_path if record.status in "RC" else None
            for rel in (path, old_path):
                # The parser keeps undecodable bytes as surrogates; a trigger is UTF-8.
                if rel is not None and not _is_utf8(rel):
                    raise TriggerError(f"{where}: path {rel!r} is not UTF-8")
            changes.append(_RawChange(
                status=record.status, old_mode=record.old_mode, new_mode=record.new_mode,
                old_blob=record.old_blob, new_blob=record.new_blob, path=path,
                old_path=old_path,
            ))
    return changes


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _cat_blobs(root: Path, blobs: Iterable[str]) -> dict[str, bytes]:
    """The content of each git blob, in one `git cat-file --batch` call."""
    wanted = list(dict.fromkeys(blobs))
    if not wanted:
        return {}
    out = git.run("cat-file", "--batch", cwd=root, input="".join(f"{b}\n" for b in wanted).encode())
    contents: dict[str, bytes] = {}
    pos = 0
    for blob in wanted:
        end = out.index(b"\n", pos)
        header = out[pos:end].decode("ascii").split(" ")
        if len(header) != 3 or header[1] != "blob":
            raise TriggerError(f"git object {blob} is not a blob: {' '.join(header)}")
        size = int(header[2])
        contents[blob] = out[end + 1 : end + 1 + size]
        pos = end + 1 + size + 1
    return contents


def _tree(root: Path, rev: str, *paths: str) -> dict[str, str]:
    """path -> blob of the files at rev under the given paths."""
    out = git.run("ls-tree", "-r", "-z", "--full-tree", rev, "--", *paths, cwd=root)
    entries: dict[str, str] = {}
    for record in out.split(b"\0"):
        if record:
            info, _, name = record.partition(b"\t")
            _mode, kind, blob = info.decode("ascii").split(" ")
            if kind == "blob":
                entries[_decode_path(name, rev)] = blob
    return entries


def _plan_order(plan: bytes | None) -> list[str]:
    """Change names in the order a sqitch.plan lists them (first mention wins)."""
    if plan is None:
        return []
    names: list[str] = []
    for line in plan.decode("utf-8", "replace").splitlines():
        line = line.strip()
        if not line or line[0] in "%#@":
            continue
        names.append(line.split()[0])
    return list(dict.fromkeys(names))


def _file_mode(git_mode: str, path: str, where: str) -> int:
    mode = _GIT_MODES.get(git_mode)
    if mode is None:
        kind = {"120000": "a symlink", "160000": "a submodule"}.get(git_mode, f"mode {git_mode}")
        raise TriggerError(f"{where}: {path!r} is {kind}; only regular files can be migrated")
    return mode


def _parse_commands(data: bytes, where: str) -> list[StepCommand]:
    try:
        table = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise TriggerError(f"{where}: invalid TOML: {exc}") from None
    unknown = sorted(set(table) - set(COMMAND_KINDS))
    if unknown:
        raise TriggerError(
            f"{where}: unknown key `{unknown[0]}` (expected [[restart]] and [[health]])"
        )
    commands: list[StepCommand] = []
    for kind in COMMAND_KINDS:
        entries = table.get(kind, [])
        if not isinstance(entries, list):
            raise TriggerError(f"{where}: `{kind}` must be an array of tables ([[{kind}]])")
        for i, entry in enumerate(entries):
            key = f"{kind}[{i}]"
            if not isinstance(entry, dict):
                raise TriggerError(f"{where}: `{key}` must be a table")
            extra = sorted(set(entry) - {"name", "argv", "timeout"})
            if extra:
                raise TriggerError(f"{where}: unknown key `{key}.{extra[0]}`")
            name, argv = entry.get("name"), entry.get("argv")
            timeout = entry.get("timeout", DEFAULT_TIMEOUT)
            if not isinstance(name, str) or not _NAME.fullmatch(name):
                raise TriggerError(f"{where}: `{key}.name` must be a simple name")
            if not (isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv)):
                raise TriggerError(f"{where}: `{key}.argv` must be a non-empty list of strings")
            if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not (
                0 < timeout <= 86400
            ):
                raise TriggerError(f"{where}: `{key}.timeout` must be 0 < seconds <= 86400")
            commands.append(StepCommand(name, tuple(argv), kind, float(timeout)))
    return commands


def find_defects(messages: Iterable[str], patterns: Iterable[re.Pattern[str]]) -> list[str]:
    """Defect keys named in commit messages, first seen first (the rule of dasct.refs)."""
    compiled = list(patterns)
    found = [key for message in messages for key in refs.defect_keys(message, compiled)]
    return list(dict.fromkeys(found))


def parse_time(text: str) -> datetime:
    """An ISO 8601 time for --at; a time without an offset is UTC."""
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise TriggerError(f"not a time: {text!r} (use e.g. 2026-11-23T23:00Z)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).replace(microsecond=0)


def create(
    *,
    repo_root: Path,
    rev_range: str,
    environment: str,
    staging: Path,
    system: str,
    sql_dir: str,
    expiry_hours: int,
    defect_patterns: Iterable[re.Pattern[str]],
    tid: str | None = None,
    at: datetime | None = None,
    depends_on: Iterable[str] = (),
    conflicts_with: Iterable[str] = (),
    key: bytes | None = None,
) -> Trigger:
    """Build the trigger of the enhancement rev_range (A..B) for environment, in staging.

    Steps: the SQL changes whose scripts the range touched, then the file changes of
    `git diff A B` outside the SQL directory, then the commands of deploy/commands.toml.
    """
    where = f"range {rev_range}"
    depends, conflicts = tuple(dict.fromkeys(depends_on)), tuple(dict.fromkeys(conflicts_with))
    if tid is not None and not _ID.fullmatch(tid):
        raise TriggerError(f"{where}: id {tid!r} must be letters, digits, '.', '_' or '-'")
    if not _ENV.fullmatch(environment):
        raise TriggerError(f"{where}: not an environment name: {environment!r}")
    for other in (*depends, *conflicts):
        if not _ID.fullmatch(other) or other == tid:
            raise TriggerError(f"{where}: {other!r} cannot be a dependency or conflict")
    base_rev, sep, head_rev = rev_range.partition("..")
    if not sep or not base_rev or not head_rev or head_rev.startswith("."):
        raise TriggerError(f"{where}: expected A..B")
    repo = git.discover(repo_root)
    base, head = git.rev_parse(repo, base_rev), git.rev_parse(repo, head_rev)
    root = repo.root
    log = git.run("log", "-z", "--reverse", "--topo-order", "--format=%H%n%B",
                  f"{base}..{head}", "--", cwd=root)
    records = [r.decode("utf-8", "replace") for r in log.split(b"\0") if r.strip()]
    commits = [r.split("\n", 1)[0] for r in records]
    if not commits:
        raise TriggerError(f"{where}: no commits in the range, nothing to migrate")
    defects = find_defects((r.partition("\n")[2] for r in records), defect_patterns)

    sql_prefix = sql_dir.strip("/") + "/" if sql_dir.strip("/. ") else None
    changes = _raw_diff(root, base, head, renames=True, where=where)
    named = [p for c in changes for p in (c.path, c.old_path) if p]
    if len(set(named)) != len(named):
        # A rename whose old name is reused (moved away, new file in its place) would put
        # one path in two operations; without rename detection each path appears once.
        changes = _raw_diff(root, base, head, renames=False, where=where)

    touched_sql: set[str] = set()
    file_changes: list[_RawChange] = []
    for change in changes:
        paths = [p for p in (change.old_path, change.path) if p]
        if sql_prefix and any(p.startswith(sql_prefix) for p in paths):
            for p in paths:
                m = _SQL_SCRIPT.fullmatch(p[len(sql_prefix):]) if p.startswith(sql_prefix) else None
                # NAME@TAG.sql is the copy `sqitch rework` keeps of an older version: the
                # change itself is NAME, reworked in place.
                if m:
                    touched_sql.add(m.group(2).split("@", 1)[0])
            continue
        if change.path == COMMANDS_FILE and change.old_path is None:
            continue
        file_changes.append(change)

    blobs = _cat_blobs(root, [
        b for c in file_changes for b in (c.old_blob, c.new_blob) if set(b) != {"0"}
    ])
    files: list[FileChange] = []
    for c in file_changes:
        if c.status not in "AMDR":
            raise TriggerError(f"{where}: {c.path!r} changed type (git status {c.status}); "
                               "only regular files can be migrated")
        for rel in (c.path, c.old_path):
            if rel is not None and (problem := path_problem(rel)):
                raise TriggerError(f"{where}: path {rel!r} {problem}")
        pre = sha256_hex(blobs[c.old_blob]) if c.status != "A" else None
        post = write_payload(staging, blobs[c.new_blob]) if c.status != "D" else None
        mode = _file_mode(c.old_mode if c.status == "D" else c.new_mode, c.path, where)
        if c.status != "A":
            _file_mode(c.old_mode, c.old_path or c.path, where)
        op = _OPS[c.status]
        files.append(FileChange(op, c.path, c.old_path, pre, post, mode))

    sql: list[SqlChange] = []
    if touched_sql and sql_prefix:
        tree = _tree(root, head, sql_prefix)
        plan_blob = tree.get(sql_prefix + PLAN_FILE)
        scripts = _cat_blobs(root, [*tree.values()])
        plan = _plan_order(scripts[plan_blob] if plan_blob else None)
        rank = {name: i for i, name in enumerate(plan)}
        for name in sorted(touched_sql, key=lambda n: (rank.get(n, len(rank)), n)):
            if not _NAME.fullmatch(name):
                raise TriggerError(f"{where}: SQL change name {name!r} is not a simple name")
            found = {
                kind: tree.get(f"{sql_prefix}{kind}/{name}.sql")
                for kind in ("deploy", "revert", "verify")
            }
            for kind in ("deploy", "revert"):
                if found[kind] is None:
                    raise TriggerError(
                        f"{where}: SQL change {name!r} has no {sql_prefix}{kind}/{name}.sql at "
                        f"{head_rev} (a change needs deploy and revert scripts)"
                    )
            payload = {k: write_payload(staging, scripts[b]) for k, b in found.items() if b}
            sql.append(SqlChange(name, payload["deploy"], payload["revert"], payload.get("verify")))

    commands: list[StepCommand] = []
    command_blob = _tree(root, head, COMMANDS_FILE).get(COMMANDS_FILE)
    if command_blob:
        data = _cat_blobs(root, [command_blob])[command_blob]
        commands = _parse_commands(data, f"{COMMANDS_FILE} at {head_rev}")

    name = tid or f"{base[:10]}-{head[:10]}"
    if name in (*depends, *conflicts):
        raise TriggerError(f"{where}: {name!r} cannot depend on or conflict with itself")
    start = (at or datetime.now(timezone.utc)).astimezone(timezone.utc).replace(microsecond=0)
    doc = document(
        id=name, system=system, environment=environment, not_before=start,
        expires=start + timedelta(hours=expiry_hours), defects=defects, commits=commits,
        sql=sql, files=files, commands=commands, depends_on=depends,
        conflicts_with=conflicts, key=key,
    )
    return write(staging, doc, key=key)
