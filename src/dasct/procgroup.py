"""Ending a process group: what a migration step or a test command started must not
outlive it, nor its children.

A module of its own because two sides need it, the migration engine (migrate/steps.py) and
the QA evidence runner (evidence.py), and the latter must not import the engine (~35 ms
of imports on every `ci record`).
"""

from __future__ import annotations

import os
import signal
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess

GRACE = 2.0  # seconds a process group has between SIGTERM and SIGKILL


def group_alive(pgid: int) -> bool:
    """True while a process of group pgid runs (zombies do not count)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a member changed its user: it is there all the same
        pass
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:  # no /proc: take the kernel's word, zombies included
        return True
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as f:
                stat = f.read()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
        fields = stat[stat.rfind(")") + 2:].split()
        # An orphan's zombie stays in the group until pid 1 reaps it, and in a container
        # pid 1 often never does.
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            return True
    return False


def end_group(pgid: int, *, leader: subprocess.Popen[bytes] | None = None,
              grace: float = GRACE) -> None:
    """End every process of group pgid: SIGTERM, up to grace seconds, then SIGKILL.

    A process that started a session of its own (setsid, a daemon(3) double fork) has
    left the group and is out of reach; see docs/migration.md.
    """
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 1.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        except PermissionError:
            pass
        deadline = time.monotonic() + wait
        while True:
            if leader is not None:
                leader.poll()  # reap it, or its zombie keeps the group alive
            if not group_alive(pgid) or time.monotonic() >= deadline:
                break
            time.sleep(0.02)
        if not group_alive(pgid):
            break
    if leader is not None:
        leader.poll()
