"""The real OpenSSH server the remote-target tests log into (ci/services.sh starts it)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# The engine tests' kit (engine_kit: staged triggers, snapshots) serves these tests too.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "migrate"))

from ssh_kit import Sshd


@pytest.fixture(scope="session")
def sshd() -> Sshd:
    """The sshd of ci/services.sh: three loopback ports, one key, pinned host keys."""
    ports = os.environ.get("DASCT_TEST_SSHD_PORTS")
    if not ports:
        reason = os.environ.get("DASCT_TEST_SSHD_SKIP_REASON") or (
            "no sshd: run the tests with ./dev test (ci/services.sh starts one)")
        if os.environ.get("CI"):
            pytest.fail(f"sshd is required in CI: {reason}")
        pytest.skip(reason)
    return Sshd(ports=tuple(int(p) for p in ports.split(",")),
                user=os.environ["DASCT_TEST_SSH_USER"], key=Path(os.environ["DASCT_TEST_SSH_KEY"]),
                known_hosts=Path(os.environ["DASCT_TEST_SSH_KNOWN_HOSTS"]),
                pid=int(os.environ["DASCT_TEST_SSHD_PID"]))
