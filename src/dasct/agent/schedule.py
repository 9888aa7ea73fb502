"""When the agent looks for a newer release, and when it tells the user of one (example 4).

Two questions, both pure functions of the state, the `[agent]` settings and the time:

- *due*: is a check warranted? After `uses` uses or `every_hours` hours since the last
  check (or since counting began), whichever comes first.
- *moment*: may it happen now? `when` lists the moments: `startup` (the application
  starts: `dasct agent used`, or `dasct agent run` before its command), `shutdown`
  (`dasct agent run` after its command), `uses` (at any use, as soon as the count is
  reached), `HH:MM` (the first time the agent runs at or after that time of day, local
  time). A due check waits for the next moment; so does the notice of a downloaded release.

`dasct agent check` (cron, or a person) needs no moment: it checks when due, or with
--now whatever the schedule.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from dasct.agent.state import State
from dasct.agentconfig import AgentConfig

STARTUP = "startup"
SHUTDOWN = "shutdown"
EVENTS = (STARTUP, SHUTDOWN)


def due(state: State, cfg: AgentConfig, now: float) -> str | None:
    """Why a check is due now (uses reached, time passed, never checked), or None."""
    if cfg.uses and state.uses >= cfg.uses:
        return f"{state.uses} use(s) since the last check (every {cfg.uses})"
    since = state.last_check if state.last_check is not None else state.since
    if since is None:
        return "never checked"
    hours = (now - since) / 3600.0
    if cfg.every_hours and hours >= cfg.every_hours:
        return f"{hours:.1f} hour(s) since the last check (every {cfg.every_hours:g})"
    return None


def last_occurrence(hhmm: str, now: datetime) -> datetime:
    """The latest time of day hhmm at or before now, in now's time zone."""
    hour, minute = (int(p) for p in hhmm.split(":"))
    at = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return at if at <= now else at - timedelta(days=1)


def moment(cfg: AgentConfig, event: str, now: datetime, after: float | None) -> str | None:
    """Which `when` setting lets a check or notice happen at event (startup, shutdown) at
    now, or None. after: when the thing last happened (the last check, or the download a
    notice is about): a time of day opens the moment once per passing of that time."""
    for w in cfg.when:
        if w == STARTUP and event == STARTUP:
            return "at startup"
        if w == SHUTDOWN and event == SHUTDOWN:
            return "at shutdown"
        if w == "uses" and event == STARTUP:
            return "at a use"
        if ":" in w:
            at = last_occurrence(w, now)
            if after is None or at.timestamp() > after:
                return f"after {w}"
    return None


def check_now(state: State, cfg: AgentConfig, event: str, now: datetime) -> str | None:
    """Why a check happens at event now (it is due, and the moment allows it), or None."""
    why = due(state, cfg, now.timestamp())
    if why is None:
        return None
    last = state.last_check if state.last_check is not None else state.since
    when = moment(cfg, event, now, last)
    return None if when is None else f"{why}; {when}"


def notice_now(state: State, cfg: AgentConfig, event: str | None, now: datetime) -> bool:
    """True when the user is to be told of the waiting release now: one not noticed yet,
    at a moment `when` allows (event None: asked for, as by `dasct agent status`)."""
    w = state.waiting
    if w is None or w.version <= state.noticed:
        return False
    return event is None or moment(cfg, event, now, w.downloaded_at) is not None


def next_check(state: State, cfg: AgentConfig, now: float) -> str:
    """When the next check is due, for people."""
    why = due(state, cfg, now)
    moments = ", ".join(cfg.when)
    if why is not None:
        return f"due now ({why}); happens {moments}"
    parts = []
    if cfg.uses:
        parts.append(f"after {cfg.uses - state.uses} more use(s)")
    since = state.last_check if state.last_check is not None else state.since
    if cfg.every_hours and since is not None:
        at = datetime.fromtimestamp(since + cfg.every_hours * 3600).astimezone()
        parts.append(f"at {at.isoformat(timespec='minutes')}")
    if not parts:
        return "never (uses = 0 and every_hours = 0): only `dasct agent check --now`"
    return " or ".join(parts) + (", whichever comes first" if len(parts) > 1 else "") + (
        f"; happens {moments}")
