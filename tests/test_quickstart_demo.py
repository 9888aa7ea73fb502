"""The Quickstart's first command: the whole story runs end to end on embedded defaults."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dasct_run import dasct


@pytest.mark.slow
def test_demo_tells_the_whole_story(tmp_path: Path) -> None:
    kept = tmp_path / "demo"
    result = dasct(tmp_path, "demo", "--keep", str(kept))
    assert result.code == 0, result.err
    out = result.out + result.err
    # The history says which commit fixes which defect, body keywords included.
    assert "Totals ignored quantities" in out and "fixes PROJ-102" in out
    assert "src/parser.py:2\tPROJ-101" in out  # scan
    assert "fixed by" in out and "git commit exit code: 0 (warned, not blocked)" in out
    assert "1 revalidation request" in out and "accepted PROJ-101" in out
    assert "linked in the ledger at" in out  # the next change warns against the baseline
    # Trigger ids a person recognises; one rolled back, one migrated, signed off, promoted.
    good = next(w for w in out.split() if w.startswith("PROJ-42-"))
    bad = next(w for w in out.split() if w.startswith("PROJ-43-"))
    assert f"rolled back {bad}" in out and f"migrated {good}" in out
    assert f"{good}: signed off by Quinn QA <quinn@example.com> in model" in out
    assert f"{good}: promoted to production" in out
    assert "production has no window configured" in out  # without --now, nothing
    assert out.count(f"migrated {good}") == 2  # model, then production
    assert f"{good}  WP  since" in out  # warranty
    # What the last lines point at exists.
    assert f"The demo is kept in {kept}" in out
    report = (kept / "report.html").read_text()
    assert "PROJ-42" in report
    status = dasct(kept / "sample", "status", "--format", "json")
    assert status.code == 0, status.err
    states = {(e["id"], env): s["state"] for e in status.json()["enhancements"]
              for env, s in e["environments"].items()}
    assert states[good, "model"] == "signed off" and states[good, "production"] == "migrated"
    assert states[bad, "model"] == "rolled-back" and states[bad, "production"] == "absent"
    assert (kept / "sample" / ".git" / "hooks" / "pre-commit").exists()
    assert json.loads((kept / "envs" / "production" / "state" / "inventory.json").read_text())


def test_demo_without_keep_says_it_is_gone(tmp_path: Path) -> None:
    result = dasct(tmp_path, "demo")
    assert result.code == 0, result.err
    assert result.out.rstrip().endswith("`dasct demo --keep DIR` keeps it.")
