"""release.py: the deterministic tar, its manifest, and extract's refusals."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from agent_kit import ENV, SYSTEM, sha

from dasct.agent import AgentError, release

PAYLOAD = b"print('v2')\n"
TRIGGER = f"triggers/{ENV}/E1.json"
OBJECT = f"objects/{sha(PAYLOAD)[:2]}/{sha(PAYLOAD)}"


def manifest(**changes: Any) -> dict[str, Any]:
    return {"format": 1, "env": ENV, "system": SYSTEM, "version": 1,
            "created": "2026-11-24T01:00:00Z", "triggers": ["E1"], "new_triggers": ["E1"],
            "defects": ["PROJ-1"], "restart": False, **changes}


def rel(data: bytes, doc: dict[str, Any] | None = None) -> release.Release:
    target = SimpleNamespace(custom={"dasct": doc or manifest()}, length=len(data),
                             hashes={"sha256": hashlib.sha256(data).hexdigest()})
    return release.Release.from_target(release.target_path(ENV, 1), target)


def good_files() -> dict[str, bytes]:
    return {TRIGGER: b'{"id": "E1"}', OBJECT: PAYLOAD}


def test_build_is_deterministic_and_plain() -> None:
    data = release.build(manifest(), good_files())
    assert data == release.build(manifest(), dict(reversed(list(good_files().items()))))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        infos = tar.getmembers()
    assert [m.name for m in infos] == [OBJECT, "release.json", TRIGGER]
    assert {(m.mtime, m.uid, m.gid, m.mode, m.type) for m in infos} == {
        (0, 0, 0, 0o644, tarfile.REGTYPE)}
    doc = json.loads(release.members(data)["release.json"])
    assert doc["size"] == len(data)


def test_extract_writes_payloads_and_triggers(tmp_path: Path) -> None:
    data = release.build(manifest(), good_files())
    (tmp_path / "r.tar").write_bytes(data)
    written = release.extract(tmp_path / "r.tar", rel(data), tmp_path / "staging")
    assert written == [tmp_path / "staging" / TRIGGER]
    assert (tmp_path / "staging" / OBJECT).read_bytes() == PAYLOAD
    assert not (tmp_path / "staging" / "release.json").exists()


def _raw_tar(entries: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for info, body in entries:
            info.size = len(body) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(body) if info.isreg() else None)
    return out.getvalue()


def _entry(name: str, body: bytes = b"x", kind: bytes = tarfile.REGTYPE,
           link: str = "") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info, body


def _hostile(extra: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    """A release tar with a correct manifest plus extra members."""
    files = good_files()
    body = release.build(manifest(), files)
    size = len(body)
    entries = [_entry(n, b) for n, b in sorted(files.items())] + extra
    for _ in range(4):  # the manifest's size must match the hostile tar's own
        doc = json.dumps({**manifest(), "size": size}).encode()
        data = _raw_tar([*entries, _entry("release.json", doc)])
        if len(data) == size:
            break
        size = len(data)
    return data


HOSTILE = {
    "absolute": ([_entry("/etc/passwd")], "is not a relative posix path"),
    "dotdot": ([_entry("objects/../../evil")], "has an empty, . or .. component"),
    "symlink": ([_entry(f"triggers/{ENV}/E2.json", kind=tarfile.SYMTYPE, link="/etc/passwd")],
                "is not a regular file"),
    "hardlink": ([_entry(f"triggers/{ENV}/E2.json", kind=tarfile.LNKTYPE, link=TRIGGER)],
                 "is not a regular file"),
    "device": ([_entry("objects/aa/dev", kind=tarfile.CHRTYPE)], "is not a regular file"),
    "directory": ([_entry("objects", kind=tarfile.DIRTYPE)], "is not a regular file"),
    "other env": ([_entry("triggers/model/E2.json")], "trigger for another environment"),
    "stray file": ([_entry("run.sh")], "is not release.json, triggers/ENV/ID.json"),
    "bad object": ([_entry(f"objects/ab/{'ab' * 32}",
                           b"not that")], "does not hash to its name"),
    "duplicate": ([_entry(TRIGGER, b"{}")], "appears twice"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_tars_write_nothing(tmp_path: Path, case: str) -> None:
    extra, message = HOSTILE[case]
    data = _hostile(extra)
    (tmp_path / "r.tar").write_bytes(data)
    with pytest.raises(AgentError, match=message) as err:
        release.extract(tmp_path / "r.tar", rel(data), tmp_path / "staging")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "staging").exists()


@pytest.mark.parametrize(("field", "value"), [("version", 1), ("system", "other"),
                                                ("env", "model"), ("restart", True),
                                                ("triggers", ["E1", "E9"])])
def test_a_manifest_that_disagrees_with_the_signed_target_is_refused(
        tmp_path: Path, field: str, value: Any) -> None:
    data = release.build(manifest(), good_files())
    (tmp_path / "r.tar").write_bytes(data)
    signed = manifest(**{field: value})
    if field == "version":  # the tar says 1; the signed target says 2
        target = SimpleNamespace(custom={"dasct": manifest(version=2)}, length=len(data),
                                 hashes={"sha256": hashlib.sha256(data).hexdigest()})
        r = release.Release.from_target(release.target_path(ENV, 2), target)
    elif field == "env":
        target = SimpleNamespace(custom={"dasct": signed}, length=len(data),
                                 hashes={"sha256": hashlib.sha256(data).hexdigest()})
        r = release.Release.from_target(release.target_path("model", 1), target)
    else:
        r = rel(data, signed)
    with pytest.raises(AgentError, match=r"disagrees|another environment|differ from"):
        release.extract(tmp_path / "r.tar", r, tmp_path / "staging")
    assert not (tmp_path / "staging").exists()


def test_a_tar_that_is_not_the_signed_one_is_refused(tmp_path: Path) -> None:
    data = release.build(manifest(), good_files())
    (tmp_path / "r.tar").write_bytes(data[:-1] + b"!")
    with pytest.raises(AgentError, match="length or sha256 differs from its signed target"):
        release.extract(tmp_path / "r.tar", rel(data), tmp_path / "staging")


@pytest.mark.parametrize(("custom", "message"), [
    (None, "not a dasct release"),
    ({"dasct": {**manifest(), "format": 2}}, "unknown release format 2"),
    ({"dasct": {**manifest(), "triggers": ["../x"]}}, "malformed manifest field triggers"),
    ({"dasct": {**manifest(), "new_triggers": ["E7"]}}, "malformed manifest field new_trig"),
    ({"dasct": {**manifest(), "version": 3}}, "does not match its manifest"),
])
def test_malformed_custom_is_refused(custom: Any, message: str) -> None:
    target = SimpleNamespace(custom=custom, length=10, hashes={"sha256": "a" * 64})
    with pytest.raises(AgentError, match=message):
        release.Release.from_target(release.target_path(ENV, 1), target)
