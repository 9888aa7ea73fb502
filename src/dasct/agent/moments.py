"""The agent on the application's own path: a use counted, and at the moments `[agent]
when` allows (a startup, a shutdown) the background check started, a waiting release
told of, an ended uninstall period recalled. `dasct agent used` and `run` call it
(commands/agent.py); it imports nothing of TUF unless a check is due.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from dasct.agent import state as st
from dasct.agent.local import Local, locate

Say = Callable[[str], None]  # where a line for the person goes (stderr)


def now() -> datetime:
    return datetime.now().astimezone()


def use(home: Path, app: str, say: Say, event: str = "startup") -> Local:
    """Count one use of the application app (a startup) and act on the moment."""
    local = locate(home)
    at = time.time()
    with st.update(local.state_path) as change:
        s = change.state
        change.set(uses=s.uses + 1, since=at if s.since is None else s.since)
    moment(local, event, say)
    return local


def moment(local: Local, event: str, say: Say) -> None:
    """At a startup or shutdown: start a due check, tell of a waiting release, remind of
    an ended uninstall period."""
    from dasct.agent import schedule

    s, at = local.load(), now()
    if schedule.check_now(s, local.cfg, event, at):
        from dasct.agent import download

        download.start(local)
    if schedule.notice_now(s, local.cfg, event, at):
        tell(local, say)
    remind(local, s, say)


def tell(local: Local, say: Say) -> None:
    """Tell of the release waiting, once per version."""
    from dasct.agent import notice

    with st.update(local.state_path) as change:
        s = change.state
        if s.waiting is None or s.waiting.version <= s.noticed:
            return
        notice.tell(local, s, say)
        change.set(noticed=s.waiting.version)


def remind(local: Local, s: st.State, say: Say) -> None:
    """Remind of each uninstall period that has ended."""
    at = time.time()
    if not any(w.ends <= at for w in s.windows):
        return  # the common case imports nothing more (review imports the engine)
    from dasct.agent import review

    for w in review.ended(s, at):
        say(f"dasct agent: the uninstall period of version {w.version} has ended: "
            f"`dasct agent review --home {local.home}` (uninstall, keep, keep for good)")
