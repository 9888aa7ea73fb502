"""Remote environments for the tests: a repository whose environment lives on loopback
SSH "hosts" (one sshd, one port and one root per host)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from engine_kit import AT, SRC, make_env

from dasct import config
from dasct.migrate.environment import Environment, environment


@dataclass(frozen=True)
class Sshd:
    """What ci/services.sh exported."""

    ports: tuple[int, ...]
    user: str
    key: Path
    known_hosts: Path
    pid: int

    def url(self, port: int, root: Path) -> str:
        return f"ssh://{self.user}@127.0.0.1:{port}{root}"


@dataclass(frozen=True)
class Fleet:
    """A repository (repo/) with environment `production` on len(ports) hosts."""

    repo: Path
    hosts: tuple[Path, ...]  # each host's directory: root/, base/ (dasct's directory)
    sshd: Sshd

    def root(self, i: int = 0) -> Path:
        return self.hosts[i] / "root"

    def base(self, i: int = 0) -> Path:
        return self.hosts[i] / "root.dasct"

    def env(self) -> Environment:
        return environment(config.load(self.repo), "production", self.repo)

    def run(self, *args: str, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """`python -m dasct ARGS` in the repository, with the test key."""
        full = {**os.environ, "PYTHONPATH": str(SRC), "DASCT_SSH_KEY": str(self.sshd.key),
                **(env or {})}
        full.pop("SSH_AUTH_SOCK", None)
        return subprocess.run([sys.executable, "-m", "dasct", *args], cwd=self.repo, env=full,
                              capture_output=True, text=True, check=False, timeout=timeout)

    def migrate(self, *args: str, env: dict[str, str] | None = None
                ) -> subprocess.CompletedProcess[str]:
        return self.run("migrate", "run", "--env", "production", "--at", AT, *args, env=env)


def seed_root(root: Path) -> None:
    """The target content engine_kit.SEED_FILES expects."""
    (root / "app").mkdir(parents=True)
    (root / "app" / "main.py").write_text("print('v1')\n")
    (root / "app" / "old.py").write_text("old\n")
    (root / "app" / "gone.py").write_text("gone\n")


def fleet(tmp: Path, sshd: Sshd, *, hosts: int = 1, extra: str = "",
          known_hosts: Path | None = None, hosts_in: Path | None = None,
          remote_base: str = "{root}.dasct") -> Fleet:
    """A repository whose `production` lives on `hosts` SSH targets (seeded roots, in
    hosts_in, default tmp)."""
    repo = tmp / "repo"
    repo.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    dirs = []
    for i in range(hosts):
        d = (hosts_in or tmp) / f"host{i}"
        seed_root(d / "root")
        dirs.append(d)
    urls = [sshd.url(sshd.ports[i % len(sshd.ports)], d / "root") for i, d in enumerate(dirs)]
    listed = ", ".join(f'"{u}"' for u in urls)
    where = f'target = "{urls[0]}"\n' if hosts == 1 else f"hosts = [{listed}]\n"
    (repo / ".dasct.toml").write_text(
        "[environments.production]\n" + where
        + f'known_hosts = "{known_hosts or sshd.known_hosts}"\n'
        # Hosts share one machine (and one port when there are more than three): dasct's
        # directory beside each root keeps them apart, as separate machines would be.
        + f'remote_base = "{remote_base}"\n'
        + 'staging = "staging"\npromote_from = "none"\n' + extra)
    return Fleet(repo=repo, hosts=tuple(dirs), sshd=sshd)


__all__ = ["AT", "Fleet", "Sshd", "fleet", "make_env", "seed_root"]
