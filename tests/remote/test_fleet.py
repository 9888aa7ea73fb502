"""A fleet of four hosts over a real sshd: canary, waves, halt and rollback-all."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from engine_kit import SEED_FILES, snapshot, stage
from ssh_kit import Fleet, Sshd, fleet

from dasct.migrate import inventory
from dasct.migrate import trigger as trig

pytestmark = pytest.mark.slow

# Fails where the target root holds a file FAIL: one host of the fleet is broken.
CHECK = trig.StepCommand("health", (sys.executable, "-c",
                                    "import os, sys; sys.exit(1 if os.path.exists('FAIL') else 0)"),
                         "health", 30.0)


def four(tmp: Path, sshd: Sshd, policy: str) -> tuple[Fleet, list[dict[str, object]]]:
    f = fleet(tmp, sshd, hosts=4,
              extra=f'canary = 1\nbatch_size = 2\non_failure = "{policy}"\n')
    (f.root(2) / "FAIL").write_text("broken\n")
    stage(f.env(), "E1", files=SEED_FILES, commands=[CHECK])
    return f, [snapshot(f.root(i)) for i in range(4)]


def migrated(f: Fleet, i: int) -> bool:
    return (f.root(i) / "app" / "main.py").read_text() == "print('v2')\n"


def test_halt_leaves_the_canary_and_first_batch_and_never_touches_the_rest(
        tmp_path: Path, sshd: Sshd) -> None:
    f, before = four(tmp_path, sshd, "halt")
    proc = f.migrate()
    out = proc.stdout
    assert proc.returncode == 1, out
    assert migrated(f, 0) and migrated(f, 1)  # the canary, then the first batch
    assert snapshot(f.root(2)) == before[2]  # failed verify: rolled back on that host
    assert snapshot(f.root(3)) == before[3]
    assert not (f.root(3).parent / "root.dasct").exists()  # never contacted
    labels = [f"{sshd.user}@127.0.0.1:{sshd.ports[i % 3]}" for i in range(4)]
    assert f"{labels[3]}: not started (the rollout halted after {labels[2]} failed)" in out
    assert "4 host(s): reached 3, held 0, not started 1" in out
    assert "migrated 2, rolled back 1" in out
    # Each host keeps its own state; the controller mirrors each one.
    for i, status in ((0, "migrated"), (1, "migrated"), (2, "rolled-back")):
        env = f.env()
        assert env.remote is not None
        from dasct.remote.runner import host_view

        view = host_view(env, env.remote.targets[i])
        assert (inventory.outcome(view.state_dir, "E1") or {}).get("outcome") == status
    # The controller's own record ties the rollout together.
    records = [json.loads(line) for line in
               (f.repo / ".dasct/remote/production/audit.jsonl").read_text().splitlines()]
    [rollout] = [r["fields"] for r in records if r["event"] == "rollout"]
    assert rollout["action"] == "run" and rollout["halted_by"] == labels[2]
    assert rollout["not_started"] == [labels[3]] and rollout["exit_code"] == 1
    assert [h["stats"]["migrated"] for h in rollout["hosts"]] == [1, 1, 0]
    checked = f.run("audit", "verify", "--env", "production")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "production (rollouts): audit log ok (1 record(s))" in checked.stdout
    assert checked.stdout.count(": audit log ok") == 4, checked.stdout  # 3 hosts reached


def test_rollback_all_leaves_every_host_as_before(tmp_path: Path, sshd: Sshd) -> None:
    f, before = four(tmp_path, sshd, "rollback-all")
    proc = f.migrate()
    assert proc.returncode == 1, proc.stdout
    assert [snapshot(f.root(i)) for i in range(4)] == before, proc.stdout
    assert proc.stdout.count("reverted by rollback-all: E1") == 2


def test_migrate_status_shows_each_host(tmp_path: Path, sshd: Sshd) -> None:
    f, _ = four(tmp_path, sshd, "halt")
    f.migrate()
    proc = f.run("migrate", "status", "--env", "production")
    hosts = [line for line in proc.stdout.splitlines() if line.startswith("== ")]
    assert len(hosts) == 4, proc.stdout


def test_where_and_status_show_each_host(tmp_path: Path, sshd: Sshd) -> None:
    f, _ = four(tmp_path, sshd, "halt")
    f.migrate()
    proc = f.run("where", "E1", "--format", "json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    labels = [f"{sshd.user}@127.0.0.1:{sshd.ports[i % 3]}" for i in range(4)]
    text = proc.stdout
    for label in labels[:3]:
        assert f"production@{label}" in text, text
    status = f.run("status")
    assert status.returncode == 0, status.stderr
    assert f"production@{labels[0]}" in status.stdout
    inventory = f.run("inventory", "--env", "production", "--format", "json")
    assert inventory.returncode == 0, inventory.stderr
    hosts = json.loads(inventory.stdout)["hosts"]
    assert len(hosts) == 4
    # halt: the canary and the first good host of the first batch have E1, no other.
    having = [h["environment"] for h in hosts
              if any(i["enhancement"] == "E1" for i in h["items"])]
    assert len(having) == 2, hosts
