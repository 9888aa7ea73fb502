"""Allowed and freeze windows, and the engine's clock rule.

A window is `HH:MM-HH:MM` (it may cross midnight, `24:00` only ends a day), optionally
preceded by days: `Mon-Fri 23:00-05:00`, `Sat,Sun 00:00-24:00` (a window that crosses
midnight belongs to the day it starts; equal ends are refused as ambiguous). A freeze is
a window or a range: `2026-12-20..2027-01-02` (whole days, inclusive), `2026-12-25`, or
`2026-12-24T18:00..2026-12-27T06:00` (the end excluded).

Windows and freeze times without an offset are read on the environment's wall clock
(its `timezone`): whenever the local clock shows a time inside them, they apply. So in a
daylight-saving change an hour the clock repeats is inside them twice, and an hour the
clock skips never is (a freeze lying wholly inside it never applies). A freeze written
with offsets (`2026-12-24T18:00Z..2026-12-24T22:00Z`, `+01:00`) is that span of real time,
in any zone; both ends carry an offset or neither does.

Every spec is parsed at configuration load (config.py calls `parse_window` and
`parse_freeze` per entry), so a bad one is refused before any trigger is due.

No window means any time, except for an environment promoted into (production, gated
by model: `check(require_window=...)`), which then runs only on an explicit `--now`.

The clock rule for `--at` (`instant`): an ISO 8601 time, UTC unless it carries an offset.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dasct.config_base import show
from dasct.errors import ConfigError

T = TypeVar("T")
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAILY = re.compile(
    r"(?:(?P<days>[A-Za-z,-]+)\s+)?(?P<start>[0-9]{1,2}:[0-9]{2})-(?P<end>[0-9]{1,2}:[0-9]{2})",
    re.ASCII,
)


@dataclass(frozen=True)
class Decision:
    """Whether a migration may run now, and why."""

    allowed: bool
    reason: str


@dataclass(frozen=True)
class Daily:
    """A time of day on some weekdays, in minutes since local midnight."""

    days: frozenset[int]
    start: int
    end: int

    def contains(self, now: datetime, local: datetime) -> bool:
        """Whether the local wall-clock time of the instant now is inside."""
        minute = local.hour * 60 + local.minute
        today, yesterday = local.weekday(), (local.weekday() - 1) % 7
        if self.start < self.end:
            return today in self.days and self.start <= minute < self.end
        # Crosses midnight: the evening part belongs to today, the morning part to yesterday.
        return (today in self.days and minute >= self.start) or (
            yesterday in self.days and minute < self.end)


@dataclass(frozen=True)
class Span:
    """From start up to (not including) stop: both naive (wall clock) or both aware."""

    start: datetime
    stop: datetime

    def contains(self, now: datetime, local: datetime) -> bool:
        """Whether the instant now (aware) and its local wall-clock time are inside."""
        if self.start.tzinfo is not None:
            return self.start <= now < self.stop
        return self.start <= local.replace(tzinfo=None) < self.stop


def _minutes(text: str) -> int:
    hours, minutes = (int(p) for p in text.split(":"))
    if hours > 24 or minutes > 59 or (hours == 24 and minutes):
        raise ValueError(f"bad time {text} (00:00 to 24:00)")
    return hours * 60 + minutes


def _day(name: str) -> int:
    if name in _DAYS:
        return _DAYS.index(name)
    if name in _FULL:
        return _FULL.index(name)
    raise ValueError(f"unknown day {show(name)} (Mon..Sun)")


def _days(text: str | None) -> frozenset[int]:
    if not text:
        return frozenset(range(7))
    days: set[int] = set()
    for part in text.lower().split(","):
        ends = part.split("-")
        if len(ends) > 2:
            raise ValueError(f"{show(part)} is not a day or a range of two days")
        first, last = (_day(e) for e in (ends[0], ends[-1]))
        i = first
        days.add(i)
        while i != last:
            i = (i + 1) % 7
            days.add(i)
    return frozenset(days)


def _daily(spec: str) -> Daily | None:
    m = _DAILY.fullmatch(spec.strip())
    if not m:
        return None
    start, end = _minutes(m["start"]), _minutes(m["end"])
    if start == 24 * 60:
        raise ValueError("24:00 only ends a window; start at 00:00")
    if start == end:
        raise ValueError("empty or ambiguous; write 00:00-24:00 for a whole day")
    return Daily(_days(m["days"]), start, end)


def parse_window(spec: str) -> Daily:
    """Parse an allowed window; ValueError says what is wrong."""
    parsed = _daily(spec)
    if parsed is None:
        raise ValueError(f"{show(spec)} is not a window ([DAYS ]HH:MM-HH:MM)")
    return parsed


def moment(text: str) -> datetime:
    """An ISO 8601 date and time, aware when it carries an offset (`Z`, `+01:00`)."""
    t = text.strip()
    if t[-1:] in ("Z", "z"):
        t = t[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(t)
    except ValueError:
        raise ValueError(f"bad time {show(text)} (e.g. 2026-12-24T18:00, "
                         "2026-12-24T18:00Z)") from None


def _point(text: str, *, end: bool) -> datetime:
    if "T" in text or " " in text.strip():
        return moment(text)
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"bad date {show(text)} (e.g. 2026-12-24)") from None
    midnight = datetime.combine(day, time(0))
    if not end:
        return midnight
    if day == date.max:
        raise ValueError(f"bad date {show(text)}: no day follows it")
    return midnight + timedelta(days=1)


def parse_freeze(spec: str) -> Daily | Span:
    """Parse a freeze (a window, a date, or a range); ValueError says what is wrong."""
    daily = _daily(spec)
    if daily is not None:
        return daily
    first, dots, last = spec.strip().partition("..")
    if dots and not (first and last):
        raise ValueError(f"{show(spec)}: a range needs both ends (START..END)")
    if not dots and ("T" in first or " " in first):
        raise ValueError(f"{show(spec)} is a single moment; freeze a date or a range")
    start = _point(first, end=False)
    stop = _point(last or first, end=True)
    if (start.tzinfo is None) != (stop.tzinfo is None):
        raise ValueError(f"{show(spec)}: give both ends an offset or neither")
    if start.tzinfo is not None:
        try:  # in UTC, so that comparing with any instant cannot overflow
            start, stop = start.astimezone(timezone.utc), stop.astimezone(timezone.utc)
        except OverflowError:
            raise ValueError(f"{show(spec)}: out of range in UTC") from None
    if stop <= start:
        raise ValueError(f"{show(spec)} ends before it starts, so it would never freeze")
    return Span(start, stop)


def zone(name: str) -> ZoneInfo:
    """The ZoneInfo for a configured time zone name; ValueError when zoneinfo has none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # OSError: a name that is a directory of the zone database, or too long a path.
        raise ValueError(f"unknown time zone {show(name)}") from None


