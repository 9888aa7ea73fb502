"""When a check is due and at which moment it (and a notice) happens: pure functions."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

from dasct.agent import schedule
from dasct.agent.state import State, Waiting
from dasct.agentconfig import AgentConfig

TZ = timezone(timedelta(hours=2))
NOW = datetime(2026, 12, 3, 10, 0, tzinfo=TZ)
T = NOW.timestamp()
HOUR = 3600.0


def cfg(**kw: object) -> AgentConfig:
    return replace(AgentConfig(environment="production"), **kw)  # type: ignore[arg-type]


def test_never_checked_is_due() -> None:
    assert schedule.due(State(), cfg(), T) == "never checked"


def test_uses_before_time() -> None:
    s = State(uses=4, last_check=T - HOUR)
    assert schedule.due(s, cfg(uses=5), T) is None
    assert "5 use(s)" in str(schedule.due(replace(s, uses=5), cfg(uses=5), T))


def test_time_before_uses() -> None:
    s = State(uses=1, last_check=T - 25 * HOUR)
    assert "hour(s) since the last check" in str(schedule.due(s, cfg(uses=5, every_hours=24), T))
    assert schedule.due(replace(s, last_check=T - 23 * HOUR), cfg(every_hours=24), T) is None


def test_time_counts_from_the_first_use_when_never_checked() -> None:
    s = State(uses=1, since=T - 2 * HOUR)
    assert schedule.due(s, cfg(every_hours=1), T) is not None
    assert schedule.due(s, cfg(every_hours=3), T) is None


def test_zero_turns_a_criterion_off() -> None:
    s = State(uses=1000, last_check=T - 1000 * HOUR)
    assert schedule.due(s, cfg(uses=0, every_hours=0), T) is None
    assert schedule.due(s, cfg(uses=0, every_hours=24), T) is not None
    assert schedule.due(s, cfg(uses=5, every_hours=0), T) is not None


def test_each_moment() -> None:
    assert schedule.moment(cfg(when=("startup",)), "startup", NOW, None) == "at startup"
    assert schedule.moment(cfg(when=("startup",)), "shutdown", NOW, None) is None
    assert schedule.moment(cfg(when=("shutdown",)), "shutdown", NOW, None) == "at shutdown"
    assert schedule.moment(cfg(when=("shutdown",)), "startup", NOW, None) is None
    assert schedule.moment(cfg(when=("uses",)), "startup", NOW, None) == "at a use"
    assert schedule.moment(cfg(when=("uses",)), "shutdown", NOW, None) is None


def test_time_of_day_opens_once_per_passing() -> None:
    c = cfg(when=("03:00",))
    three = NOW.replace(hour=3).timestamp()
    assert schedule.moment(c, "startup", NOW, three - HOUR) == "after 03:00"  # before 03:00
    assert schedule.moment(c, "shutdown", NOW, three + HOUR) is None  # done since 03:00
    # At 02:00 the latest 03:00 was yesterday's.
    early = NOW.replace(hour=2)
    assert schedule.moment(c, "startup", early, three - 25 * HOUR) == "after 03:00"
    assert schedule.moment(c, "startup", early, three - 20 * HOUR) is None
    assert schedule.last_occurrence("03:00", early) == NOW.replace(hour=3) - timedelta(days=1)


def test_check_now_needs_due_and_moment() -> None:
    s = State(uses=5, last_check=T - HOUR)
    assert schedule.check_now(s, cfg(when=("shutdown",)), "startup", NOW) is None
    assert "at shutdown" in str(schedule.check_now(s, cfg(when=("shutdown",)), "shutdown", NOW))
    assert schedule.check_now(replace(s, uses=1), cfg(), "startup", NOW) is None
    assert "at a use" in str(schedule.check_now(s, cfg(), "startup", NOW))


def test_a_notice_once_per_release_at_its_moment() -> None:
    w = Waiting({"version": 4}, "/x", T - HOUR)
    s = State(installed=3, waiting=w, noticed=3)
    assert schedule.notice_now(s, cfg(when=("shutdown",)), "startup", NOW) is False
    assert schedule.notice_now(s, cfg(when=("shutdown",)), "shutdown", NOW) is True
    assert schedule.notice_now(s, cfg(), None, NOW) is True  # asked for
    assert schedule.notice_now(replace(s, noticed=4), cfg(), "startup", NOW) is False
    assert schedule.notice_now(State(), cfg(), "startup", NOW) is False
    # A time of day: only once that time passed after the download.
    c = cfg(when=("12:00",))
    assert schedule.notice_now(s, c, "startup", NOW) is False
    assert schedule.notice_now(s, c, "startup", NOW.replace(hour=12, minute=5)) is True


def test_next_check_says_whichever_first() -> None:
    s = State(uses=2, last_check=T)
    text = schedule.next_check(s, cfg(uses=5, every_hours=24), T)
    assert "after 3 more use(s)" in text and "whichever comes first" in text
    assert schedule.next_check(s, cfg(uses=0, every_hours=0), T).startswith("never")
    assert schedule.next_check(State(), cfg(), T).startswith("due now")
