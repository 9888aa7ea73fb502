"""Allowed and freeze windows (dasct.migrate.windows): windows read in the environment's
time zone, crossing midnight and belonging to their start day, weekday windows; freezes
by date range, datetime range and time of day; bad specs and unknown zones as config
errors; and properties: a freeze always wins, a midnight window is the union of its two
halves."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from dasct.errors import ConfigError
from dasct.migrate import windows


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def test_no_windows_means_any_time() -> None:
    assert windows.check(at("2026-11-23T12:00"), windows=(), freeze=(), timezone="UTC").allowed


@pytest.mark.parametrize(("when", "allowed"), [
    ("2026-11-23T23:30", True), ("2026-11-24T04:59", True), ("2026-11-24T05:00", False),
    ("2026-11-23T12:00", False), ("2026-11-23T22:59", False),
])
def test_window_across_midnight(when: str, allowed: bool) -> None:
    d = windows.check(at(when), windows=("23:00-05:00",), freeze=(), timezone="UTC")
    assert d.allowed is allowed, d.reason


def test_window_read_in_its_time_zone() -> None:
    # 22:30 UTC is 23:30 in Paris (CET, UTC+1 in November).
    d = windows.check(at("2026-11-23T22:30"), windows=("23:00-05:00",), freeze=(),
                      timezone="Europe/Paris")
    assert d.allowed and "CET" in d.reason


def test_weekday_window_belongs_to_its_start_day() -> None:
    spec = ("Fri 22:00-06:00",)
    assert windows.check(at("2026-11-27T23:00"), windows=spec, freeze=(), timezone="UTC").allowed
    assert windows.check(at("2026-11-28T05:00"), windows=spec, freeze=(), timezone="UTC").allowed
    assert not windows.check(at("2026-11-29T05:00"), windows=spec, freeze=(),
                             timezone="UTC").allowed
    weekdays = ("Mon-Fri 00:00-24:00",)
    assert not windows.check(at("2026-11-29T12:00"), windows=weekdays, freeze=(),
                             timezone="UTC").allowed


def test_freeze_wins_over_window() -> None:
    d = windows.check(at("2026-12-24T23:30"), windows=("23:00-05:00",),
                      freeze=("2026-12-20..2027-01-02",), timezone="UTC")
    assert not d.allowed and "freeze" in d.reason
    d = windows.check(at("2027-01-03T00:30"), windows=("23:00-05:00",),
                      freeze=("2026-12-20..2027-01-02",), timezone="UTC")
    assert d.allowed


def test_freeze_datetime_range_and_daily_freeze() -> None:
    spec = ("2026-12-24T18:00..2026-12-24T20:00",)
    assert not windows.check(at("2026-12-24T19:00"), windows=(), freeze=spec,
                             timezone="UTC").allowed
    assert windows.check(at("2026-12-24T20:00"), windows=(), freeze=spec, timezone="UTC").allowed
    assert not windows.check(at("2026-11-23T00:10"), windows=(), freeze=("00:00-00:30",),
                             timezone="UTC").allowed


@pytest.mark.parametrize("bad", ["25:00-01:00", "Moo 01:00-02:00", "soon", "03:00-03:00"])
def test_bad_specs_are_config_errors(bad: str) -> None:
    with pytest.raises(ConfigError):
        windows.check(at("2026-11-23T00:00"), windows=(bad,), freeze=(), timezone="UTC")


def test_unknown_time_zone() -> None:
    with pytest.raises(ConfigError, match="time zone"):
        windows.check(at("2026-11-23T00:00"), windows=(), freeze=(), timezone="Mars/Olympus")


MOMENTS = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 12, 31),
                       timezones=st.just(timezone.utc))
CLOCK = st.tuples(st.integers(0, 23), st.sampled_from([0, 15, 30, 45])).map(
    lambda hm: f"{hm[0]:02d}:{hm[1]:02d}")
ZONES = st.sampled_from(["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata"])


@given(MOMENTS, CLOCK, CLOCK, ZONES)
def test_a_freeze_always_wins(now: datetime, start: str, end: str, zone: str) -> None:
    assume(start != end)
    d = windows.check(now, windows=(f"{start}-{end}", "00:00-24:00"),
                      freeze=(f"{start}-{end}",), timezone=zone)
    inside_freeze = windows.check(now, windows=(f"{start}-{end}",), freeze=(), timezone=zone)
    assert d.allowed is (not inside_freeze.allowed)


@given(MOMENTS, CLOCK, CLOCK, ZONES)
def test_midnight_window_is_the_union_of_its_two_halves(now: datetime, start: str, end: str,
                                                       zone: str) -> None:
    if start <= end:
        return
    whole = windows.check(now, windows=(f"{start}-{end}",), freeze=(), timezone=zone)
    parts = (f"{start}-24:00",) + ((f"00:00-{end}",) if end != "00:00" else ())
    halves = windows.check(now, windows=parts, freeze=(), timezone=zone)
    assert whole.allowed is halves.allowed
    later = windows.check(now + timedelta(days=7), windows=(f"{start}-{end}",), freeze=(),
                          timezone="UTC")
    assert later.allowed is windows.check(now, windows=(f"{start}-{end}",), freeze=(),
                                          timezone="UTC").allowed
