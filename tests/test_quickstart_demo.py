"""The Quickstart's first command: the demo runs end to end on embedded defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from dasct_run import dasct


@pytest.mark.slow
def test_demo_shows_the_warning_and_the_migration(tmp_path: Path) -> None:
    result = dasct(tmp_path, "demo", "--keep", str(tmp_path / "demo"))
    assert result.code == 0, result.err
    out = result.out + result.err
    assert "src/parser.py:2\tPROJ-101" in out  # scan
    assert "PROJ-101" in out and "fixed by" in out  # the warning
    assert "git commit exit code: 0 (warned, not blocked)" in out
    assert "migrated PROJ-42" in out and "rolled back PROJ-43" in out
    assert "reverted PROJ-42" in out and "intact" in out
    assert (tmp_path / "demo" / "sample" / ".git" / "hooks" / "pre-commit").exists()
