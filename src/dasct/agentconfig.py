"""The `[publish]` and `[agent]` sections: pull-mode updates (docs/agent.md).

`[publish]` is read where CI runs `dasct publish --env ENV` (a TUF repository of static
files per environment); `[agent]` on the target, where `dasct agent` checks, downloads
and installs the releases of one environment on its own schedule. Both are plain data, so
that loading the config on the commit-time path imports nothing of TUF or the agent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dasct.config_base import _between, _environment_name, _matching, _recipient, checked

# A key as [publish] names it: "env:VAR" (the key's PEM in an environment variable) or
# "file:PATH" (a PEM file; relative to the config's directory). Never the key itself.
_key_source = _matching(r"(env:[A-Za-z_][A-Za-z0-9_]*|file:[^\x00]+)",
                        "a key source (env:VARIABLE or file:PATH)")
_check_time = _matching(r"startup|shutdown|uses|([01][0-9]|2[0-3]):[0-5][0-9]",
                        "startup, shutdown, uses or a time of day HH:MM")
_install_mode = _matching(r"passphrase|policy", "passphrase or policy")


def _optional_environment(value: str) -> None:
    if value:  # empty: the agent is not configured
        _environment_name(value)


@dataclass(frozen=True)
class RoleKeys:
    """The keys of one TUF role, the signatures it needs and how long its metadata lives."""

    keys: tuple[str, ...] = field(default=(), metadata=checked(_key_source))
    threshold: int = field(default=1, metadata=checked(_between(1, 100)))
    expiry_days: int = field(default=0, metadata=checked(_between(0, 36500)))  # 0: role default


@dataclass(frozen=True)
class PublishConfig:
    """Where and how `dasct publish` writes an environment's signed releases."""

    # The static repository's directory; each environment below it: ENV/metadata, ENV/targets.
    repository: str = ".dasct/publish"
    root: RoleKeys = field(default_factory=RoleKeys)
    targets: RoleKeys = field(default_factory=RoleKeys)
    snapshot: RoleKeys = field(default_factory=RoleKeys)
    timestamp: RoleKeys = field(default_factory=RoleKeys)
    consistent_snapshot: bool = True


@dataclass(frozen=True)
class AgentConfig:
    """The target side: when to look for a newer release, and how one may be installed."""

    # The local environment ([environments.NAME]) that releases are installed into.
    environment: str = field(default="", metadata=checked(_optional_environment))
    metadata_url: str = ""  # https://updates.example.com/production/metadata/
    targets_url: str = ""  # default: metadata_url's sibling targets/
    trusted_root: str = ""  # the root.json shipped with the product: the trust anchor
    uses: int = field(default=5, metadata=checked(_between(0, 1_000_000)))  # 0: not by uses
    every_hours: float = 24.0  # a check is due after this long whatever the uses; 0: never
    # When a due check (and a notice) happens: at startup, at shutdown, at a time of day,
    # or as soon as the use count is reached.
    when: tuple[str, ...] = field(default=("uses",), metadata=checked(_check_time))
    bandwidth_kib: int = field(default=0, metadata=checked(_between(0, 10_000_000)))  # 0: no cap
    nice: int = field(default=19, metadata=checked(_between(0, 19)))
    install: str = field(default="passphrase", metadata=checked(_install_mode))
    policy_file: str = ""  # an unattended policy an administrator signed (install = policy)
    policy_public_keys: tuple[str, ...] = ()  # its verifiers, Ed25519 name+id+base64
    recipients: tuple[str, ...] = field(default=(), metadata=checked(_recipient))
    max_release_mib: int = field(default=1024, metadata=checked(_between(1, 1_000_000)))
