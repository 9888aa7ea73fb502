"""Helpers for the agent's tests: an agent home on a seeded environment, and releases built
in the real release format (dasct.agent.release.build) as CI would publish them."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "migrate"))

from engine_kit import SEED_FILES, SRC, File, health, seed, snapshot, stage

from dasct.agent import release as releases
from dasct.agent import state as st
from dasct.agent.install import release_dict
from dasct.agent.local import Local, locate
from dasct.migrate import trigger as trig

__all__ = ["SEED_FILES", "SRC", "Publisher", "cli", "fd_with", "health", "home", "snapshot"]

PASSPHRASE = "correct horse battery"
ENV = "model"


def agent_toml(extra: str = "") -> str:
    """The [agent] table of a test home (appended after [environments.model])."""
    return (f'\n[agent]\nenvironment = "{ENV}"\nmetadata_url = "http://127.0.0.1:9/{ENV}/metadata/"\n'
            f'trusted_root = "root.json"\n{extra}')


def home(tmp: Path, extra: str = "") -> Local:
    """An agent home in tmp: a seeded target (engine_kit.seed) and [agent]."""
    seed(tmp, extra=agent_toml(extra))
    return locate(tmp)


class Publisher:
    """Builds cumulative releases of the home's environment, as publish does."""

    def __init__(self, local: Local) -> None:
        self.local = local
        self.ci = dataclasses.replace(local.env, staging=local.home / "ci-staging")
        self.version = 0
        self.triggers: list[str] = []

    def release(self, files: Sequence[File] = (), *, commands: Sequence[trig.StepCommand] = (),
                restart: bool = False, expires_in: timedelta = timedelta(days=30),
                ) -> tuple[releases.Release, bytes]:
        """The next release: one new trigger with files (pre-images: the target as it is)."""
        self.version += 1
        tid = f"rel-{self.version}"
        now = datetime.now(timezone.utc)
        stage(self.ci, tid, files=files, commands=commands, not_before=now - timedelta(hours=1),
              expires=now + expires_in)
        self.triggers.append(tid)
        members = {p.relative_to(self.ci.staging).as_posix(): p.read_bytes()
                   for p in self.ci.staging.rglob("*") if p.is_file()
                   and not p.name.startswith(".")}
        manifest = {"format": releases.FORMAT, "env": ENV, "system": "app",
                    "version": self.version, "created": now.isoformat(timespec="seconds"),
                    "triggers": sorted(self.triggers), "new_triggers": [tid],
                    "defects": ["PROJ-1"], "restart": restart}
        data = releases.build(manifest, members)
        rel = releases.Release(
            env=ENV, system="app", version=self.version,
            target=releases.target_path(ENV, self.version), length=len(data),
            sha256=hashlib.sha256(data).hexdigest(), created=manifest["created"],  # type: ignore[arg-type]
            triggers=tuple(sorted(self.triggers)), new_triggers=(tid,), defects=("PROJ-1",),
            restart=restart)
        return rel, data

    def downloaded(self, files: Sequence[File] = (), **kw: object) -> releases.Release:
        """The next release, as if the agent had downloaded and verified it."""
        rel, data = self.release(files, **kw)  # type: ignore[arg-type]
        folder = st.agent_dir(self.local.state_dir) / "downloads"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{ENV}-{rel.version}.tar"
        path.write_bytes(data)
        with st.update(self.local.state_path) as change:
            change.set(waiting=st.Waiting(release_dict(rel), str(path), 1000.0))
        return rel


def cli(home_dir: Path, *args: str, stdin: str | None = None, pass_fds: Sequence[int] = (),
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m dasct agent ARGS --home home_dir`, stdin not a terminal."""
    full = {**os.environ, "PYTHONPATH": str(SRC), **(env or {})}
    return subprocess.run([sys.executable, "-m", "dasct", "agent", *args], cwd=home_dir,
                          env=full, input=stdin if stdin is not None else "",
                          capture_output=True, text=True, check=False, pass_fds=pass_fds,
                          timeout=120)


def fd_with(*lines: str) -> int:
    """A pipe's read end holding lines (for --passphrase-fd)."""
    r, w = os.pipe()
    os.write(w, "".join(f"{line}\n" for line in lines).encode())
    os.close(w)
    return r
