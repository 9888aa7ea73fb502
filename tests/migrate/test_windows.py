"""Allowed and freeze windows (dasct.migrate.windows): windows read in the environment's
time zone, crossing midnight and belonging to their start day, weekday windows; freezes
by date range, datetime range and time of day; a freeze written with an offset is that
span of real time in any zone; a naive one is read on the wall clock through daylight
saving changes (a repeated hour frozen twice, a skipped hour never); reversed ranges,
malformed days and every other bad spec refused by the parsers config.load calls; and
properties: a freeze always wins, a midnight window is the union of its two halves, an
offset freeze does not depend on the zone."""

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


def test_a_freeze_with_an_offset_is_real_time_in_any_zone() -> None:
    # The case: 21:30Z is 22:30 CET, inside the 18:00Z-22:00Z freeze in real time.
    spec = ("2026-12-24T18:00Z..2026-12-24T22:00Z",)
    d = windows.check(at("2026-12-24T21:30"), windows=("22:00-23:00",), freeze=spec,
                      timezone="Europe/Berlin")
    assert not d.allowed and "freeze" in d.reason, d.reason
    assert windows.check(at("2026-12-24T22:00"), windows=(), freeze=spec,
                         timezone="Europe/Berlin").allowed
    plus_one = ("2026-12-24T19:00+01:00..2026-12-24T23:00+01:00",)
    assert not windows.check(at("2026-12-24T21:30"), windows=(), freeze=plus_one,
                             timezone="America/New_York").allowed


def test_a_naive_freeze_is_read_in_the_environment_zone() -> None:
    spec = ("2026-12-24T18:00..2026-12-24T22:00",)
    assert windows.check(at("2026-12-24T21:30"), windows=(), freeze=spec,  # 22:30 CET
                         timezone="Europe/Berlin").allowed
    assert not windows.check(at("2026-12-24T20:30"), windows=(), freeze=spec,  # 21:30 CET
                             timezone="Europe/Berlin").allowed


def _frozen_minutes(spec: str, first: str, last: str) -> list[str]:
    """The UTC minutes from first up to last at which the Berlin freeze spec applies."""
    out, now = [], at(first)
    while now < at(last):
        if not windows.check(now, windows=(), freeze=(spec,), timezone="Europe/Berlin").allowed:
            out.append(now.strftime("%H:%M"))
        now += timedelta(minutes=30)
    return out


def test_a_naive_freeze_through_daylight_saving_follows_the_wall_clock() -> None:
    # 2026-10-25 in Berlin: 03:00 CEST (01:00Z) becomes 02:00 CET, 02:xx happens twice.
    assert _frozen_minutes("2026-10-25T02:00..2026-10-25T03:00",
                           "2026-10-24T23:00", "2026-10-25T03:00") == [
        "00:00", "00:30", "01:00", "01:30"]  # 02:00, 02:30 CEST, then 02:00, 02:30 CET
    # 2026-03-29: 02:00 CET (01:00Z) becomes 03:00 CEST, 02:xx never happens.
    assert _frozen_minutes("2026-03-29T02:00..2026-03-29T03:00",
                           "2026-03-28T23:00", "2026-03-29T03:00") == []
    # A freeze spanning the change covers what the wall clock shows: 01:00-04:00 is four
    # real hours in October and two in March.
    assert len(_frozen_minutes("2026-10-25T01:00..2026-10-25T04:00",
                               "2026-10-24T22:00", "2026-10-25T05:00")) == 8
    assert len(_frozen_minutes("2026-03-29T01:00..2026-03-29T04:00",
                               "2026-03-28T22:00", "2026-03-29T05:00")) == 4


def test_a_freeze_with_offsets_through_daylight_saving_is_exact() -> None:
    # The second 02:00-03:00 of 2026-10-25 only (CET, +01:00): 01:00Z to 02:00Z.
    assert _frozen_minutes("2026-10-25T02:00+01:00..2026-10-25T03:00+01:00",
                           "2026-10-24T23:00", "2026-10-25T03:00") == ["01:00", "01:30"]


@pytest.mark.parametrize(("spec", "problem"), [
    ("2027-01-02..2026-12-20", "ends before it starts"),
    ("2026-12-24T22:00..2026-12-24T18:00", "ends before it starts"),
    ("2026-12-24T18:00Z..2026-12-24T18:00Z", "ends before it starts"),
    ("2026-12-24T18:00..2026-12-24T22:00Z", "both ends an offset or neither"),
    ("2026-12-24T18:00", "single moment"),
    ("2026-12-24..", "both ends"),
    ("..2026-12-24", "both ends"),
    ("2026-13-01", "bad date"),
    ("2026-12-24T25:00..2026-12-25", "bad time"),
    ("9999-12-31", "no day follows"),
    ("Mon-Tue-Wed 01:00-02:00", "not a day or a range of two days"),
    ("Monkey 01:00-02:00", "unknown day"),
    ("Mon,,Tue 01:00-02:00", "unknown day"),
    ("24:00-02:00", "24:00 only ends"),
    ("01:00-01:60", "bad time"),
])
def test_bad_freezes_are_refused_by_the_parser(spec: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        windows.parse_freeze(spec)


@pytest.mark.parametrize("spec", [
    "Mon-Tue-Wed 01:00-02:00", "23:00-05:00x", "2026-12-24", "Monday- 01:00-02:00",
    "\u0661\u0662:\u0660\u0660-\u0661\u0663:\u0660\u0660",  # Arabic-Indic digits
])
def test_bad_windows_are_refused_by_the_parser(spec: str) -> None:
    with pytest.raises(ValueError):
        windows.parse_window(spec)


@pytest.mark.parametrize("spec", ["monday-friday 23:00-05:00", "Sat,Sun 00:00-24:00",
                                  "Fri-Mon 22:00-06:00", " 07:00-08:00 "])
def test_good_windows_parse(spec: str) -> None:
    assert windows.parse_window(spec).days


def test_a_bad_spec_built_by_hand_names_itself() -> None:
    with pytest.raises(ConfigError, match=r"^freeze '2027-01-02\.\.2026-12-20': .* ends before"):
        windows.check(at("2026-11-23T00:00"), windows=(), freeze=("2027-01-02..2026-12-20",),
                      timezone="UTC")


def test_unknown_time_zone() -> None:
    with pytest.raises(ConfigError, match="time zone"):
        windows.check(at("2026-11-23T00:00"), windows=(), freeze=(), timezone="Mars/Olympus")


MOMENTS = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 12, 31),
                       timezones=st.just(timezone.utc))
CLOCK = st.tuples(st.integers(0, 23), st.sampled_from([0, 15, 30, 45])).map(
    lambda hm: f"{hm[0]:02d}:{hm[1]:02d}")
ZONES = st.sampled_from(["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata"])


@given(MOMENTS, MOMENTS, MOMENTS, ZONES)
def test_an_offset_freeze_is_the_same_span_in_every_zone(now: datetime, a: datetime,
                                                         b: datetime, zone: str) -> None:
    assume(a != b)
    start, stop = min(a, b), max(a, b)
    spec = f"{start.isoformat()}..{stop.astimezone(windows.zone(zone)).isoformat()}"
    d = windows.check(now, windows=(), freeze=(spec,), timezone=zone)
    assert d.allowed is not (start <= now < stop), (spec, d.reason)


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
