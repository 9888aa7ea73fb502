"""A PostgreSQL server for the tests: the one ci/services.sh started, or one of our own.

ci/services.sh (sourced by ./dev test) exports DASCT_TEST_PG_URL. When pytest runs on its
own, this module starts a throw-away server the same way (temp data dir, loopback, free
port, non-root user). Locally the PostgreSQL tests skip, saying why, only when no server
can be started; with CI set they fail instead.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def _bindir() -> Path | None:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    for d in reversed(candidates):
        if (d / "initdb").exists() and (d / "pg_ctl").exists():
            return d
    found = shutil.which("initdb")
    return Path(found).parent if found and shutil.which("pg_ctl") else None


class Server:
    """A server started by the tests themselves (stop() removes it)."""

    def __init__(self) -> None:
        self.url: str | None = None
        self.reason = ""
        self.dir: Path | None = None
        self.prefix: list[str] = []
        self.bindir: Path | None = None

    def start(self) -> None:
        self.bindir = _bindir()
        if self.bindir is None:
            self.reason = "no initdb/pg_ctl on this machine (./dev test installs them as root)"
            return
        if os.getuid() == 0:
            user = "postgres" if _user_exists("postgres") else "nobody"
            self.prefix = ["runuser", "-u", user, "--"]
        self.dir = Path(tempfile.mkdtemp(prefix="dasct-pg-test."))
        if self.prefix:
            shutil.chown(self.dir, self.prefix[2])
        port = _free_port()
        init = subprocess.run([*self.prefix, str(self.bindir / "initdb"), "-D",
                               str(self.dir / "data"), "-U", "dasct", "--auth=trust", "-E",
                               "UTF8", "--no-locale"], capture_output=True, text=True,
                              check=False)
        if init.returncode != 0:
            self.reason = f"initdb failed: {init.stderr.strip().splitlines()[-1:]}"
            return
        start = subprocess.run(
            [*self.prefix, str(self.bindir / "pg_ctl"), "-D", str(self.dir / "data"), "-l",
             str(self.dir / "log"), "-w", "-t", "60", "-o",
             f"-p {port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off", "start"],
            capture_output=True, text=True, check=False)
        if start.returncode != 0:
            self.reason = f"the server did not start: {start.stderr.strip()[-200:]}"
            return
        self.url = f"postgresql://dasct@127.0.0.1:{port}/postgres"

    def stop(self) -> None:
        if self.dir is None or self.bindir is None:
            return
        subprocess.run([*self.prefix, str(self.bindir / "pg_ctl"), "-D", str(self.dir / "data"),
                        "-m", "fast", "-w", "stop"], capture_output=True, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
