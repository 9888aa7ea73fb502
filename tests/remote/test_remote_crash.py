"""The crash proof of the engine, over SSH: the engine SIGKILLed on the host at every
journal boundary, and the connection dropped (the server's session killed) at the same
points; after a rerun the target is exactly as after, the trigger applied once, the audit
chain intact."""

from __future__ import annotations

import json
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from engine_kit import SEED_FILES, kill_points, snapshot, stage
from ssh_kit import Fleet, Sshd, fleet

from dasct.audit import verify as audit_verify
from dasct.migrate import inventory, journal, lock

pytestmark = pytest.mark.slow


def _template(tmp: Path, sshd: Sshd) -> tuple[Fleet, list[int | str], dict[str, object]]:
    f = fleet(tmp, sshd)
    stage(f.env(), "E1", files=SEED_FILES)
    clean = fleet(tmp.parent / f"{tmp.name}-clean", sshd)
    stage(clean.env(), "E1", files=SEED_FILES)
    proc = clean.migrate()
    assert proc.returncode == 0, proc.stdout
    return f, kill_points(clean.base() / "state"), snapshot(clean.root())


def _settle(f: Fleet) -> None:
    """Wait for an engine that outlived its connection to end on the host."""
    for _ in range(300):
        held = lock.read(f.base() / "state")
        if held is None or not Path(f"/proc/{held.pid}").exists():
            return  # released, or its holder is dead (a stale lock the rerun breaks)
        time.sleep(0.1)
    raise AssertionError("the engine on the host never released its lock")


def _check(f: Fleet, after: dict[str, object], point: int | str) -> None:
    state = f.base() / "state"
    assert snapshot(f.root()) == after, point
    assert (inventory.outcome(state, "E1") or {}).get("outcome") == "migrated", point
    assert audit_verify(state) == [], point
    records = [json.loads(r) for r in (state / "audit.jsonl").read_text().splitlines()]
    done = [r for r in records
            if r["event"] == "migrated" and r["fields"].get("trigger") == "E1"]
    assert len(done) == 1, point  # applied once


@pytest.mark.parametrize("how", [journal.KILL_VAR, journal.DROP_VAR], ids=["kill", "drop"])
def test_every_point_over_ssh(tmp_path: Path, sshd: Sshd, how: str) -> None:
    template, points, after = _template(tmp_path / "template", sshd)

    def one(n: int, point: int | str) -> None:
        f = fleet(tmp_path / f"p{n}", sshd)
        shutil.rmtree(f.repo / "staging", ignore_errors=True)
        shutil.copytree(template.repo / "staging", f.repo / "staging")
        died = f.migrate(env={how: str(point)})
        assert died.returncode == 1, (point, died.stdout)
        assert "HELD" in died.stdout, (point, died.stdout)
        _settle(f)
        again = f.migrate("--break-stale-lock")
        assert again.returncode == 0, (point, again.stdout)
        _check(f, after, point)

    # Each point has its own repository, host root and dasct directory: they run side by
    # side (the time is the SSH handshakes and interpreter starts, not the engine).
    with ThreadPoolExecutor(3) as pool:
        for done in [pool.submit(one, n, p) for n, p in enumerate(points)]:
            done.result()
