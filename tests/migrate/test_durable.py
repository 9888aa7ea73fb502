"""dasct.durable, the one module for durable writes (here beside its main users, the
journal, archive and trigger files): atomic replace with and without a fixed temporary
name, the fsynced append, and strict versus best-effort directory fsync."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from dasct import durable


def test_atomic_write_replaces_whole_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "file.json"
    durable.atomic_write(target, b"one")
    durable.atomic_write(target, b"two", mode=0o640)
    assert target.read_bytes() == b"two"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert sorted(os.listdir(target.parent)) == ["file.json"]


def test_atomic_write_that_fails_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "file"
    durable.atomic_write(target, b"old")
    with pytest.raises(TypeError):
        durable.atomic_write(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["file"]


def test_replace_via_uses_the_fixed_name_and_mode(tmp_path: Path) -> None:
    target, tmp = tmp_path / "app.py", tmp_path / ".app.py.new"
    tmp.write_bytes(b"left by a killed run")
    durable.replace_via(tmp, target, b"print(1)\n", mode=0o755)
    assert target.read_bytes() == b"print(1)\n" and not tmp.exists()
    assert stat.S_IMODE(target.stat().st_mode) == 0o755


def test_append_line_appends_and_creates_with_mode(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    durable.append_line(log, b"1\n", mode=0o600)
    durable.append_line(log, b"2\n")
    assert log.read_bytes() == b"1\n2\n"
    assert stat.S_IMODE(log.stat().st_mode) == 0o600


def test_fsync_dir_strict_or_best_effort(tmp_path: Path) -> None:
    durable.fsync_dir(tmp_path)
    with pytest.raises(FileNotFoundError):
        durable.fsync_dir(tmp_path / "missing")
    durable.fsync_dir(tmp_path / "missing", strict=False)
