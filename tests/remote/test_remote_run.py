"""One remote host over a real sshd: the same engine, run on the target."""

from __future__ import annotations

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
