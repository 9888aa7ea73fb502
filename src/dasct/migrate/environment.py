"""Where an environment of the migration engine lives, resolved from the config.

`environment` is the one place that turns an `[environments.NAME]` table into paths (target
root, database URL, state directory, staging directory) and the signing settings. It only
reads the config and the process environment, never the disk: `trigger create`,
`trigger verify` and `audit verify` resolve the same paths as `migrate run` without
creating anything. Directories are created where a migration runs (engine.prepare).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from dasct import redact
from dasct.checkpoint import Anchor, anchor
from dasct.config import Config, EnvironmentConfig
from dasct.errors import DasctError


class EngineError(DasctError):
    """The run cannot start or go on (locked, needs attention, unknown environment...)."""


@dataclass(frozen=True)
class Environment:
    """An environment with every path and URL resolved."""

    name: str
    root: Path
    database: str
    state_dir: Path
    staging: Path
    config: EnvironmentConfig
    system: str
    key: bytes | None
    require_signature: bool
    anchor: Anchor | None = None  # how its audit log is checkpointed (dasct.checkpoint)


def signing_key(cfg: Config) -> bytes | None:
    """The HMAC key from the environment variable the config names; None when unset."""
    value = os.environ.get(cfg.migrate.signing_key_env, "")
    return value.encode("utf-8") if value else None


def resolve_url(url: str, *, base: Path, default: Path) -> str:
    """Normalize a configured database URL (relative SQLite paths are relative to base)."""
    if not url:
        return f"sqlite:///{default}"
    if url.startswith(("postgresql://", "postgres://")):
        return url
    path = url[len("sqlite:///"):] if url.startswith("sqlite:///") else url
    full = Path(path) if Path(path).is_absolute() else Path(os.path.normpath(base / path))
    return f"sqlite:///{full}"


def environment(cfg: Config, name: str, repo_root: Path) -> Environment:
    """Resolve environment `name` of cfg; relative paths are relative to repo_root.

    Touches no file: a command that only looks may call it freely.
    """
    if name not in cfg.environments:
        known = ", ".join(sorted(cfg.environments)) or "none"
        raise EngineError(f"{cfg.source}: unknown environment {name!r} (configured: {known})")
    env = cfg.environments[name]
    base = repo_root / ".dasct" / "env" / name
    redact.configure(cfg)  # its signing key, secret variables and URL passwords

    def path(value: str, default: Path) -> Path:
        return Path(os.path.normpath(repo_root / value)) if value else default

    return Environment(
        name=name,
        root=path(env.root, base / "root"),
        database=resolve_url(env.database, base=repo_root, default=base / "db.sqlite"),
        state_dir=path(env.state_dir, base / "state"),
        staging=path(env.staging, repo_root / ".dasct" / "staging"),
        config=env, system=cfg.migrate.system, key=signing_key(cfg),
        require_signature=cfg.migrate.require_signature,
        anchor=anchor(cfg.audit, name, repo_root),
    )
