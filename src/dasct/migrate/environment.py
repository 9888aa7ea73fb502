"""Where an environment of the migration engine lives, resolved from the config.

`environment` is the one place that turns an `[environments.NAME]` table into paths (target
root, database URL, state directory, staging directory) and the signing settings. It only
reads the config and the process environment, never the disk: `trigger create`,
`trigger verify` and `audit verify` resolve the same paths as `migrate run` without
creating anything. Directories are created where a migration runs (session.prepare) and
where a trigger is staged; both first call `ensure_ignored`, so that dasct's default home
`.dasct/` is ignored by git before anything lands in it.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

from dasct import durable, redact
from dasct.checkpoint import Anchor, anchor
from dasct.config import Config, EnvironmentConfig, RolesConfig, gate_of, gated_by
from dasct.errors import DasctError
from dasct.remote.hosts import Remote, mirror_dir, remote_of

STATE_HOME = ".dasct"  # dasct's default home inside a repository: state, staging, roots
# As virtual environments do: the directory ignores itself, whatever the repo's .gitignore.
_IGNORE_ALL = b"# Created by dasct: its state, staging and default targets. Never commit.\n*\n"


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
    home: Path | None = None  # the repository's .dasct/ (None: not resolved from a repo)
    previous_keys: tuple[bytes, ...] = ()  # verify, never sign (see previous_keys())
    # The environment whose migration and sign-off this one's triggers need (promotion.py).
    gate: Environment | None = None
    gates: tuple[str, ...] = ()  # the environments this one gates (no warranty here)
    approvals: int = 1  # distinct sign-offs the gate must hold ([promotion] approvals)
    roles: RolesConfig = field(default_factory=RolesConfig)  # [promotion.roles]
    # A remote environment (dasct.remote): root is the target's path and state_dir the
    # local mirror of the first target's state; the engine itself runs on the target.
    remote: Remote | None = None


def signing_key(cfg: Config) -> bytes | None:
    """The HMAC key from the environment variable the config names; None when unset."""
    return _key_from(cfg.migrate.signing_key_env)


def previous_keys(cfg: Config) -> tuple[tuple[str, bytes], ...]:
    """(variable, key) for each `migrate.verify_key_envs` variable that is set."""
    found = ((name, _key_from(name)) for name in cfg.migrate.verify_key_envs)
    return tuple((name, key) for name, key in found if key is not None)


def _key_from(variable: str) -> bytes | None:
    # Keys come from the process environment only: the config names variables, never keys.
    value = os.environ.get(variable, "")
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

    remote = remote_of(env, name=name, repo_root=repo_root, source=cfg.source)
    root, state_dir = path(env.root, base / "root"), path(env.state_dir, base / "state")
    if remote is not None:
        first = remote.targets[0]
        root = Path(str(first.root))
        state_dir = mirror_dir(repo_root / STATE_HOME, name, first)
    return Environment(
        name=name,
        root=root,
        database=resolve_url(env.database, base=repo_root, default=base / "db.sqlite"),
        state_dir=state_dir,
        staging=path(env.staging, repo_root / ".dasct" / "staging"),
        config=env, system=cfg.migrate.system, key=signing_key(cfg),
        require_signature=cfg.migrate.require_signature, home=repo_root / STATE_HOME,
        previous_keys=tuple(key for _, key in previous_keys(cfg)),
        anchor=anchor(cfg.audit, name, repo_root),
        gate=None if (gate := gate_of(cfg, name)) is None else environment(cfg, gate, repo_root),
        gates=tuple(gated_by(cfg, name)), approvals=cfg.promotion.approvals,
        roles=cfg.promotion.roles, remote=remote,
    )


def per_host(env: Environment) -> list[Environment]:
    """env, or for a fleet one view per host (named `ENV@user@host:port`, its mirror as
    state_dir): what `dasct status` and `dasct where` list."""
    if env.remote is None or len(env.remote.targets) < 2 or env.home is None:
        return [env]
    labels = [t.label for t in env.remote.targets]
    # Two roots on one host (two instances side by side) are told apart by their root.
    names = [f"{env.name}@{t.label}" + (str(t.root) if labels.count(t.label) > 1 else "")
             for t in env.remote.targets]
    return [dataclasses.replace(env, name=name, root=Path(str(t.root)),
                                state_dir=mirror_dir(env.home, env.name, t))
            for name, t in zip(names, env.remote.targets, strict=True)]


def sqlite_file(url: str) -> Path | None:
    """The database file of a resolved sqlite:/// URL; None for a server database."""
    return Path(url[len("sqlite:///"):]) if url.startswith("sqlite:///") else None


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def ensure_ignored(env: Environment, *paths: Path) -> None:
    """Before writing into paths: if one lies in dasct's home, make the home ignored by git.

    The home gets a `.gitignore` holding `*`, so `git add -A` never commits dasct's state.
    A `.gitignore` already there (the user's own) is kept as it is.
    """
    home = env.home
    if home is None or not any(_inside(p, home) for p in paths):
        return
    marker = home / ".gitignore"
    if not os.path.lexists(marker):
        durable.atomic_write(marker, _IGNORE_ALL, mode=0o644)


def state_paths(cfg: Config, repo_root: Path, *extra: Path) -> tuple[str, ...]:
    """dasct's own directories inside the repository, as repo-relative posix paths.

    The home `.dasct`, and every environment's root, state directory, staging directory
    and SQLite file (and extra paths) that lie inside repo_root: never part of an
    enhancement.
    """
    found = [STATE_HOME]
    candidates = list(extra)
    for name in cfg.environments:
        env = environment(cfg, name, repo_root)
        candidates += [env.root, env.state_dir, env.staging]
        db = sqlite_file(env.database)
        if db is not None:
            candidates.append(db)
    base = Path(os.path.normpath(repo_root.absolute()))
    for path in candidates:
        full = Path(os.path.normpath(path.absolute()))
        if full != base and base in full.parents:
            found.append(full.relative_to(base).as_posix())
    return tuple(dict.fromkeys(found))
