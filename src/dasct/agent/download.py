"""The check and the background download (example 4, steps 4-6).

`start` launches a detached child (`dasct agent _download`, its own session, no terminal)
that lowers its priority first (os.nice; on Linux SCHED_IDLE when the kernel allows it:
it then runs only when nothing else wants the CPU), then `fetch`: the TUF check and the
verified download, at most `bandwidth_kib` KiB/s, recorded in the agent's state. A lock
file keeps two from running at once. The child inherits dasct's environment minus every
secret (redact.child_env), as the engine's commands do.

`fetch` is also what `dasct agent check --foreground` runs inline.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dasct.agent import AgentError
from dasct.agent import state as st
from dasct.agent.local import Local

LOCK = "download.lock"
LOG = "download.log"
CHILD = "_download"


def lower_priority(nice: int) -> list[str]:
    """Lower this process's CPU priority: nice, then SCHED_IDLE where allowed. Returns
    what was done, for the log."""
    done = []
    if nice:
        try:
            os.nice(nice)
            done.append(f"nice +{nice}")
        except OSError as exc:
            done.append(f"nice refused ({exc.strerror})")
    idle = getattr(os, "SCHED_IDLE", None)
    if idle is not None and hasattr(os, "sched_setscheduler"):
        try:
            os.sched_setscheduler(0, idle, os.sched_param(0))
            done.append("SCHED_IDLE")
        except OSError as exc:
            done.append(f"SCHED_IDLE refused ({exc.strerror})")
    return done


@contextmanager
def exclusive(agent_dir: Path) -> Iterator[bool]:
    """Hold the download lock; yields False (held by another) instead of waiting."""
    agent_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(agent_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def running(agent_dir: Path) -> bool:
    """True while a check or download holds the lock."""
    with exclusive(agent_dir) as mine:
        return not mine


def start(local: Local) -> bool:
    """Start the background check and download; False when one is already running."""
    from dasct import redact

    folder = st.agent_dir(local.state_dir)
    if running(folder):
        return False
    argv = [sys.executable, "-m", "dasct", "agent", CHILD, "--home", str(local.home)]
    with open(folder / LOG, "ab") as log:
        subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                         cwd=local.home, env=redact.child_env({}), start_new_session=True,
                         close_fds=True)
    return True


def fetch(local: Local, *, now: float | None = None) -> str:
    """Check for a newer release and download it, verified; record it in the state and
    return what happened in one line. AgentError "cannot update: ..." when the check or
    the download fails (recorded too: it is never taken as being current)."""
    from dasct import config
    from dasct.agent import client
    from dasct.agent.install import release_dict

    folder = st.agent_dir(local.state_dir)
    with exclusive(folder) as mine:
        if not mine:
            return "a check is already running"
        at = time.time() if now is None else now
        state = local.load()
        current = max((state.installed, *state.declined))
        path: Path | None = None
        try:
            source = client.Source.from_config(config.load(local.home), local.home)
            release = client.check(source, installed=current)
            if release is not None and not _have(state, release.version):
                path = client.download(source, release, folder / "downloads",
                                       bytes_per_second=local.cfg.bandwidth_kib * 1024)
        except AgentError as exc:
            _record(local, at, f"cannot update: {exc}")
            raise AgentError(f"cannot update: {exc}") from None
        if release is None:
            what = (f"nothing new: checked {source.metadata_url} at {_iso(at)}; version "
                    f"{state.installed} is the newest" + (
                        f" (declined: {', '.join(map(str, state.declined))})"
                        if state.declined else ""))
            _record(local, at, what)
            return what
        if _have(state, release.version):
            what = f"version {release.version} is already downloaded and waiting"
            _record(local, at, what)
            return what
        assert path is not None
        waiting = st.Waiting(release_dict(release), str(path), at)
        what = f"downloaded version {release.version} ({release.length} bytes), verified"
        _record(local, at, what, waiting)
        return what


def _have(state: st.State, version: int) -> bool:
    w = state.waiting
    return w is not None and w.version == version and Path(w.path).is_file()


def _record(local: Local, at: float, what: str, waiting: st.Waiting | None = None) -> None:
    with st.update(local.state_path) as change:
        old = change.state.waiting
        if waiting is not None and old is not None and old.path != waiting.path:
            Path(old.path).unlink(missing_ok=True)  # superseded by a newer release
        change.set(uses=0, since=at, last_check=at, last_result=what,
                   waiting=waiting if waiting is not None else old)


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
