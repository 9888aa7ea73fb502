"""An environment of the migration engine, with every path and URL resolved."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from dasct.config import Config, EnvironmentConfig
from dasct.errors import DasctError
from dasct.migrate.database import resolve_url


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


def environment(cfg: Config, name: str, repo_root: Path) -> Environment:
    """Resolve environment `name` of cfg; relative paths are relative to repo_root."""
    if name not in cfg.environments:
        known = ", ".join(sorted(cfg.environments)) or "none"
        raise EngineError(f"unknown environment {name!r} (configured: {known})")
    env = cfg.environments[name]
    base = repo_root / ".dasct" / "env" / name

    def path(value: str, default: Path) -> Path:
        return Path(os.path.normpath(repo_root / value)) if value else default

    root = path(env.root, base / "root")
    if not env.root:
        root.mkdir(parents=True, exist_ok=True)  # the embedded default needs no setup
    key_text = os.environ.get(cfg.migrate.signing_key_env)
    return Environment(
        name=name, root=root,
        database=resolve_url(env.database, base=repo_root, default=base / "db.sqlite"),
        state_dir=path(env.state_dir, base / "state"),
        staging=path(env.staging, repo_root / ".dasct" / "staging"),
        config=env, system=cfg.migrate.system,
        key=key_text.encode() if key_text else None,
        require_signature=cfg.migrate.require_signature,
    )
