"""A release: every trigger file published for one environment, and their payloads.

A release of environment ENV is a plain, deterministic tar (sorted names, mtime 0, uid and
gid 0, mode 0644) named in TUF as target `ENV/releases/VERSION.tar`. It is cumulative, so
a target that skipped versions installs the latest alone (the engine's journal skips what
is already applied). Its members have the staging directory's layout (trigger.py):
`release.json`, `triggers/ENV/<id>.json` and `objects/<aa>/<sha256>`. The same manifest,
minus its size, is the TUF target's `custom["dasct"]`, so an agent can show a release's
details before it downloads it.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dasct import durable
from dasct.agent import AgentError
from dasct.migrate.trigger import ENV_PATTERN, ID_PATTERN, SHA_PATTERN, clip

FORMAT = 1
MANIFEST = "release.json"
_TARGET = re.compile(rf"({ENV_PATTERN.pattern})/releases/([1-9][0-9]{{0,9}})\.tar")
_FIELDS = ("format", "env", "system", "version", "created", "triggers", "new_triggers",
           "defects", "restart")


def target_path(env: str, version: int) -> str:
    """The TUF target path of release version of env."""
    return f"{env}/releases/{version}.tar"


def parse_target(path: str) -> tuple[str, int] | None:
    """(env, version) of a release's target path, or None when path is not one."""
    m = _TARGET.fullmatch(path)
    return (m.group(1), int(m.group(2))) if m else None


@dataclass(frozen=True)
class Release:
    """A release as its TUF target describes it (before or after download)."""

    env: str
    system: str
    version: int
    target: str  # the TUF target path, ENV/releases/VERSION.tar
    length: int  # bytes of the tar
    sha256: str
    created: str  # ISO 8601 UTC
    triggers: tuple[str, ...]  # every trigger in the release
    new_triggers: tuple[str, ...]  # those not in release version-1
    defects: tuple[str, ...]  # defects the new triggers fix
    restart: bool  # a new trigger restarts something

    @classmethod
    def from_target(cls, path: str, target: Any) -> Release:
        """The release a TUF TargetFile describes; AgentError when its custom is malformed."""
        custom = getattr(target, "custom", None)
        doc = custom.get("dasct") if isinstance(custom, Mapping) else None
        if not isinstance(doc, Mapping):
            raise AgentError(f"target {clip(path)}: not a dasct release (no custom.dasct)")
        problem = manifest_problem(doc)
        sha = getattr(target, "hashes", {}).get("sha256")
        if problem is None and not (isinstance(sha, str) and SHA_PATTERN.fullmatch(sha)):
            problem = "has no sha256 hash"
        if problem is None and parse_target(path) != (doc["env"], doc["version"]):
            problem = f"does not match its manifest ({doc['env']} version {doc['version']})"
        if problem:
            raise AgentError(f"target {clip(path)}: {problem}")
        return cls(
            env=doc["env"], system=doc["system"], version=doc["version"], target=path,
            length=int(target.length), sha256=str(sha), created=doc["created"],
            triggers=tuple(doc["triggers"]), new_triggers=tuple(doc["new_triggers"]),
            defects=tuple(doc["defects"]), restart=doc["restart"],
        )

    def manifest(self) -> dict[str, Any]:
        """The TUF custom / release.json fields, without size."""
        return {"format": FORMAT, "env": self.env, "system": self.system,
                "version": self.version, "created": self.created,
                "triggers": list(self.triggers), "new_triggers": list(self.new_triggers),
                "defects": list(self.defects), "restart": self.restart}


def _strings(value: object, pattern: re.Pattern[str] | None = None) -> bool:
    return isinstance(value, list) and all(
        isinstance(v, str) and (pattern is None or pattern.fullmatch(v)) for v in value)


def manifest_problem(doc: Mapping[str, Any]) -> str | None:
    """Why doc is not a release manifest, or None when it is one."""
    if doc.get("format") != FORMAT:
        return f"unknown release format {clip(doc.get('format'))}"
    checks = {
        "env": isinstance(doc.get("env"), str) and ENV_PATTERN.fullmatch(doc["env"]),
        "system": isinstance(doc.get("system"), str) and 0 < len(doc["system"]) <= 128,
        "version": type(doc.get("version")) is int and doc["version"] >= 1,
        "created": isinstance(doc.get("created"), str) and len(doc["created"]) <= 40,
        "triggers": _strings(doc.get("triggers"), ID_PATTERN),
        "new_triggers": _strings(doc.get("new_triggers"), ID_PATTERN)
        and set(doc["new_triggers"]) <= set(doc.get("triggers") or ()),
        "defects": _strings(doc.get("defects")),
        "restart": type(doc.get("restart")) is bool,
    }
    bad = [name for name, ok in checks.items() if not ok]
    return f"malformed manifest field {bad[0]}" if bad else None


