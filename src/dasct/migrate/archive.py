"""The archive: everything the engine saves before it changes anything, enough to restore.

`state/archives/<id>/` holds manifest.json (each path the trigger touches: whether it
existed, its sha256 and mode, the directories an add will create), the pre-image
contents under files/, the trigger's deploy and revert scripts under sql/ (so a revert still works
after staging is cleaned), and the database backup. It is built in a `.partial` folder and
renamed into place, so an archive either exists whole or not at all. Its cost follows the
number of files the trigger changes, never the size of the target, and the size of the
database objects its SQL touches (scope.py), unless those scripts cannot be read: then the
whole database is archived and the manifest says why (`database.whole_reason`).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dasct import durable
from dasct.errors import DasctError
from dasct.migrate import scope
from dasct.migrate import trigger as trig
from dasct.migrate import trigger_check as trigc
from dasct.migrate.database import Database, kind_of

NEW_SUFFIX = ".dasct-new"


class ArchiveError(DasctError):
    """An archive is missing, incomplete, or a restore does not match it."""


@dataclass(frozen=True)
class Archive:
    """A loaded archive: its folder and manifest."""

    path: Path
    manifest: dict[str, Any]

    @property
    def id(self) -> str:
        """The enhancement (trigger id) this archive was made for."""
        return str(self.manifest["trigger"])

    @property
    def created(self) -> float:
        """When the archive was made (seconds since the epoch)."""
        return float(self.manifest["created"])


def archives_dir(state_dir: Path) -> Path:
    """Where an environment keeps its archives."""
    return state_dir / "archives"


def beside(path: Path) -> Path:
    """The temporary name a new file is written under before it is renamed into place."""
    return path.with_name(f".{path.name}{NEW_SUFFIX}")


def write_beside(path: Path, data: bytes, mode: int) -> None:
    """Write data next to path, fsync, then rename it into place (readers never see half).

    The temporary name is fixed (`beside`) so that restore_files removes what a killed
    run left there.
    """
    durable.replace_via(beside(path), path, data, mode=mode)


def _touched(t: trig.Trigger) -> list[str]:
    paths: list[str] = []
    for change in t.files:
        paths += [p for p in (change.old_path, change.path) if p is not None]
    return list(dict.fromkeys(paths))


def _missing_dirs(root: Path, rel: str) -> list[str]:
    parts = rel.split("/")[:-1]
    missing = []
    for i in range(len(parts)):
        sub = "/".join(parts[: i + 1])
        if not (root / sub).exists():
            missing.append(sub)
    return missing


def create(state_dir: Path, t: trig.Trigger, *, root: Path, db: Database | None) -> Archive:
    """Archive the pre-image of every path t touches and the database; return the archive."""
    final = archives_dir(state_dir) / t.id
    if final.exists():
        raise ArchiveError(f"{final} already exists: enhancement {t.id} was archived before")
    work = archives_dir(state_dir) / f".{t.id}.partial"
    if work.exists():
        shutil.rmtree(work)
    (work / "files").mkdir(parents=True)
    (work / "sql").mkdir()
    (work / "commands").mkdir()
    entries = []
    for rel in _touched(t):
        target = root / rel
        entry: dict[str, Any] = {"path": rel, "existed": target.is_file(), "sha256": None,
                                 "mode": None, "created_dirs": _missing_dirs(root, rel)}
        if entry["existed"]:
            data = target.read_bytes()
            entry["sha256"] = trig.sha256_hex(data)
            entry["mode"] = stat.S_IMODE(target.stat().st_mode)
            blob = work / "files" / entry["sha256"]
            if not blob.exists():
                blob.write_bytes(data)
        entries.append(entry)
    post = {}
    for change in t.files:
        post[change.path] = change.post_sha256
        if change.op == "rename" and change.old_path:
            post[change.old_path] = None
    sql = []
    for sql_change in t.sql:
        for sha in (sql_change.revert, sql_change.deploy):
            (work / "sql" / sha).write_bytes(trigc.read_payload(t.staging, sha))
        sql.append({"name": sql_change.name, "revert": sql_change.revert,
                    "deploy": sql_change.deploy})
    # A verify command's input and expected output: a revert to this version runs its
    # commands again, after the trigger's staging area is long gone.
    for sha in t.payloads():
        if any(sha in (c.input, c.expect_output) for c in t.commands):
            (work / "commands" / sha).write_bytes(trigc.read_payload(t.staging, sha))
    manifest = {
        "trigger": t.id, "environment": t.environment, "created": time.time(),
        "files": entries, "post": post, "sql": sql,
        "database": _database(db, t, work) if db is not None else None,
    }
    shutil.copyfile(t.path, work / "trigger.json")
    (work / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
    for f in work.rglob("*"):
        if f.is_file():
            durable.fsync_file(f)
    for folder in (work / "files", work / "sql", work / "commands", work):
        durable.fsync_dir(folder)
    os.replace(work, final)
    durable.fsync_dir(final.parent)
    return Archive(final, manifest)


def _database(db: Database, t: trig.Trigger, work: Path) -> dict[str, Any]:
    """Back up what t's SQL touches, or the whole database (saying why) when unknown."""
    within = db.scope_of(scope.analyse_trigger(t, db.kind))
    if isinstance(within, str):
        return {**db.backup(work), "whole_reason": within}
    return db.backup(work, within)


