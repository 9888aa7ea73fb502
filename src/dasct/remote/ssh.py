"""The SSH client of remote environments: asyncssh, behind three calls.

`connect` opens a connection with the host key pinned by a known_hosts file (an unknown
or changed key is refused, never learnt), key authentication only (the key file a
variable names, else the SSH agent), and no ~/.ssh/config (the user's own SSH config
must not change which host dasct reaches or how). `upload` writes a file beside its
destination and renames it into place over SFTP. `execute` runs one command with a stdin
stream, hands stderr to the caller line by line as it comes, and returns stdout whole.

asyncssh is the optional extra `dasct[ssh]`, imported here only: no other module, and
never the commit-time path.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from dasct.remote.hosts import Remote, RemoteError, Target

CHUNK = 1 << 16


def _asyncssh() -> Any:
    try:
        import asyncssh
    except ImportError:
        raise RemoteError("SSH targets need asyncssh: pip install 'dasct[ssh]'") from None
    return asyncssh


def ssh_errors() -> type[Exception]:
    """asyncssh's base exception (a lost connection, a channel error)."""
    return _asyncssh().Error  # type: ignore[no-any-return]


def _pinned(known_hosts: Path, target: Target) -> bool:
    """Whether known_hosts names target at all (so a refusal means a changed key)."""
    try:
        lines = known_hosts.read_text(encoding="utf-8").splitlines()
    except OSError:
        return False
    name = target.known_hosts_name
    for line in lines:
        fields = line.split()
        if fields and not line.lstrip().startswith("#"):
            hosts = fields[1 if fields[0].startswith("@") else 0].split(",")
            if name in hosts:
                return True
    return False


@dataclass
class Connection:
    """An open SSH connection to one target."""

    target: Target
    conn: Any

    async def execute(self, command: str, stdin: IO[bytes], *,
                      on_line: Callable[[str], None]) -> tuple[int | None, bytes]:
        """Run command; feed it stdin; stderr lines to on_line; (exit status, stdout)."""
        proc = await self.conn.create_process(command, encoding=None)

        async def feed() -> None:
            while chunk := stdin.read(CHUNK):
                proc.stdin.write(chunk)
                await proc.stdin.drain()
            proc.stdin.write_eof()

        async def lines() -> None:
            while raw := await proc.stderr.readline():
                on_line(raw.decode("utf-8", "replace").rstrip("\n"))

        out, *_ = await asyncio.gather(proc.stdout.read(), feed(), lines())
        done = await proc.wait()
        return done.exit_status, bytes(out)

    async def exists(self, path: str) -> bool:
        """Whether path exists on the target."""
        async with self.conn.start_sftp_client() as sftp:
            return bool(await sftp.exists(path))

    async def upload(self, local: Path, remote: str) -> None:
        """Copy local to remote (relative to the login directory): beside, then renamed."""
        folder = remote.rsplit("/", 1)[0] if "/" in remote else "."
        temp = f"{remote}.{os.getpid()}.tmp"
        async with self.conn.start_sftp_client() as sftp:
            await sftp.makedirs(folder, exist_ok=True)
            await sftp.put(str(local), temp)
            await sftp.posix_rename(temp, remote)

    async def close(self) -> None:
        self.conn.close()
        await self.conn.wait_closed()


async def connect(remote: Remote, target: Target) -> Connection:
    """Connect to target as remote says; one RemoteError line for every way it fails."""
    asyncssh = _asyncssh()
    if not remote.known_hosts.is_file():
        raise RemoteError(f"{target.label}: known_hosts file {remote.known_hosts} not found; "
                          "dasct never trusts a host key on first use")
    key_file = os.environ.get(remote.key_env, "")
    keys: dict[str, Any] = {"client_keys": [key_file], "agent_path": None} if key_file else {}
    if not key_file and not os.environ.get("SSH_AUTH_SOCK"):
        raise RemoteError(f"{target.label}: no SSH key: set {remote.key_env} to a private key "
                          "file, or run an SSH agent (SSH_AUTH_SOCK)")
    try:
        conn = await asyncio.wait_for(asyncssh.connect(
            target.host.strip("[]"), port=target.port, username=target.user,
            known_hosts=str(remote.known_hosts), config=None, password=None,
            kbdint_auth=False, password_auth=False, connect_timeout=remote.connect_timeout,
            keepalive_interval=15, **keys), timeout=remote.connect_timeout + 5)
    except asyncssh.HostKeyNotVerifiable:
        if _pinned(remote.known_hosts, target):
            raise RemoteError(f"{target.label}: HOST KEY CHANGED (it does not match "
                              f"{remote.known_hosts}); refused: someone may be in the "
                              "middle, or the host was rebuilt") from None
        raise RemoteError(f"{target.label}: host key unknown ({target.known_hosts_name} is "
                          f"not in {remote.known_hosts}); refused, never trusted on first "
                          "use") from None
    except asyncssh.PermissionDenied:
        raise RemoteError(f"{target.label}: authentication refused (key "
                          f"{'from ' + remote.key_env if key_file else 'of the SSH agent'})"
                          ) from None
    except (OSError, asyncio.TimeoutError, asyncssh.Error) as exc:
        why = str(exc) or type(exc).__name__
        raise RemoteError(f"{target.label}: unreachable ({why})") from None
    except asyncssh.KeyImportError as exc:
        raise RemoteError(f"{target.label}: the key in {remote.key_env} cannot be read "
                          f"({exc})") from None
    return Connection(target, conn)
