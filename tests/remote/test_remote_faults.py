"""What goes wrong with a remote host, over a real sshd: every case one clear line, the
target untouched or restored."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from engine_kit import SEED_FILES, snapshot, stage
from ssh_kit import Sshd, fleet

from dasct.migrate import trigger as trig


def _keygen(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
                   check=True)
    return path


def _only_line(proc: subprocess.CompletedProcess[str], needle: str) -> str:
    out = proc.stdout + proc.stderr
    lines = [line for line in out.splitlines() if needle in line]
    assert lines, out
    assert "Traceback" not in out, out
    return lines[0]


def test_unknown_host_key_is_refused(tmp_path: Path, sshd: Sshd) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    f = fleet(tmp_path / "t", sshd, known_hosts=empty)
    stage(f.env(), "E1", files=SEED_FILES)
    before = snapshot(f.root())
    proc = f.migrate()
    assert proc.returncode == 1
    line = _only_line(proc, "host key unknown")
    assert "never trusted on first use" in line and "HELD" in line
    assert snapshot(f.root()) == before
    assert not f.base().exists()  # nothing was sent to a host that is not trusted


def test_changed_host_key_is_refused(tmp_path: Path, sshd: Sshd) -> None:
    other = _keygen(tmp_path / "other")
    pub = other.with_suffix(".pub").read_text().split()
    changed = tmp_path / "known_hosts"
    changed.write_text("".join(f"[127.0.0.1]:{p} {pub[0]} {pub[1]}\n" for p in sshd.ports))
    f = fleet(tmp_path / "t", sshd, known_hosts=changed)
    stage(f.env(), "E1", files=SEED_FILES)
    proc = f.migrate()
    assert proc.returncode == 1
    assert "someone may be in the middle" in _only_line(proc, "HOST KEY CHANGED")


def test_authentication_refused(tmp_path: Path, sshd: Sshd) -> None:
    stranger = _keygen(tmp_path / "stranger")
    f = fleet(tmp_path / "t", sshd)
    stage(f.env(), "E1", files=SEED_FILES)
    proc = f.migrate(env={"DASCT_SSH_KEY": str(stranger)})
    assert proc.returncode == 1
    assert "DASCT_SSH_KEY" in _only_line(proc, "authentication refused")


def test_no_key_and_no_agent_is_one_line(tmp_path: Path, sshd: Sshd) -> None:
    f = fleet(tmp_path / "t", sshd)
    proc = f.migrate(env={"DASCT_SSH_KEY": ""})
    assert proc.returncode == 1
    _only_line(proc, "no SSH key: set DASCT_SSH_KEY")


def test_unreachable_host_is_held(tmp_path: Path, sshd: Sshd) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    f = fleet(tmp_path / "t", sshd)
    toml = f.repo / ".dasct.toml"
    toml.write_text(toml.read_text().replace(f":{sshd.ports[0]}/", f":{port}/"))
    stage(f.env(), "E1", files=SEED_FILES)
    proc = f.migrate()
    assert proc.returncode == 1
    assert "HELD, not migrated" in _only_line(proc, "unreachable")


def test_hanging_verify_on_the_host_is_killed_and_rolled_back(tmp_path: Path,
                                                               sshd: Sshd) -> None:
    f = fleet(tmp_path, sshd)
    before = snapshot(f.root())
    hang = trig.StepCommand("health", (sys.executable, "-c", "import time; time.sleep(60)"),
                            "health", 2.0)
    stage(f.env(), "E1", files=SEED_FILES, commands=[hang])
    proc = f.migrate()
    assert proc.returncode == 1, proc.stdout
    assert "timed out after 2s" in proc.stdout
    assert "rolled back E1" in proc.stdout
    assert snapshot(f.root()) == before


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs: a real file system that fills up."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"cannot mount a tmpfs in CI: {done.stderr.strip()}")
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_disk_full_on_the_target_rolls_back(tmp_path: Path, sshd: Sshd,
                                            small_disk: Path) -> None:
    # The target root on the small disk; dasct's directory (state, archive) elsewhere.
    f = fleet(tmp_path, sshd, hosts_in=small_disk, remote_base=f"{tmp_path}/base")
    before = snapshot(f.root())
    big = os.urandom(2 << 20)  # larger than the whole disk
    stage(f.env(), "E1", files=[*SEED_FILES[:1], ("add", "app/big.bin", big, None)])
    proc = f.migrate()
    assert proc.returncode == 1, proc.stdout
    assert "No space left on device" in proc.stdout and "rolled back E1" in proc.stdout
    assert snapshot(f.root()) == before