def database_scope(descriptor: dict[str, Any]) -> scope.Scope | None:
    """What an archive's database part covers; None: the whole database."""
    return scope.Scope.from_json(descriptor.get("scope"))


def scope_record(a: Archive) -> dict[str, Any]:
    """The audit fields saying what the archive's database part covers."""
    desc = a.manifest["database"]
    if desc is None:
        return {"database": "none"}
    within = database_scope(desc)
    if within is None:
        return {"database": "whole", "reason": desc.get("whole_reason")}
    return {"database": "scope", "tables": list(within.tables), "objects": list(within.names)}


def plan_line(t: trig.Trigger, url: str) -> str:
    """What the archive of t's database will cover, as the plan says it (read from the
    scripts only: what triggers and foreign keys reach is asked of the database at run
    time)."""
    try:
        return scope.describe(scope.analyse_trigger(t, kind_of(url)))
    except trig.TriggerError as exc:
        return f"unknown ({exc})"


def load(state_dir: Path, tid: str) -> Archive:
    """The archive of enhancement tid, or ArchiveError if it is not retained."""
    path = archives_dir(state_dir) / tid
    try:
        manifest = json.loads((path / "manifest.json").read_text())
    except (OSError, ValueError):
        raise ArchiveError(f"no archive of {tid} in {archives_dir(state_dir)} "
                           "(never made, or pruned by retention)") from None
    return Archive(path, manifest)


def all_archives(state_dir: Path) -> list[Archive]:
    """Every complete archive, oldest first."""
    found = []
    folder = archives_dir(state_dir)
    if folder.is_dir():
        for child in folder.iterdir():
            if not child.name.startswith("."):
                try:
                    found.append(load(state_dir, child.name))
                except ArchiveError:
                    continue
    return sorted(found, key=lambda a: a.created)


def discard_partial(state_dir: Path, tid: str) -> None:
    """Remove an archive that a killed run left half-written."""
    work = archives_dir(state_dir) / f".{tid}.partial"
    if work.exists():
        shutil.rmtree(work)


def script(archive: Archive, sha: str) -> bytes:
    """A deploy or revert script kept in the archive."""
    return (archive.path / "sql" / sha).read_bytes()


def command_payload(archive: Archive, sha: str) -> bytes:
    """A verify command's input or expected output kept in the archive, verified;
    ArchiveError when the archive has none (made before it kept them) or it is corrupt."""
    try:
        data = (archive.path / "commands" / sha).read_bytes()
    except OSError:
        data = None
    if data is None or trig.sha256_hex(data) != sha:
        raise ArchiveError(f"{archive.path}: no intact copy of command payload {sha[:12]}")
    return data


def blob(archive: Archive, sha: str) -> bytes:
    """The pre-image content with this sha256."""
    return (archive.path / "files" / sha).read_bytes()


def restore_files(archive: Archive, root: Path) -> None:
    """Put every path back as it was before: content, mode, absence, created directories."""
    # Every half-written new file goes first: on a full disk, the one a failed step left
    # holds the space the restore of the others needs.
    for entry in archive.manifest["files"]:
        stray = beside(root / entry["path"])
        if stray.exists():
            stray.unlink()
    for entry in archive.manifest["files"]:
        target = root / entry["path"]
        if entry["existed"]:
            if not (target.is_file() and trigc.file_sha256(target) == entry["sha256"]
                    and stat.S_IMODE(target.stat().st_mode) == entry["mode"]):
                data = (archive.path / "files" / entry["sha256"]).read_bytes()
                write_beside(target, data, entry["mode"])
        elif target.is_file() or target.is_symlink():
            target.unlink()
            durable.fsync_dir(target.parent)
    for entry in archive.manifest["files"]:
        for sub in reversed(entry["created_dirs"]):
            folder = root / sub
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()


def check_files(archive: Archive, root: Path) -> list[str]:
    """How the target's files differ from the archive's pre-images (empty when identical)."""
    problems = []
    for entry in archive.manifest["files"]:
        target = root / entry["path"]
        if entry["existed"]:
            if not target.is_file():
                problems.append(f"{entry['path']}: missing after restore")
            elif trigc.file_sha256(target) != entry["sha256"]:
                problems.append(f"{entry['path']}: content differs from the archive")
            elif stat.S_IMODE(target.stat().st_mode) != entry["mode"]:
                problems.append(f"{entry['path']}: mode differs from the archive")
        elif target.exists():
            problems.append(f"{entry['path']}: should not exist after restore")
        for sub in entry["created_dirs"]:
            if (root / sub).exists():
                problems.append(f"{sub}/: directory created by the migration is still there")
    return problems


def remove(archive: Archive) -> None:
    """Delete an archive (retention)."""
    shutil.rmtree(archive.path)
