"""The migration journal (dasct.migrate.journal): intent and done records around each
step, the file closed and kept as journal.last.jsonl on finish, one journal in flight at a
time, a torn last record ignored, and the DASCT_TEST_KILL_AT hook that SIGKILLs the
process right after a record is durable (what the crash-safety proof relies on)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dasct.migrate import journal


def test_records_and_finish(tmp_path: Path) -> None:
    j = journal.Journal.begin(tmp_path, trigger="E1", steps=["archive"])
    with j.step("archive"):
        pass
    records = journal.pending(tmp_path)
    assert records is not None
    assert [(r["step"], r["phase"]) for r in records] == [
        ("begin", "begin"), ("archive", "intent"), ("archive", "done")]
    assert journal.done_steps(records) == {"archive"}
    j.finish("migrated")
    assert journal.pending(tmp_path) is None
    assert (tmp_path / journal.LAST_NAME).exists()


def test_failed_step_has_intent_only(tmp_path: Path) -> None:
    j = journal.Journal.begin(tmp_path, trigger="E1")
    with pytest.raises(RuntimeError), j.step("sql-deploy:0"):
        raise RuntimeError("boom")
    records = journal.pending(tmp_path)
    assert records is not None and records[-1]["phase"] == "intent"


def test_second_begin_refused(tmp_path: Path) -> None:
    journal.Journal.begin(tmp_path, trigger="E1")
    with pytest.raises(RuntimeError, match="recover"):
        journal.Journal.begin(tmp_path, trigger="E2")


def test_torn_last_record_is_ignored(tmp_path: Path) -> None:
    journal.Journal.begin(tmp_path, trigger="E1")
    with (tmp_path / journal.JOURNAL_NAME).open("a") as f:
        f.write('{"step": "arch')
    records = journal.pending(tmp_path)
    assert records is not None and len(records) == 1


@pytest.mark.parametrize("target", ["2", "archive:intent"])
def test_kill_hook_kills_right_after_the_record(tmp_path: Path, target: str) -> None:
    code = (
        "import sys; from pathlib import Path; from dasct.migrate import journal\n"
        "j = journal.Journal.begin(Path(sys.argv[1]), trigger='E1')\n"
        "with j.step('archive'):\n    print('survived')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                          env={**__import__("os").environ, journal.KILL_VAR: target}, check=False)
    assert proc.returncode == -9
    assert b"survived" not in proc.stdout
    records = journal.pending(tmp_path)
    assert records is not None and records[-1] == {**records[-1], "step": "archive",
                                                    "phase": "intent"}