# --------------------------------------------------------------------------- writing


def _tar_bytes(members: Mapping[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in sorted(members):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(members[name]), 0, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(members[name]))
    return out.getvalue()


def build(manifest: Mapping[str, Any], files: Mapping[str, bytes]) -> bytes:
    """The release tar: files (staging-relative names) plus release.json with its size.

    The size is the tar's own, so it is found by a fixed point (tar pads to 512-byte
    blocks, so the second round almost always agrees).
    """
    size = 0
    for _ in range(8):
        doc = {**manifest, "size": size}
        body = json.dumps(doc, sort_keys=True, indent=1).encode() + b"\n"
        data = _tar_bytes({**files, MANIFEST: body})
        if len(data) == size:
            return data
        size = len(data)
    raise AgentError("release size does not settle")  # pragma: no cover


def members(tar_bytes: bytes) -> dict[str, bytes]:
    """The regular files of a release tar this side wrote (publish reads the previous one)."""
    found: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:") as tar:
        for m in tar.getmembers():
            f = tar.extractfile(m) if m.isreg() else None
            if f is not None:
                found[m.name] = f.read()
    return found


# --------------------------------------------------------------------------- extract


def _member_problem(m: tarfile.TarInfo, env: str) -> str | None:
    if not m.isreg():
        return "is not a regular file (link, device or directory)"
    name = m.name
    if name.startswith("/") or "\\" in name or "\x00" in name:
        return "is not a relative posix path"
    if any(p in ("", ".", "..") for p in name.split("/")):
        return "has an empty, . or .. component"
    if name == MANIFEST:
        return None
    parts = name.split("/")
    if len(parts) == 3 and parts[0] == "triggers":
        if parts[1] != env:
            return f"is a trigger for another environment (release is for {env})"
        tid = parts[2][:-5] if parts[2].endswith(".json") else ""
        return None if ID_PATTERN.fullmatch(tid) else "is not a trigger file name"
    if len(parts) == 3 and parts[0] == "objects" and SHA_PATTERN.fullmatch(parts[2]) \
            and parts[1] == parts[2][:2]:
        return None
    return "is not release.json, triggers/ENV/ID.json or objects/AA/SHA256"


def extract(tar_path: Path, release: Release, staging: Path) -> list[Path]:
    """Verify the downloaded release tar, then write its triggers and payloads to staging.

    Every member is checked before anything is written; returns the trigger paths written.
    """
    where = f"release {release.env} {release.version} ({tar_path})"
    try:
        data = tar_path.read_bytes()
    except OSError as exc:
        raise AgentError(f"{where}: cannot read: {exc.strerror or exc}") from None
    if len(data) != release.length or hashlib.sha256(data).hexdigest() != release.sha256:
        raise AgentError(f"{where}: length or sha256 differs from its signed target")
    files: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for m in tar:
                problem = _member_problem(m, release.env)
                if problem is None and m.name in files:
                    problem = "appears twice"
                if problem:
                    raise AgentError(f"{where}: member {clip(m.name)} {problem}")
                f = tar.extractfile(m)
                files[m.name] = f.read() if f is not None else b""
    except (tarfile.TarError, EOFError) as exc:
        raise AgentError(f"{where}: not a readable tar: {exc}") from None
    for name, body in files.items():
        if name.startswith("objects/") and hashlib.sha256(body).hexdigest() != name[-64:]:
            raise AgentError(f"{where}: member {clip(name)} does not hash to its name")
    _check_manifest(files.get(MANIFEST), release, where)
    tids = sorted(n.split("/")[2][:-5] for n in files if n.startswith("triggers/"))
    if tids != sorted(release.triggers):
        raise AgentError(f"{where}: its trigger files differ from the triggers it lists")
    written: list[Path] = []
    # Payloads first, so a trigger file never appears in staging before what it needs.
    for name in sorted(files, key=lambda n: (not n.startswith("objects/"), n)):
        if name == MANIFEST:
            continue
        target = staging / name
        if name.startswith("objects/") and target.is_file():
            continue  # content-addressed: already there means already right
        durable.atomic_write(target, files[name], mode=0o644)
        if name.startswith("triggers/"):
            written.append(target)
    return written


def _check_manifest(body: bytes | None, release: Release, where: str) -> None:
    if body is None:
        raise AgentError(f"{where}: has no {MANIFEST}")
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise AgentError(f"{where}: {MANIFEST} is not JSON") from None
    problem = manifest_problem(doc) if isinstance(doc, dict) else "not an object"
    if problem:
        raise AgentError(f"{where}: {MANIFEST}: {problem}")
    expected = release.manifest()
    differs = [k for k in _FIELDS if doc.get(k) != expected[k]]
    if doc.get("size") != release.length:
        differs.append("size")
    if differs:
        raise AgentError(f"{where}: {MANIFEST} disagrees with its signed target ({differs[0]})")
