"""Reading a trigger file: decode, then verify everything before anything trusts it.

`load` reads a file and `parse` verifies a decoded document: format, version, digest,
signature (current or a previous key), environment, every field's type and shape, safe
paths, and that a staged file's place agrees with its content; each problem is one
TriggerError line naming the file and the key. It is separate from the format
(trigger.py) because it is the one place hostile JSON is handled, and from the payload and
target checks (trigger_check.py) because those read the staging area and the target.
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import re
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dasct.migrate.trigger import (
    COMMAND_KINDS,
    ENV_PATTERN,
    FILE_OPS,
    FORMAT,
    FORMAT_VERSION,
    ID_PATTERN,
    MAX_TRIGGER_BYTES,
    MODES,
    NAME_PATTERN,
    SHA_PATTERN,
    FileChange,
    SqlChange,
    StepCommand,
    Trigger,
    TriggerError,
    clip,
    compute_digest,
    path_problem,
    sign,
)

_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


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
_VERIFY = (*_COMMAND, "input", "expect_output", "expect_exit", "max_seconds")
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
        deploy=r.str_(d["deploy"], f"{key}.deploy", SHA_PATTERN),
        revert=r.str_(d["revert"], f"{key}.revert", SHA_PATTERN),
        verify=r.opt_str(d["verify"], f"{key}.verify", SHA_PATTERN),
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
        pre_sha256=r.opt_str(d["pre_sha256"], f"{key}.pre_sha256", SHA_PATTERN),
        post_sha256=r.opt_str(d["post_sha256"], f"{key}.post_sha256", SHA_PATTERN),
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
    is_verify = isinstance(value, dict) and value.get("kind") == "verify"
    d = r.obj(value, key, _VERIFY if is_verify else _COMMAND)
    argv = r.list_(d["argv"], f"{key}.argv")
    if not argv:
        raise r.fail(f"`{key}.argv` is empty")
    args = tuple(r.str_(a, f"{key}.argv[{i}]") for i, a in enumerate(argv))
    if any("\x00" in a for a in args):
        raise r.fail(f"`{key}.argv` contains NUL")
    kind = r.str_(d["kind"], f"{key}.kind")
    if kind not in COMMAND_KINDS:
        raise r.fail(f"`{key}.kind` must be restart, health or verify: {clip(kind)}")
    timeout = _seconds(r, d["timeout"], f"{key}.timeout")
    command = StepCommand(
        name=r.str_(d["name"], f"{key}.name", NAME_PATTERN), argv=args,
        kind=kind, timeout=timeout,
    )
    if not is_verify:
        return command
    expect_exit = d["expect_exit"]
    if isinstance(expect_exit, bool) or not isinstance(expect_exit, int) or not (
        0 <= expect_exit <= 255
    ):
        raise r.fail(f"`{key}.expect_exit` must be an exit status 0..255: {clip(expect_exit)}")
    limit = d["max_seconds"]
    return dataclasses.replace(
        command, input=r.opt_str(d["input"], f"{key}.input", SHA_PATTERN),
        expect_output=r.opt_str(d["expect_output"], f"{key}.expect_output", SHA_PATTERN),
        expect_exit=expect_exit,
        max_seconds=None if limit is None else _seconds(r, limit, f"{key}.max_seconds"),
    )


def _seconds(r: _Reader, value: object, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise r.fail(f"`{key}` must be a number, not {type(value).__name__}")
    if not 0 < value <= 86400:
        raise r.fail(f"`{key}` must be between 0 and 86400 seconds: {clip(value)}")
    return float(value)


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
    digest = r.str_(d["digest"], "digest", SHA_PATTERN)
    try:
        actual = compute_digest(d)
    except (RecursionError, ValueError):  # nesting json.loads just accepted, or a huge int
        raise r.fail("cannot compute the digest (nested too deeply)") from None
    if not hmac.compare_digest(actual, digest):
        raise r.fail("digest mismatch: the trigger was changed after it was written")
    signature = r.opt_str(d["signature"], "signature", SHA_PATTERN)
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
    `signed_by` says which. Payloads and the target are checked separately (trigger_check.py).
    """
    return parse(
        read_document(path), path, environments=environments, key=key,
        require_signature=require_signature, previous_keys=previous_keys,
    )
