"""Writing trigger files: the document, its rendering, payloads, promotion to another env.

The format (records, canonical JSON, digest and signature) is trigger.py, reading is
trigger_read.py, the payload and target checks trigger_check.py; everything written here is
verified by them before it lands, so nothing invalid is ever staged. Building a trigger
from a git range is create.py's job; `retarget` is what promotion (promotion.py) writes
production's trigger with: the same steps and payloads, never rebuilt from git.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from dasct import durable
from dasct.migrate.trigger import (
    ENV_PATTERN,
    FORMAT,
    FORMAT_VERSION,
    ID_PATTERN,
    MODES,
    FileChange,
    SqlChange,
    StepCommand,
    Trigger,
    TriggerError,
    clip,
    compute_digest,
    format_time,
    object_path,
    sha256_hex,
    sign,
    trigger_path,
)
from dasct.migrate.trigger_check import check_payloads, file_sha256, read_payload
from dasct.migrate.trigger_read import parse


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
            "commands": [_command(c) for c in commands],
        },
        "depends_on": list(depends_on),
        "conflicts_with": list(conflicts_with),
    }
    doc["digest"] = compute_digest(doc)
    doc["signature"] = sign(doc["digest"], key) if key is not None else None
    return doc


def _command(c: StepCommand) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": c.name, "argv": list(c.argv), "kind": c.kind,
                             "timeout": c.timeout}
    if c.kind == "verify":
        # Only verify commands carry these keys, so the digest of every trigger written
        # before they existed is unchanged.
        entry.update(input=c.input, expect_output=c.expect_output, expect_exit=c.expect_exit,
                     max_seconds=c.max_seconds)
    return entry


def render(doc: Mapping[str, Any]) -> bytes:
    """The bytes of a trigger file: sorted keys, indented for people, UTF-8."""
    return (json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()


def write_payload(staging: Path, data: bytes) -> str:
    """Store data as a content-addressed payload (once); return its sha256."""
    name = sha256_hex(data)
    where = object_path(staging, name)
    if not (where.is_file() and file_sha256(where) == name):
        _write_staged(where, data)
    return name


def _write_staged(path: Path, data: bytes) -> None:
    # The directory fsync is best effort here: the file itself is fsynced, and a staging
    # directory that cannot be opened or fsynced (some file systems refuse, e.g. a CI
    # artifact mount) must not fail the write.
    durable.atomic_write(path, data, strict=False)


def write(staging: Path, doc: Mapping[str, Any], *, key: bytes | None) -> Trigger:
    """Verify a trigger document and its payloads, then write it atomically.

    Nothing invalid is ever written. An identical existing file is fine (re-running CI);
    a different one under the same id is an error.
    """
    env, tid = doc.get("environment"), doc.get("id")
    if not (isinstance(env, str) and ENV_PATTERN.fullmatch(env)):
        raise TriggerError(f"{staging}: not an environment name: {clip(env)}")
    if not (isinstance(tid, str) and ID_PATTERN.fullmatch(tid)):
        raise TriggerError(f"{staging}: not a trigger id: {clip(tid)}")
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
        _write_staged(path, data)
    return trigger


def _resealed(trigger: Trigger, *, key: bytes | None) -> dict[str, Any]:
    # as_document keeps the stored signature and retarget signs anew; both need every
    # field of the trigger written out and digested again.
    return document(
        id=trigger.id, system=trigger.system, environment=trigger.environment,
        not_before=trigger.not_before, expires=trigger.expires, defects=trigger.defects,
        commits=trigger.commits, sql=trigger.sql, files=trigger.files,
        commands=trigger.commands, depends_on=trigger.depends_on,
        conflicts_with=trigger.conflicts_with, key=key,
    )


def as_document(trigger: Trigger) -> dict[str, Any]:
    """The JSON document of a loaded trigger (as written, digest and signature included)."""
    doc = _resealed(trigger, key=None)
    doc["signature"] = trigger.signature
    return doc


def retargeted(
    trigger: Trigger,
    environment: str,
    *,
    not_before: datetime | None = None,
    expiry: timedelta | None = None,
    key: bytes | None = None,
) -> dict[str, Any]:
    """The document retarget writes, written nowhere: the same id and steps for another
    environment; the schedule keeps its length unless given."""
    if not ENV_PATTERN.fullmatch(environment):
        raise TriggerError(f"{trigger.path}: not an environment name: {clip(environment)}")
    start = not_before or trigger.not_before
    length = expiry if expiry is not None else trigger.expires - trigger.not_before
    promoted = replace(trigger, environment=environment, not_before=start, expires=start + length)
    return _resealed(promoted, key=key)


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

    Payloads are copied when the target staging differs (each verified on the way); the
    document is `retargeted`'s, so the same arguments always write the same bytes. This is
    what promotion to production uses.
    """
    doc = retargeted(trigger, environment, not_before=not_before, expiry=expiry, key=key)
    target = staging or trigger.staging
    for name in trigger.payloads():
        data = read_payload(trigger.staging, name)
        if target != trigger.staging:
            write_payload(target, data)
    return write(target, doc, key=key)
