"""One remote host over a real sshd: the same engine, run on the target."""

from __future__ import annotations

import json
from pathlib import Path

from engine_kit import SEED_FILES, health, snapshot, stage
from ssh_kit import Sshd, fleet

from dasct.audit import verify as audit_verify
from dasct.migrate import trigger as trig
from dasct.migrate import trigger_write as trigw


def test_migrates_one_host_and_mirrors_its_state(tmp_path: Path, sshd: Sshd) -> None:
    f = fleet(tmp_path, sshd)
    stage(f.env(), "E1", files=SEED_FILES, commands=[health(0)])
    proc = f.migrate()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (f.root() / "app" / "main.py").read_text() == "print('v2')\n"
    assert not (f.root() / "app" / "gone.py").exists()
    # The engine's state is on the host; the controller holds a verified mirror.
    assert (f.base() / "state" / "inventory.json").is_file()
    assert audit_verify(f.base() / "state") == []
    assert audit_verify(f.env().state_dir) == []
    assert "migrated E1" in proc.stderr + proc.stdout
    again = f.migrate()
    assert again.returncode == 0, again.stderr
    assert "nothing to migrate" in again.stdout + again.stderr
    before = snapshot(f.root())
    status = f.run("migrate", "status", "--env", "production")
    assert status.returncode == 0, status.stderr
    assert "E1" in status.stdout and "app/main.py" in status.stdout
    assert snapshot(f.root()) == before


def test_customer_signs_off_on_the_host(tmp_path: Path, sshd: Sshd) -> None:
    f = fleet(tmp_path, sshd, extra='[promotion.roles]\ncustomer = ["buyer@customer.example"]\n')
    buyer = {"GIT_COMMITTER_NAME": "Buyer", "GIT_COMMITTER_EMAIL": "buyer@customer.example"}
    early = f.run("signoff", "E1", "--env", "production", "--as", "customer", env=buyer)
    assert early.returncode == 1 and "cannot sign off" in early.stdout + early.stderr
    stage(f.env(), "E1", files=SEED_FILES)
    assert f.migrate().returncode == 0
    other = f.run("signoff", "E1", "--env", "production", "--as", "customer")
    assert other.returncode == 1 and "does not list you" in other.stdout  # checked on the host
    proc = f.run("signoff", "E1", "--env", "production", "--as", "customer",
                 "--comment", "remote tests passed", env=buyer)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "signed off by the customer Buyer" in proc.stdout
    records = [json.loads(line) for line in
               (f.base() / "state" / "audit.jsonl").read_text().splitlines()]
    events = [r["event"] for r in records]
    assert "customer-signoff" in events and "warranty-start" in events  # on the host
    assert audit_verify(f.base() / "state") == []
    again = f.run("signoff", "E1", "--env", "production", "--as", "customer", env=buyer)
    assert again.returncode == 1 and "already signed off" in again.stdout + again.stderr


def test_verify_runs_on_the_host_with_its_shipped_input(tmp_path: Path, sshd: Sshd) -> None:
    f = fleet(tmp_path, sshd)
    staging = f.env().staging
    # The system answers from the host's own file: only on the host does it say HOST.
    answer = "import sys; sys.stdout.write(open('app/where').read() + sys.stdin.read())\n"
    (f.root() / "app" / "where").write_text("HOST ")
    cmd = trig.StepCommand(
        "answer", ("python3", "app/answer.py"), "verify", 30.0,
        input=trigw.write_payload(staging, b"ping\n"),
        expect_output=trigw.write_payload(staging, b"HOST ping\n"), max_seconds=25)
    stage(f.env(), "E1", files=[("add", "app/answer.py", answer.encode(), None)],
          commands=[cmd])
    proc = f.migrate()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "E1: verify answer passed in" in proc.stdout + proc.stderr
    # The outcome was written on the host and mirrored back, with the measured time.
    for state in (f.base() / "state", f.env().state_dir):
        done = json.loads((state / "outcomes" / "E1.json").read_text())
        assert done["outcome"] == "migrated" and done["verify"][0]["name"] == "answer"
        assert 0 < done["verify"][0]["seconds"] < 25


def test_inventory_verify_checks_the_files_on_the_host(tmp_path: Path, sshd: Sshd) -> None:
    f = fleet(tmp_path, sshd)
    stage(f.env(), "E1", files=SEED_FILES)
    assert f.migrate().returncode == 0
    clean = f.run("inventory", "verify", "--env", "production")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "match the inventory" in clean.stdout + clean.stderr
    (f.root() / "app" / "main.py").write_text("print('changed by hand')\n")
    drifted = f.run("inventory", "verify", "--env", "production")
    assert drifted.returncode == 1, drifted.stdout + drifted.stderr
    assert "drift: file:app/main.py" in drifted.stdout + drifted.stderr
    listed = f.run("inventory", "--env", "production")
    assert listed.returncode == 0 and "app/main.py" in listed.stdout


def test_a_failure_on_the_host_keeps_its_trace_there_and_shows_it_here(tmp_path: Path,
                                                                       sshd: Sshd) -> None:
    f = fleet(tmp_path, sshd)
    stage(f.env(), "E1", files=SEED_FILES, commands=[health(1)])
    proc = f.migrate()
    assert proc.returncode == 1, proc.stdout + proc.stderr
    # Written on the host, by the engine that ran there; mirrored back with the audit log.
    on_host = list((f.base() / "state" / "traces").glob("*.jsonl"))
    mirrored = list((f.env().state_dir / "traces").glob("*.jsonl"))
    assert len(on_host) == 1 and [p.name for p in mirrored] == [on_host[0].name]
    shown = f.run("migrate", "trace", "E1", "--env", "production")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "matches the audit log" in shown.stdout
    assert "step phase=done step=file:3 trigger=E1" in shown.stdout
    assert "rolled-back" in shown.stdout
