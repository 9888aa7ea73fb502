"""One remote host over a real sshd: the same engine, run on the target."""

from __future__ import annotations

import json
from pathlib import Path

from engine_kit import SEED_FILES, health, snapshot, stage
from ssh_kit import Sshd, fleet

from dasct.audit import verify as audit_verify


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
