from __future__ import annotations

from pathlib import Path

from dasct.migrate.demo import run_demo


def test_demo_migrates_rolls_back_and_reverts(tmp_path: Path) -> None:
    lines: list[str] = []
    run_demo(tmp_path, lines.append)
    text = "\n".join(lines)
    assert "migrated PROJ-42" in text
    assert "rolled back PROJ-43" in text
    assert "byte-identical to before" in text
    assert "reverted PROJ-42" in text
    assert "files back to the initial version: yes; tables now: none" in text
    assert "audit log" in text and ": intact;" in text
