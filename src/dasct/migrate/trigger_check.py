"""Checking a verified trigger against what it runs on: its payloads and its target.

`read_payload` returns a payload only when its content matches its name; `check_payloads`
checks that every payload a trigger names is there and intact; `check_target` refuses,
before anything is touched, a target the trigger cannot safely apply to (a path through
a symlink, a pre-image changed by hand, an add onto an existing file). It is separate
from reading the trigger file (trigger_read.py) because these read the staging area and
the target's files, not the document.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from dasct.migrate.trigger import (
    SHA_PATTERN,
    Trigger,
    TriggerError,
    clip,
    object_path,
    path_problem,
    sha256_hex,
)


def read_payload(staging: Path, sha256: str) -> bytes:
    """The payload named sha256, verified; TriggerError when missing or corrupt."""
    if not SHA_PATTERN.fullmatch(sha256):
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
