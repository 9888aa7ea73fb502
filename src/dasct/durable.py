"""Durable writes: what survives a crash or a power loss once the call returns.

Three primitives, used by every file dasct must not lose or tear: the trigger files and
payloads, the inventory and outcomes, the audit log and its head, the migration journal,
the delivered-notifications log and the files a migration writes into a target.

- `atomic_write`: a temporary file in the same directory, fsynced, renamed over the
  target, and the directory fsynced: readers see the old file or the new one, never half.
  `replace_via` is the same with a fixed temporary name, for callers whose recovery looks
  for it (the migration's `.NAME.dasct-new`).
- `append_line`: one line appended with O_APPEND and fsynced before returning.
- `fsync_dir`: make a rename or a new directory entry durable.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def fsync_dir(path: Path, *, strict: bool = True) -> None:
    """Make a rename or a new entry in directory path durable.

    With strict=False a directory that cannot be opened or fsynced (some file systems
    refuse) is let go: for callers whose file itself is already fsynced.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        if strict:
            raise
        return
    try:
        os.fsync(fd)
    except OSError:
        if strict:
            raise
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    """fsync a file that was written without it (e.g. by a copy)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_synced(fd: int, data: bytes, mode: int | None) -> None:
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        if mode is not None:
            os.fchmod(f.fileno(), mode)
        os.fsync(f.fileno())


def atomic_write(path: Path, data: bytes, *, mode: int | None = None,
                 strict: bool = True) -> None:
    """Write data to path so that readers see the old file or the new one, never half.

    Creates the parent directories. mode: the new file's permission bits (default: the
    0600 of a temporary file). strict=False: the directory fsync is best effort.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        _write_synced(fd, data, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_dir(path.parent, strict=strict)


def replace_via(tmp: Path, path: Path, data: bytes, *, mode: int | None = None) -> None:
    """atomic_write through the fixed temporary name tmp (in path's directory), which a
    crash may leave behind for the caller's recovery to remove."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        _write_synced(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), data, mode)
    except OSError:
        # A full disk: what was written of tmp holds space the rollback needs. A kill here
        # still leaves it, for the caller's recovery.
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    os.replace(tmp, path)
    fsync_dir(path.parent)


def append_line(path: Path, line: bytes, *, mode: int = 0o640) -> None:
    """Append one line to path (created with mode) and fsync it before returning."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, mode)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)
