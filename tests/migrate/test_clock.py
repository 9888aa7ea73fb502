"""The engine's clock (item 22): one rule for every `--at` (UTC unless it carries an offset,
whatever the machine's time zone), and a simulated time never writes lasting state: a
trigger that expired only on the simulated clock is reported, not recorded, and a real
run afterwards still migrates it; a trigger expired on the real clock is recorded."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from engine_kit import cli, make_env, stage
from hypothesis import given
from hypothesis import strategies as st

from dasct.commands.migrate import _when
from dasct.errors import DasctError
from dasct.migrate import engine, inventory, windows
from dasct.migrate import trigger as trig
from dasct.migrate.create import parse_time


@pytest.fixture
def new_york(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The machine's local time zone is America/New_York (UTC-5 in November)."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("new_york")
def test_at_without_an_offset_is_utc_for_both_commands() -> None:
    utc = datetime(2026, 11, 24, 1, 0, tzinfo=timezone.utc)
    assert _when("2026-11-24T01:00") == utc  # migrate run --at (was 06:00Z here)
    assert parse_time("2026-11-24T01:00") == utc  # trigger create --at
    assert _when("2026-11-24T02:00+01:00") == utc == _when("2026-11-24T01:00Z")


@pytest.mark.parametrize("bad", ["tonight", "2026-11-24T25:00", "9999-12-31T23:00-05:00", ""])
def test_a_bad_at_is_one_line(bad: str) -> None:
    with pytest.raises(DasctError, match="--at: not a time"):
        parse_time(bad or " ")


OFFSETS = {"": 0, "Z": 0, "+00:00": 0, "+05:30": 330, "-08:00": -480}


@given(st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9998, 12, 31)),
       st.sampled_from(sorted(OFFSETS)))
def test_the_clock_rule(moment: datetime, suffix: str) -> None:
    text = moment.replace(microsecond=0).isoformat() + suffix
    expected = (moment.replace(microsecond=0, tzinfo=timezone.utc)
                - timedelta(minutes=OFFSETS[suffix]))
    assert windows.instant(text) == expected


def _pending_trigger(tmp: Path) -> tuple[Path, datetime]:
    subprocess.run(["git", "init", "-q", str(tmp)], check=True)
    env = make_env(tmp)
    real = datetime.now(timezone.utc).replace(microsecond=0)
    stage(env, "E1", files=[("add", "x.txt", b"x", None)], not_before=real - timedelta(hours=1),
          expires=real + timedelta(days=2))
    return tmp, real


def test_a_future_at_leaves_a_real_pending_trigger_pending(tmp_path: Path) -> None:
    repo, real = _pending_trigger(tmp_path)
    future = trig.format_time(real + timedelta(days=30))
    simulated = cli(repo, "migrate", "run", "--env", "model", "--now", "--at", future)
    assert simulated.returncode == 1, simulated.stderr  # it did not run: someone looks
    env = make_env(tmp_path)
    assert inventory.outcome(env.state_dir, "E1") is None
    assert [p.stem for p in trig.pending(env.staging, "model")] == ["E1"]
    assert "expired at the simulated time, not run, not recorded: E1" in simulated.stdout
    real_run = cli(repo, "migrate", "run", "--env", "model", "--now")
    assert real_run.returncode == 0, real_run.stdout + real_run.stderr
    assert "migrated E1" in real_run.stdout
    assert (env.root / "x.txt").read_bytes() == b"x"


def test_a_trigger_expired_on_the_real_clock_is_recorded_at_any_simulated_time(
        tmp_path: Path) -> None:
    env = make_env(tmp_path)
    real = datetime.now(timezone.utc).replace(microsecond=0)
    stage(env, "OLD", files=[("add", "x.txt", b"x", None)], not_before=real - timedelta(days=3),
          expires=real - timedelta(days=1))
    result = engine.run(env, now=real + timedelta(days=30), write=lambda _: None)
    assert result.stats.expired == 1
    assert inventory.outcome(env.state_dir, "OLD")["outcome"] == "expired"  # type: ignore[index]
    assert trig.pending(env.staging, "model") == []
