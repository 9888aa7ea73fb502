"""What the controller and a target send each other: one tar stream each way.

The request (the controller's stdin to `dasct _target` on the host) holds `request.json`
(the action, its arguments, the secrets the engine needs), `config.toml` (the environment
as the target sees it), the trigger files and payloads to stage (`staging/...`) and a copy
of the gate environment's state (`gate/...`, the sign-offs a promotion is checked
against). The response (its stdout) holds `result.json` and a copy of the target's state
directory (`state/...`): the audit log, inventory, outcomes and settled triggers that the
controller's read-only commands read. Archives and databases never travel back.

Both sides check every member before writing it: a regular file, a relative path under one
of the expected prefixes, no `..`; payloads are content-addressed and checked against their
name. A bad member refuses the whole stream with one line, before anything is written.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import IO, Any

from dasct import durable
from dasct.remote.hosts import RemoteError

REQUEST, CONFIG, RESULT = "request.json", "config.toml", "result.json"
STAGING, GATE, STATE = "staging", "gate", "state"
MAX_MEMBER = 2 << 30  # a payload bigger than 2 GiB is not a migration dasct ships
# What stays on the target: archives' contents (big, and what a restore reads there),
# databases, locks' guard files, the outbox. Everything else is small and is what
# status, where, inventory and the promotion gate read.
_NOT_MIRRORED_DIRS = ("revert-staging",)
_NOT_MIRRORED_SUFFIXES = (".guard", ".lock", ".sqlite", ".sqlite-wal", ".sqlite-shm",
                          ".sqlite-journal")


def state_files(state_dir: Path) -> Iterator[tuple[str, Path]]:
    """(relative posix name, path) of each state file that is mirrored, sorted."""
    if not state_dir.is_dir():
        return
    for folder, dirs, files in os.walk(state_dir):
        rel = Path(folder).relative_to(state_dir)
        top = rel.parts[0] if rel.parts else ""
        if top in _NOT_MIRRORED_DIRS or (top == "archives" and len(rel.parts) > 2):
            dirs[:] = []
            continue
        dirs.sort()
        for name in sorted(files):
            if name.endswith(_NOT_MIRRORED_SUFFIXES) or name.startswith(".tmp"):
                continue
            if top == "archives" and not name.endswith((".json", ".jsonl")):
                continue
            yield (rel / name).as_posix(), Path(folder) / name


class Writer:
    """Build a tar stream member by member (into a spooled file, for large payloads)."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.tar = tarfile.open(fileobj=out, mode="w|")  # noqa: SIM115 (closed by close())

    def add_bytes(self, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = len(data), 0o600, 0
        self.tar.addfile(info, io.BytesIO(data))

    def add_json(self, name: str, doc: Any) -> None:
        self.add_bytes(name, json.dumps(doc, sort_keys=True).encode())

    def add_file(self, name: str, path: Path) -> None:
        size = path.stat().st_size
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = size, 0o600, 0
        with path.open("rb") as f:
            self.tar.addfile(info, f)

    def add_tree(self, prefix: str, files: Iterable[tuple[str, Path]]) -> None:
        for rel, path in files:
            self.add_file(f"{prefix}/{rel}", path)

    def close(self) -> None:
        self.tar.close()


def _checked_name(name: str, prefixes: tuple[str, ...], singles: tuple[str, ...]) -> str:
    p = PurePosixPath(name)
    if name in singles:
        return name
    if (p.is_absolute() or ".." in p.parts or not p.parts or p.parts[0] not in prefixes
            or len(p.parts) < 2 or any(part in ("", ".") for part in p.parts)):
        raise RemoteError(f"remote stream: refused member {name!r} (not a dasct file)")
    return name


def read(stream: IO[bytes], *, prefixes: tuple[str, ...], singles: tuple[str, ...]
         ) -> Iterator[tuple[str, IO[bytes]]]:
    """(name, file) of each member of a tar stream, every name checked first."""
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for info in tar:
                if not info.isfile() or info.size > MAX_MEMBER:
                    raise RemoteError(f"remote stream: refused member {info.name!r} "
                                      "(not a regular file of a sane size)")
                name = _checked_name(info.name, prefixes, singles)
                f = tar.extractfile(info)
                assert f is not None  # a regular file always has content
                yield name, f
    except tarfile.TarError as exc:
        raise RemoteError(f"remote stream: not a complete dasct stream ({exc})") from None


def write_object(staging: Path, rel: str, data: bytes) -> None:
    """Stage a payload `objects/aa/sha256` once, after checking its digest and its name."""
    parts = PurePosixPath(rel).parts
    digest = hashlib.sha256(data).hexdigest()
    if len(parts) != 3 or parts[0] != "objects" or parts[2] != digest or parts[1] != digest[:2]:
        raise RemoteError(f"remote stream: payload {rel} does not match its content")
    path = staging.joinpath(*parts)
    if not path.is_file():
        durable.atomic_write(path, data, mode=0o644)


def replace_tree(dest: Path, members: dict[str, bytes]) -> None:
    """Make dest hold exactly members (relative name -> bytes), swapped in at once."""
    fresh = dest.with_name(f".{dest.name}.new")
    shutil.rmtree(fresh, ignore_errors=True)
    for rel, data in members.items():
        durable.atomic_write(fresh.joinpath(*PurePosixPath(rel).parts), data, mode=0o644)
    fresh.mkdir(parents=True, exist_ok=True)
    old = dest.with_name(f".{dest.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if dest.exists():
        os.replace(dest, old)
    os.replace(fresh, dest)
    shutil.rmtree(old, ignore_errors=True)
