"""Taking an upgrade back (example 5): the uninstall windows and what ends them.

An install with an uninstall period records a window: the triggers the engine migrated
for that release, the version before it and when the period ends. When it ends the agent
asks (`dasct agent review`): uninstall now, keep with a new period, or keep for good.

- *uninstall*: the engine's revert (dasct.migrate.revert, archived, journaled, rolled
  back on failure) of the release's triggers, newest first, back to the exact previous
  version. One release at a time, newest first: only the installed version can be taken
  back. The version is then never offered again (a newer one is).
- *keep for a period*: the window ends later (`dasct agent keep --for D VERSION` too).
- *keep for good*: the window is forgotten and the archives of its triggers are deleted
  (archive.remove, an `archive-deleted` audit record each): the uninstall version is gone.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from dasct.agent import AgentError, history
from dasct.agent import state as st
from dasct.agent.install import forget_archives
from dasct.agent.local import Local
from dasct.errors import DasctError

Write = Callable[[str], None]


def ended(state: st.State, now: float) -> list[st.Window]:
    """The windows whose period has ended, newest version first."""
    return sorted((w for w in state.windows if w.ends <= now), key=lambda w: -w.version)


def window(state: st.State, version: int) -> st.Window:
    """The uninstall window of version; AgentError when there is none."""
    for w in state.windows:
        if w.version == version:
            return w
    known = ", ".join(str(w.version) for w in state.windows) or "none"
    raise AgentError(f"version {version} has no uninstall window (windows: {known})")


def uninstall(local: Local, version: int, *, write: Write = print) -> None:
    """Take version back to the version before it, through the engine's revert."""
    from dasct.migrate import inventory
    from dasct.migrate.revert import revert

    state = local.load()
    w = window(state, version)
    if state.installed != version:
        raise AgentError(f"version {version} is not the installed version ({state.installed} "
                         "is): uninstall goes back one release at a time, newest first")
    env = local.env
    reverted: list[str] = []
    for tid in reversed(w.triggers):
        dep = inventory.load(env.state_dir)["deployments"].get(tid)
        if dep is None or dep["status"] != "deployed":
            continue  # a cascade already took it back
        try:
            result = revert(env, tid, cascade=True, write=write)
            stats = result.stats
            why = "" if not (stats.rolled_back or stats.escalated) else (
                f"the revert of {tid} failed and was "
                + ("escalated" if stats.escalated else "rolled back"))
        except DasctError as exc:
            why = str(exc)
        if why:
            history.add(local.state_dir, history.UNINSTALL_FAILED, version, reason=why,
                        reverted=reverted)
            raise AgentError(f"version {version} was not uninstalled: {why}"
                             + (f" (already reverted: {', '.join(reverted)})" if reverted
                                else ""))
        reverted += result.migrated
    with st.update(local.state_path) as change:
        s = change.state
        change.set(installed=w.previous, windows=st.without_window(s, version),
                   declined=tuple(sorted({*s.declined, version})))
    history.add(local.state_dir, history.UNINSTALLED, version, previous=w.previous,
                reverted=reverted)
    write(f"uninstalled version {version}: version {w.previous} is back "
          f"({len(reverted)} trigger(s) reverted); version {version} is not offered again")


def keep(local: Local, version: int, seconds: float, *, now: float | None = None,
         write: Write = print) -> st.Window:
    """Keep version, with the ability to uninstall it for seconds from now."""
    at = time.time() if now is None else now
    with st.update(local.state_path) as change:
        w = window(change.state, version)
        new = st.Window(w.version, w.triggers, w.previous, w.installed_at, at + seconds)
        change.set(windows=st.with_window(change.state, new))
    until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(new.ends))
    history.add(local.state_dir, history.KEPT, version, now=at, uninstall_until=until)
    write(f"kept version {version}; it can be taken back until {until}")
    return new


def keep_forever(local: Local, version: int, *, write: Write = print) -> list[str]:
    """Keep version for good: forget its window and delete its uninstall version."""
    with st.update(local.state_path) as change:
        w = window(change.state, version)
        change.set(windows=st.without_window(change.state, version))
    gone = forget_archives(local, w.triggers)
    history.add(local.state_dir, history.KEPT_FOREVER, version, archives_deleted=gone)
    write(f"kept version {version} for good; its uninstall version is deleted "
          f"({len(gone)} archive(s))")
    return gone
