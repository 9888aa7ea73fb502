"""Allowed and freeze windows, read in the environment's time zone; a freeze wins.

A window is `HH:MM-HH:MM` (it may cross midnight, `24:00` ends a day), optionally
preceded by days: `Mon-Fri 23:00-05:00`, `Sat,Sun 00:00-24:00` (a window that crosses
midnight belongs to the day it starts; equal ends are refused as ambiguous). A freeze is
a window or a date range: `2026-12-20..2027-01-02` (whole days, inclusive),
`2026-12-25`, or `2026-12-24T18:00..2026-12-27T06:00`. No allowed windows means any time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dasct.errors import ConfigError

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAILY = re.compile(
    r"^(?:(?P<days>[A-Za-z,\-]+)\s+)?(?P<start>\d{1,2}:\d{2})-(?P<end>\d{1,2}:\d{2})$"
)


@dataclass(frozen=True)
class Decision:
    """Whether a migration may run now, and why."""

    allowed: bool
    reason: str


def _minutes(text: str, spec: str) -> int:
    hours, minutes = (int(p) for p in text.split(":"))
    if hours > 24 or minutes > 59 or (hours == 24 and minutes):
        raise ConfigError(f"window `{spec}`: bad time {text}")
    return hours * 60 + minutes


def _days(text: str | None, spec: str) -> set[int]:
    if not text:
        return set(range(7))
    days: set[int] = set()
    for part in text.lower().split(","):
        ends = part.split("-")
        try:
            idx = [_DAYS.index(e[:3]) for e in ends]
        except ValueError:
            raise ConfigError(f"window `{spec}`: unknown day in {part!r}") from None
        if len(idx) == 1:
            days.add(idx[0])
        else:
            i = idx[0]
            while True:
                days.add(i)
                if i == idx[1]:
                    break
                i = (i + 1) % 7
    return days


def _in_daily(local: datetime, spec: str) -> bool | None:
    m = _DAILY.match(spec.strip())
    if not m:
        return None
    days = _days(m["days"], spec)
    start, end = _minutes(m["start"], spec), _minutes(m["end"], spec)
    if start == end:
        raise ConfigError(f"window `{spec}` is empty or ambiguous; "
                          "write 00:00-24:00 for a whole day")
    now = local.hour * 60 + local.minute
    today, yesterday = local.weekday(), (local.weekday() - 1) % 7
    if start < end:
        return today in days and start <= now < end
    # Crosses midnight: the evening part belongs to today, the morning part to yesterday.
    return (today in days and now >= start) or (yesterday in days and now < end)


def _point(text: str, spec: str, *, end: bool, tz: ZoneInfo) -> datetime:
    try:
        if "T" in text:
            return datetime.fromisoformat(text).replace(tzinfo=tz)
        day = date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"freeze `{spec}`: bad date {text!r}") from None
    moment = datetime.combine(day, time(0), tzinfo=tz)
    return moment + timedelta(days=1) if end else moment


def _in_range(local: datetime, spec: str, tz: ZoneInfo) -> bool:
    first, _, last = spec.strip().partition("..")
    start = _point(first, spec, end=False, tz=tz)
    stop = _point(last or first, spec, end=True, tz=tz)
    return start <= local < stop


def zone(name: str) -> ZoneInfo:
    """The ZoneInfo for a configured time zone name, or ConfigError."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"unknown time zone {name!r}") from None


def check(now: datetime, *, windows: tuple[str, ...], freeze: tuple[str, ...],
          timezone: str) -> Decision:
    """Decide whether `now` (an aware datetime) is inside an allowed window and no freeze."""
    tz = zone(timezone)
    local = now.astimezone(tz)
    stamp = local.strftime("%a %Y-%m-%d %H:%M %Z")
    for spec in freeze:
        daily = _in_daily(local, spec)
        if daily if daily is not None else _in_range(local, spec, tz):
            return Decision(False, f"{stamp} is inside freeze `{spec}`")
    if not windows:
        return Decision(True, f"{stamp}: no window configured, any time is allowed")
    for spec in windows:
        daily = _in_daily(local, spec)
        if daily is None:
            raise ConfigError(f"window `{spec}`: expected [DAYS ]HH:MM-HH:MM")
        if daily:
            return Decision(True, f"{stamp} is inside window `{spec}`")
    return Decision(False, f"{stamp} is outside every window ({', '.join(windows)})")
