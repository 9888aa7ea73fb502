"""The environment lock (dasct.migrate.lock): one holder at a time, named in the refusal;
a stale lease (dead pid on this host, a recycled pid, or an expired lease on another host)
can be broken, a live holder here (expired or not) or one on another host before expiry
never; renew and release; six processes racing for it, exactly one wins. The keeper renews
a lease through a step longer than the lease (a second real `migrate run
--break-stale-lock` is refused and the first run's migration completes) and notices when
the lease was taken, and the run then stops before its next step."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from engine_kit import AT, cli, make_env, quiet, stage

from dasct.migrate import inventory, lock
from dasct.migrate import trigger as trig


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


def test_expired_lease_of_a_live_holder_here_is_never_broken(tmp_path: Path) -> None:
    lock.acquire(tmp_path, owner="slow", lease_seconds=10)
    assert lock.stale_reason(lock.read(tmp_path), now=time.time() + 11) is None  # type: ignore[arg-type]
    with pytest.raises(lock.LockError, match="its process is alive on this host"):
        lock.break_stale(tmp_path, now=time.time() + 11)
    assert lock.read(tmp_path) is not None


def test_recycled_pid_is_not_taken_for_the_holder(tmp_path: Path) -> None:
    lease = lock.acquire(tmp_path, owner="me")
    data = json.loads((tmp_path / "lock").read_text())
    data["pid_start"] = "1"  # our pid, but a process that started at another time
    (tmp_path / "lock").write_text(json.dumps(data))
    assert lease.pid == os.getpid()
    assert lock.break_stale(tmp_path) is not None


def test_a_live_pid_without_a_known_start_time_is_judged_by_expiry(tmp_path: Path) -> None:
    # Without /proc a recycled pid cannot be told from the holder: the lease decides.
    lock.acquire(tmp_path, owner="me", lease_seconds=10)
    data = json.loads((tmp_path / "lock").read_text())
    data["pid_start"] = ""
    (tmp_path / "lock").write_text(json.dumps(data))
    with pytest.raises(lock.LockError, match="its lease has not expired"):
        lock.break_stale(tmp_path)
    broken = lock.break_stale(tmp_path, now=data["expires"] + 1)
    assert broken is not None and broken[1] == "the lease expired"


def test_renew_extends_and_release_after_renew(tmp_path: Path) -> None:
    lease = lock.acquire(tmp_path, owner="me", lease_seconds=5)
    renewed = lock.renew(tmp_path, lease, lease_seconds=100)
    assert renewed.expires > lease.expires
    lock.release(tmp_path, lease)
    assert lock.read(tmp_path) is None


def test_renew_refuses_when_broken_or_taken(tmp_path: Path) -> None:
    lease = lock.acquire(tmp_path, owner="me", lease_seconds=1)
    (tmp_path / "lock").unlink()  # broken
    with pytest.raises(lock.LockError, match="broken"):
        lock.renew(tmp_path, lease)
    lock.acquire(tmp_path, owner="me", lease_seconds=1)
    (tmp_path / "lock").write_text(_foreign(lease))  # taken
    with pytest.raises(lock.LockError, match="taken by someone else"):
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


def _foreign(lease: lock.Lease) -> str:
    # What another host's run would have written over our lease.
    return json.dumps({**lease.__dict__, "host": "elsewhere", "pid": 1, "acquired": 1.0})


def test_keeper_renews_in_the_background_and_notices_a_taken_lease(tmp_path: Path) -> None:
    lease = lock.acquire(tmp_path, owner="me", lease_seconds=1)
    keeper = lock.Keeper(tmp_path, lease, lease_seconds=1, interval=0.05)
    keeper.start()
    try:
        time.sleep(1.5)
        current = lock.read(tmp_path)
        assert current is not None and current.expires > time.time()
        keeper.check()
        # Another holder writes its lease the way dasct does, atomically: a plain
        # write_text truncates first, and the keeper reading the empty file in between
        # (rightly) stops with "unreadable lock file" instead (seen once in CI).
        (tmp_path / "lock.new").write_text(_foreign(lease))
        os.replace(tmp_path / "lock.new", tmp_path / "lock")
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                keeper.check()
            except lock.LockError:
                break
            time.sleep(0.05)
        with pytest.raises(lock.LockError, match="broken or taken by someone else"):
            keeper.check()
        with pytest.raises(lock.LockError, match="broken or taken by someone else"):
            keeper.renew()
    finally:
        keeper.stop()
    assert json.loads((tmp_path / "lock").read_text())["host"] == "elsewhere"


def _wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        if proc.poll() is not None or time.time() > deadline:
            out, err = proc.communicate()
            raise AssertionError(f"{path} never appeared: {out}{err}")
        time.sleep(0.05)


def _waiting_health(started: Path, go: Path) -> trig.StepCommand:
    # A health check that runs until the test lets it go: far longer than the lease.
    script = (f"import os, time\nopen({str(started)!r}, 'w').close()\nt = time.time()\n"
              f"while not os.path.exists({str(go)!r}) and time.time() - t < 120:\n"
              "    time.sleep(0.05)\n")
    return trig.StepCommand("long-health", (sys.executable, "-c", script), "health", 300.0)


def test_live_run_keeps_its_lock_through_a_step_longer_than_the_lease(tmp_path: Path
                                                                      ) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    env = make_env(tmp_path)
    (env.root / "a.txt").write_text("a1\n")
    started, go = tmp_path / "started", tmp_path / "go"
    stage(env, "E1", files=[("modify", "a.txt", b"a2\n", None)],
          commands=[_waiting_health(started, go)])
    short = {lock.LEASE_VAR: "1"}
    first = subprocess.Popen(
        [sys.executable, "-m", "dasct", "migrate", "run", "--env", "model", "--now",
         "--at", AT], cwd=tmp_path, text=True, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src"),
             **short})
    try:
        _wait_for(started, first)
        time.sleep(2.5)  # the 1 s lease would have expired twice over without renewal
        current = lock.read(env.state_dir)
        assert current is not None and current.expires > time.time()
        breaker = cli(tmp_path, "migrate", "run", "--env", "model", "--now", "--at", AT,
                      "--break-stale-lock", env=short)
        assert breaker.returncode == 1, breaker.stdout + breaker.stderr
        assert "refusing to break the lock" in breaker.stderr
        assert "its process is alive on this host" in breaker.stderr
        assert (env.root / "a.txt").read_text() == "a2\n"  # nothing was rolled back under it
    finally:
        go.touch()
        out, err = first.communicate(timeout=120)
    assert first.returncode == 0, out + err
    assert "migrated E1" in out
    assert (env.root / "a.txt").read_text() == "a2\n"
    assert inventory.load(env.state_dir)["deployments"]["E1"]["status"] == "deployed"
    assert lock.read(env.state_dir) is None


def test_a_run_whose_lease_was_taken_stops_before_its_next_step(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    (env.root / "a.txt").write_text("a1\n")
    lock_file = env.state_dir / "lock"
    # The first command plays another host taking the lock; the second must never run.
    take = ("import json, sys, time\np = sys.argv[1]\nd = json.load(open(p))\n"
            "d.update(host='elsewhere', pid=1, acquired=1.0)\n"
            "open(p + '.x', 'w').write(json.dumps(d))\nimport os\nos.replace(p + '.x', p)\n")
    second = tmp_path / "second-ran"
    stage(env, "E1", files=[("modify", "a.txt", b"a2\n", None)], commands=[
        trig.StepCommand("take", (sys.executable, "-c", take, str(lock_file)), "health", 30.0),
        trig.StepCommand("after", (sys.executable, "-c",
                                   f"open({str(second)!r}, 'w').close()"), "health", 30.0),
    ])
    with pytest.raises(lock.LockError, match="broken or taken by someone else"):
        quiet(env, ignore_window=True)
    assert not second.exists()
    assert json.loads(lock_file.read_text())["host"] == "elsewhere"  # theirs, left alone
    assert (env.state_dir / "journal.jsonl").exists()  # the new holder recovers it