def instant(text: str) -> datetime:
    """The clock rule of `--at`: an ISO 8601 time, UTC unless it carries an offset."""
    when = moment(text)
    if when.tzinfo is None:
        return when.replace(tzinfo=timezone.utc)
    try:
        return when.astimezone(timezone.utc)
    except OverflowError:
        raise ValueError(f"bad time {show(text)}: out of range in UTC") from None


def _parsed(parser: Callable[[str], T], kind: str, spec: str) -> T:
    try:
        return parser(spec)
    except ValueError as exc:
        raise ConfigError(f"{kind} {show(spec)}: {exc}") from None


def check(now: datetime, *, windows: tuple[str, ...], freeze: tuple[str, ...],
          timezone: str, require_window: str | None = None) -> Decision:
    """Decide whether `now` (an aware datetime) is inside an allowed window and no freeze.

    With require_window (the environment's name: one promoted into, like production), no
    configured window means "not without --now" rather than "any time".
    config.load already refused bad specs; one built by hand is a ConfigError here.
    """
    try:
        tz = zone(timezone)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    frozen = [(spec, _parsed(parse_freeze, "freeze", spec)) for spec in freeze]
    allowed = [(spec, _parsed(parse_window, "window", spec)) for spec in windows]
    local = now.astimezone(tz)
    stamp = local.strftime("%a %Y-%m-%d %H:%M %Z")
    for spec, f in frozen:
        if f.contains(now, local):
            return Decision(False, f"{stamp} is inside freeze `{spec}`")
    if not allowed and require_window:
        return Decision(False, f"{stamp}: {require_window} has no window configured, so it "
                        "runs only when asked explicitly")
    if not allowed:
        return Decision(True, f"{stamp}: no window configured, any time is allowed")
    for spec, w in allowed:
        if w.contains(now, local):
            return Decision(True, f"{stamp} is inside window `{spec}`")
    return Decision(False, f"{stamp} is outside every window ({', '.join(windows)})")

