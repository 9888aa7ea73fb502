"""A command that needs the index at HEAD while a refresh brings it there waits for that
refresh (within the budget) instead of replaying the same commits beside it."""

from __future__ import annotations

import subprocess
import sys
import time

from dasct import git, index, refresh
from dasct import settings as dasct_settings
from gitrepo import GitRepo

# The real refresh (refresh.locked_update), slowed down: once it holds the lock it says
# so, then takes argv[2] seconds more before it brings the index to HEAD.
REFRESH = r"""
import sys, time
from dasct import git, index, refresh
real = index.snapshot_at

def slow(*args, **kwargs):
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    return real(*args, **kwargs)

index.snapshot_at = slow
assert refresh.locked_update(git.discover(sys.argv[1]), wait=True)
"""


def _pulled(repo: GitRepo) -> None:
    """An index at HEAD~1 only, and HEAD one commit further (as after a pull)."""
    repo.commit("initial", {"x.py": "a\nb\nc\n"})
    r = git.discover(repo.path)
    index.snapshot_at(r, dasct_settings.load(r), r.head)
    repo.commit("Fix PROJ-1", {"x.py": "a\nB\nc\n"})


def _while_refreshing(repo: GitRepo, hold: float) -> tuple[index.Snapshot, float]:
    child = subprocess.Popen((sys.executable, "-c", REFRESH, str(repo.path), str(hold)),
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline() == "locked\n"
        r = git.discover(repo.path)
        started = time.monotonic()
        snap = index.snapshot_at(r, dasct_settings.load(r), r.head)
        return snap, time.monotonic() - started
    finally:
        child.wait(timeout=60)


def test_the_running_refresh_is_waited_for(repo: GitRepo) -> None:
    _pulled(repo)
    snap, took = _while_refreshing(repo, 1.0)
    assert snap.stats["kind"] == 0  # the refresh's snapshot, read: no second replay
    assert took >= 0.8
    assert snap.protected("x.py") == {2: (1, ("PROJ-1",))}


def test_a_refresh_past_the_budget_is_not_waited_for(repo: GitRepo) -> None:
    repo.write(".dasct.toml", "[check]\nbudget_seconds = 0.5\n")
    _pulled(repo)
    snap, took = _while_refreshing(repo, 3.0)
    assert snap.stats["kind"] == 1  # replayed on its own once the budget's time passed
    assert 0.45 <= took < 2.5
    assert snap.protected("x.py") == {2: (1, ("PROJ-1",))}


def test_no_refresh_no_wait(repo: GitRepo) -> None:
    _pulled(repo)
    r = git.discover(repo.path)
    assert not refresh.wait_running(r, 5.0)  # no lock file at all
    assert refresh.locked_update(r, wait=False)
    started = time.monotonic()
    assert not refresh.wait_running(r, 5.0)  # a lock that nobody holds
    assert time.monotonic() - started < 1.0
