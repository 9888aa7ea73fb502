"""Where a remote environment lives: its SSH targets, parsed from the config, and the
local directories that mirror each target's state.

Pure standard library and no network: the config validates `target` and `hosts` with
`parse`, and every command that only reads (status, where, inventory) works from the
mirrors this module names. The SSH client itself is dasct.remote.ssh (asyncssh, optional).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from dasct.errors import DasctError

SCHEME = "ssh://"
_HOST = re.compile(r"^[A-Za-z0-9._-]+$|^\[[0-9A-Fa-f:.]+\]$")
_USER = re.compile(r"^[A-Za-z0-9._][A-Za-z0-9._-]*$")


class RemoteError(DasctError):
    """A remote target cannot be reached, trusted or used (one line naming it)."""


@dataclass(frozen=True)
class Target:
    """One SSH target: `ssh://user@host:port/absolute/root`."""

    user: str
    host: str
    port: int
    root: PurePosixPath

    @property
    def label(self) -> str:
        """user@host:port, for lines and the audit log (never a secret)."""
        return f"{self.user}@{self.host}:{self.port}"

    @property
    def known_hosts_name(self) -> str:
        """How OpenSSH's known_hosts names this host (`[host]:port` off port 22)."""
        host = self.host.strip("[]")
        return host if self.port == 22 else f"[{host}]:{self.port}"

    @property
    def key(self) -> str:
        """A file-name-safe identity of the target: host, port and a digest of the root."""
        digest = hashlib.sha256(str(self.root).encode()).hexdigest()[:10]
        return f"{re.sub(r'[^A-Za-z0-9.-]', '_', self.host)}_{self.port}_{digest}"

    def url(self) -> str:
        """The target as it is configured."""
        return f"{SCHEME}{self.user}@{self.host}:{self.port}{self.root}"


def parse(text: str) -> Target:
    """Parse an `ssh://user@host[:port]/absolute/path` target; ValueError says what is wrong."""
    if not text.startswith(SCHEME):
        raise ValueError(f"must start with {SCHEME} (ssh://user@host:port/path), not {text!r}")
    parts = urlsplit(text)
    if parts.query or parts.fragment or parts.password:
        raise ValueError("takes no password, query or fragment: ssh://user@host:port/path")
    user = unquote(parts.username or "")
    host = parts.hostname or ""
    if "[" in parts.netloc:
        host = f"[{host}]"
    if not user or not _USER.match(user):
        raise ValueError(f"needs a login user (ssh://user@host/path), not {text!r}")
    if not host or not _HOST.match(host):
        raise ValueError(f"has no valid host name: {text!r}")
    try:
        port = parts.port or 22
    except ValueError:
        raise ValueError(f"has an invalid port: {text!r}") from None
    root = PurePosixPath(unquote(parts.path))
    if not root.is_absolute() or str(root) == "/" or ".." in root.parts:
        raise ValueError(f"needs an absolute root path other than / on the target: {text!r}")
    return Target(user=user, host=host, port=port, root=root)


def check_target(value: str) -> None:
    """The config's validator of `target` and each of `hosts`."""
    parse(value)


def read_hosts_file(path: Path) -> list[str]:
    """The targets of a hosts file: one ssh:// URL per line; `#` starts a comment."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RemoteError(f"{path}: cannot read the hosts file ({exc})") from None
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            check_target(line)
        except ValueError as exc:
            raise RemoteError(f"{path}:{number}: {exc}") from None
        found.append(line)
    return found


def mirror_dir(home: Path, environment: str, target: Target) -> Path:
    """The local copy of target's state directory (audit log, inventory, outcomes)."""
    return rollout_dir(home, environment) / target.key / "state"


def rollout_dir(home: Path, environment: str) -> Path:
    """The controller's own record of a remote environment: its rollout audit log (what
    each `migrate` command did host by host), beside the hosts' mirrors."""
    return home / "remote" / environment


@dataclass(frozen=True)
class Remote:
    """How to reach a remote environment: its targets and the SSH settings."""

    targets: tuple[Target, ...]
    known_hosts: Path
    key_env: str  # the variable naming the private key file; unset: the agent
    python: str
    base: str  # dasct's directory on each target ("" is ~/.dasct/<env>)
    canary: int
    batch_size: int
    on_failure: str
    connect_timeout: int

    def base_for(self, environment: str) -> str:
        """dasct's directory on a target, as the remote shell takes it (relative: home)."""
        return self.base or f".dasct/{environment}"


def remote_of(cfg_env: object, *, name: str, repo_root: Path, source: str) -> Remote | None:
    """The Remote of an [environments.NAME] table, or None for a local environment."""
    from dasct.config import EnvironmentConfig

    assert isinstance(cfg_env, EnvironmentConfig)
    e = cfg_env
    where = f"{source}: environments.{name}"
    urls = list(([e.target] if e.target else []) + list(e.hosts))
    if e.hosts_file:
        urls += read_hosts_file(Path(repo_root / e.hosts_file))
    if not urls:
        return None
    if e.target and (e.hosts or e.hosts_file):
        raise RemoteError(f"{where}: give `target` (one host) or `hosts`/`hosts_file` "
                          "(a fleet), not both")
    if e.root:
        raise RemoteError(f"{where}: a remote environment's root is the path of its target "
                          "URL; remove `root`")
    if not e.known_hosts:
        raise RemoteError(f"{where}: a remote environment needs `known_hosts` (a file "
                          "pinning each host's key; dasct never trusts a key on first use)")
    targets = tuple(parse(u) for u in urls)
    seen: set[str] = set()
    for t in targets:
        if t.key in seen:
            raise RemoteError(f"{where}: {t.url()} is listed twice")
        seen.add(t.key)
    return Remote(targets=targets, known_hosts=repo_root / e.known_hosts,
                  key_env=e.ssh_key_env, python=e.remote_python, base=e.remote_base,
                  canary=e.canary, batch_size=e.batch_size, on_failure=e.on_failure,
                  connect_timeout=e.connect_timeout)
