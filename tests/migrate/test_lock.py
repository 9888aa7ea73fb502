"""The environment lock (dasct.migrate.lock): one holder at a time, named in the refusal;
a stale lease (dead pid on this host, a recycled pid, or an expired lease) can be broken,
a live holder or one on another host before expiry never; renew and release; six
processes racing for it, exactly one wins."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dasct.migrate import lock


def test_acquire_is_exclusive_and_names_the_holder(tmp_path: Path) -> None:
    lease = lock.acquire(tmp_path, owner="nightly")
    with pytest.raises(lock.LockError, match=r"locked by nightly \(pid \d+ on "):
        lock.acquire(tmp_path, owner="other")
    lock.release(tmp_path, lease)
    assert lock.read(tmp_path) is None


def test_live_holder_is_never_broken(tmp_path: Path) -> None:
    lock.acquire(tmp_path, owner="me")
    with pytest.raises(lock.LockError, match="refusing to break"):
        lock.break_stale(tmp_path)
    assert lock.read(tmp_path) is not None


def test_dead_pid_on_this_host_is_breakable(tmp_path: Path) -> None:
    code = ("import sys; from pathlib import Path; from dasct.migrate import lock; "
            "lock.acquire(Path(sys.argv[1]), owner='killed')")
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True)
    with pytest.raises(lock.LockError, match="looks stale"):
        lock.acquire(tmp_path, owner="next")
    broken = lock.break_stale(tmp_path)
    assert broken is not None and "no longer running" in broken[1]
    lock.acquire(tmp_path, owner="next")


def test_expired_lease_is_breakable_even_if_alive(tmp_path: Path) -> None:
    lock.acquire(tmp_path, owner="slow", lease_seconds=10)
    assert lock.break_stale(tmp_path, now=time.time() + 11) is not None


def test_recycled_pid_is_not_taken_for_the_holder(tmp_path: Path) -> None:
    lease = lock.acquire(tmp_path, owner="me")
    data = json.loads((tmp_path / "lock").read_text())
    data["pid_start"] = "1"  # our pid, but a process that started at another time
    (tmp_path / "lock").write_text(json.dumps(data))
    assert lease.pid == os.getpid()
    assert lock.break_stale(tmp_path) is not None


def test_renew_extends_and_release_after_renew(tmp_path: Path) -> None:
    lease = lock.acquire(tmp_path, owner="me", lease_seconds=5)
    renewed = lock.renew(tmp_path, lease, lease_seconds=100)
    assert renewed.expires > lease.expires
    lock.release(tmp_path, lease)
    assert lock.read(tmp_path) is None


def test_renew_refuses_when_broken(tmp_path: Path) -> None:
    lease = lock.acquire(tmp_path, owner="me", lease_seconds=1)
    lock.break_stale(tmp_path, now=time.time() + 5)
    with pytest.raises(lock.LockError, match="broken"):
        lock.renew(tmp_path, lease)


def test_holder_on_another_host_is_not_breakable_before_expiry(tmp_path: Path) -> None:
    lock.acquire(tmp_path, owner="remote")
    data = json.loads((tmp_path / "lock").read_text())
    data["host"], data["pid"] = "elsewhere", 1
    (tmp_path / "lock").write_text(json.dumps(data))
    with pytest.raises(lock.LockError, match="on another host"):
        lock.break_stale(tmp_path)
    assert lock.break_stale(tmp_path, now=data["expires"] + 1) is not None


def test_two_processes_race_one_wins(tmp_path: Path) -> None:
    code = ("import sys, time; from pathlib import Path; from dasct.migrate import lock\n"
            "try:\n    lock.acquire(Path(sys.argv[1]), owner=sys.argv[2])\n"
            "except lock.LockError:\n    sys.exit(7)\ntime.sleep(1)\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path), f"p{i}"])
             for i in range(6)]
    codes = sorted(p.wait() for p in procs)
    assert codes == [0, 7, 7, 7, 7, 7]
