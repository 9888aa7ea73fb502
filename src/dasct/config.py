"""Configuration: one `[tool.dasct]` table in pyproject.toml, or `.dasct.toml` (it wins).

Each section is a frozen dataclass; the loader derives validation from the dataclass
fields, so adding a setting is adding a field with its default. Every value is checked
by its field's type and by the generic rules below; a setting whose type is not enough
declares its validator beside it (`metadata=checked(fn)`, `fn` raises ValueError saying
what is wrong; a table of named sections may declare `check_key` for the names). A bad
file, key or value is one ConfigError line: `FILE: `key`: what is wrong`.

Generic rules: no string contains NUL, no string in a list is empty, integers are
0..2**31-1 and floats finite and >= 0 (every number here is a count or a duration).
"""

from __future__ import annotations

import dataclasses
import math
import re
import sys
import types
import typing
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from dasct.agentconfig import AgentConfig, PublishConfig
from dasct.config_base import (
    _INT_MAX,
    DEFAULT_TEST_PATHS,
    Check,
    _between,
    _command,
    _commit_id,
    _day_count,
    _env_glob,
    _env_var,
    _environment_name,
    _freeze,
    _jira_project,
    _line_kind,
    _matching,
    _non_empty,
    _on_failure,
    _recipient,
    _ssh_target,
    _system_name,
    _time_zone,
    _window,
    checked,
)
from dasct.errors import ConfigError
from dasct.qaconfig import QaConfig
from dasct.refs import pathological
from dasct.settings import DEFAULT_BUDGET

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

# Words shaped like Jira keys that are not defects: encodings, hashes, standards.
_NOT_JIRA = (
    "UTF|UCS|SHA|MD|ISO|CVE|CWE|RFC|TLS|SSL|HTTP|HTTPS|AES|RSA|DES|ECDSA|PEP|GPL|LGPL|AGPL"
    "|ECMA|IEC|IEEE|ANSI|CP|WIN|KOI|BASE|X|ES|H|COVID|IPV|PR|GH|ARM|V"
)
DEFAULT_JIRA_PATTERN = (
    rf"(?<![\w./-])(?!(?:{_NOT_JIRA})-)(?P<key>[A-Z][A-Z0-9_]{{1,19}}-[1-9][0-9]{{0,8}})(?![\w-])"
)
# GitHub's closing keywords; a bare "(#123)" in a squash-merge title is a PR number.
GITHUB_CLOSING_PATTERN = (
    r"(?i)(?<![\w-])(?:close[sd]?|fix(?:e[sd])?|resolve[sd]?):?[ \t]+"
    r"(?P<key>(?:[\w.-]+/[\w.-]+)?#[1-9][0-9]*)\b"
)
DEFAULT_EXCLUDE = (
    "CHANGELOG*", "CHANGES*", "HISTORY*", "NEWS*", "RELEASE_NOTES*",
    "changelog/*", "changelog.d/*", "changes/*", "newsfragments/*", "news/*",
    "*.lock", "package-lock.json", "npm-shrinkwrap.json", "pnpm-lock.yaml", "go.sum",
    "*.min.js", "*.min.css", "*_pb2.py", "*_pb2_grpc.py", "*.generated.*",
)

# dasct's own config and the repository's plumbing: not part of an enhancement.
DEFAULT_MIGRATE_EXCLUDE = (
    ".dasct.toml", ".gitignore", ".gitattributes", ".gitmodules", ".git-blame-ignore-revs",
    ".mailmap", ".github/*", ".gitlab-ci.yml", ".gitlab/*", ".pre-commit-config.yaml",
    ".pre-commit-hooks.yaml",
)


@dataclass(frozen=True)
class DefectsConfig:
    """How a commit message names the defects it fixes."""

    patterns: tuple[str, ...] = ()  # replace the generic Jira-style default when set
    # sugar for \bPROJ-\d+\b; also replaces the default
    jira_projects: tuple[str, ...] = field(default=(), metadata=checked(_jira_project))
    github: bool = True  # GitHub closing keywords (fixes #12)
    # Fix commits that link nothing (a bulk commit that named a defect); full or >= 7 hex.
    ignore_commits: tuple[str, ...] = field(default=(), metadata=checked(_commit_id))
    # A fix commit adding or rewriting more lines than this links nothing; 0: no limit.
    max_lines_per_commit: int = 0

    def pattern_strings(self) -> tuple[str, ...]:
        """The regexes (as text) a fix commit's message is matched against, in order."""
        pats: list[str] = list(self.patterns)
        if self.jira_projects:
            keys = "|".join(re.escape(p) for p in self.jira_projects)
            pats.append(rf"(?<![\w-])(?:{keys})-[0-9]+(?![\w-])")
        if not pats:
            pats.append(DEFAULT_JIRA_PATTERN)
        if self.github:
            pats.append(GITHUB_CLOSING_PATTERN)
        return tuple(pats)

    def compiled(self) -> tuple[re.Pattern[str], ...]:
        """The regexes a fix commit's message is matched against, in order."""
        return tuple(re.compile(p) for p in self.pattern_strings())


@dataclass(frozen=True)
class PathsConfig:
    """Paths never linked to a defect and never reported."""

    exclude: tuple[str, ...] = DEFAULT_EXCLUDE  # matching: see settings.Settings.excluded


DEFAULT_DOC_PATHS = ("docs/*", "*/docs/*", "doc/*", "*/doc/*", "*.md", "*.rst", "*.txt",
                     "*.adoc")


@dataclass(frozen=True)
class StatsConfig:
    """How `dasct stats` classes paths (globs as in [paths] exclude); the rest is source."""

    tests: tuple[str, ...] = DEFAULT_TEST_PATHS
    docs: tuple[str, ...] = DEFAULT_DOC_PATHS


@dataclass(frozen=True)
class CheckConfig:
    """Commit-time behaviour."""

    strict: bool = False  # a touch fails the hook; so does an internal error
    budget_seconds: float = DEFAULT_BUDGET  # past it the commit-time check stops (one line)
    # CPU seconds the detached refresh of git's post-* hooks may spend before it is stopped
    # (refresh.in_background); 0: no limit. The foreground `dasct refresh` has none.
    refresh_cpu_seconds: int = field(default=600, metadata=checked(_between(0, 86400)))
    # The kinds of touched protected lines reported (warnings, tickets); --all: every kind.
    kinds: tuple[str, ...] = field(default=("code",), metadata=checked(_line_kind))


@dataclass(frozen=True)
class EnvironmentConfig:
    """One target environment of the migration engine (model, production, ...).

    Relative paths are relative to the repository root (where the config lives).
    """

    root: str = ""  # the target's root directory; default .dasct/env/<name>/root
    database: str = ""  # sqlite:///path or postgresql://...; default .dasct/env/<name>/db.sqlite
    state_dir: str = ""  # lock, journal, archives, audit log; default .dasct/env/<name>/state
    staging: str = ""  # where trigger files and their payloads wait; default .dasct/staging
    timezone: str = field(default="UTC", metadata=checked(_time_zone))
    # allowed windows, e.g. "23:00-05:00"; empty: any time (syntax: migrate/windows.py)
    windows: tuple[str, ...] = field(default=(), metadata=checked(_window))
    # freeze windows and date ranges; a freeze wins over a window
    freeze: tuple[str, ...] = field(default=(), metadata=checked(_freeze))
    # shell-free commands (split with shlex) run after files
    verify: tuple[str, ...] = field(default=(), metadata=checked(_command))
    recipients: tuple[str, ...] = field(default=(), metadata=checked(_recipient))
    retention_count: int = 5
    retention_days: int = field(default=30, metadata=checked(_day_count))
    warranty_days: int = field(default=30, metadata=checked(_day_count))
    # The environment that must have migrated and signed off what this one runs (see
    # gate_of; docs/promotion.md): "" the default (production is gated by model when both
    # are configured), "none" no gate, or an environment's name.
    promote_from: str = ""
    # A remote environment (docs/remote.md): the target host instead of a local root,
    # ssh://user@host:port/absolute/root, or a fleet of them (hosts, or a hosts file).
    target: str = field(default="", metadata=checked(_ssh_target))
    hosts: tuple[str, ...] = field(default=(), metadata=checked(_ssh_target))
    hosts_file: str = ""
    known_hosts: str = ""  # the pinned host keys (OpenSSH format); required for SSH
    ssh_key_env: str = field(default="DASCT_SSH_KEY", metadata=checked(_env_var))
    remote_python: str = field(default="python3", metadata=checked(_non_empty))
    remote_base: str = ""  # dasct's directory on the target; default ~/.dasct/<env>
    canary: int = field(default=1, metadata=checked(_between(0, 1000)))
    batch_size: int = field(default=1, metadata=checked(_between(1, 1000)))
    on_failure: str = field(default="halt", metadata=checked(_on_failure))
    connect_timeout: int = field(default=20, metadata=checked(_between(1, 600)))
    # The forensic trace (migrate/trace.py): the ring buffer's bounds, and whether the run
    # after a failure keeps every record.
    trace_records: int = field(default=5000, metadata=checked(_between(10, 10_000_000)))
    trace_minutes: int = field(default=60, metadata=checked(_between(1, 10080)))
    trace_full_after_failure: bool = True


def _default_environments() -> dict[str, EnvironmentConfig]:
    return {"model": EnvironmentConfig(), "production": EnvironmentConfig()}


@dataclass(frozen=True)
class MigrateConfig:
    """How enhancements become trigger files."""

    # the target system's name written into triggers
    system: str = field(default="app", metadata=checked(_system_name))
    # Sqitch-style: deploy/NAME.sql, revert/NAME.sql, verify/NAME.sql; "" for no SQL
    sql_dir: str = "db"
    # [[restart]] and [[health]] commands
    commands_file: str = field(default="deploy/commands.toml", metadata=checked(_non_empty))
    # HMAC-SHA256 key; never stored anywhere
    signing_key_env: str = field(default="DASCT_TRIGGER_KEY", metadata=checked(_env_var))
    # Variables holding previous keys, still accepted when verifying (key rotation).
    verify_key_envs: tuple[str, ...] = field(default=(), metadata=checked(_env_var))
    require_signature: bool = False
    # a trigger not run by then is reported, not run (at most ten years)
    expiry_hours: int = field(default=72, metadata=checked(_between(1, 87600)))
    exclude: tuple[str, ...] = DEFAULT_MIGRATE_EXCLUDE  # never packaged into a trigger


@dataclass(frozen=True)
class SecurityConfig:
    """Which environment variables are secret beyond those dasct knows (docs/security.md)."""

    # Names or globs of more secret variables: withheld from commands, values redacted.
    secret_env: tuple[str, ...] = field(default=(), metadata=checked(_env_glob))
    # Secret-looking variables a command needs (never the signing key); still redacted.
    pass_env: tuple[str, ...] = field(default=(), metadata=checked(_env_var))


@dataclass(frozen=True)
class AuditConfig:
    """How the audit log is anchored by signed checkpoints (docs/audit-and-notifications.md)."""

    # Ed25519 signer key or HMAC secret; never stored
    checkpoint_key_env: str = field(default="DASCT_AUDIT_KEY", metadata=checked(_env_var))
    checkpoint_public_keys: tuple[str, ...] = ()  # Ed25519 verifier keys name+id+base64
    checkpoint_copy: str = ""  # a directory outside the state directory for a second copy


# An identity as `dasct signoff` takes it: git's user.email (promotion.identity).
_signer = _matching(r"[^\s@<>]+@[^\s@<>]+", "an e-mail address (git's user.email)")


@dataclass(frozen=True)
class RolesConfig:
    """Who may sign as what (docs/promotion.md): an empty role restricts nothing, except
    that a configured customer role moves the warranty's start to the customer's sign-off."""

    # may sign off in a gate environment (model): the sign-off that promotes
    qa: tuple[str, ...] = field(default=(), metadata=checked(_signer))
    # may sign off in an environment that gates none (production), after its migration
    customer: tuple[str, ...] = field(default=(), metadata=checked(_signer))


@dataclass(frozen=True)
class PromotionConfig:
    """What promotion from a gate environment (model) into the next one takes."""

    # distinct approvers `dasct signoff` needs; an author of the enhancement cannot approve
    approvals: int = field(default=1, metadata=checked(_between(1, 100)))
    roles: RolesConfig = field(default_factory=RolesConfig)


@dataclass(frozen=True)
class Config:
    """The whole configuration; `source` names the file it came from (or 'defaults')."""

    defects: DefectsConfig = field(default_factory=DefectsConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    check: CheckConfig = field(default_factory=CheckConfig)
    stats: StatsConfig = field(default_factory=StatsConfig)
    environments: dict[str, EnvironmentConfig] = field(
        default_factory=_default_environments, metadata={"check_key": _environment_name})
    migrate: MigrateConfig = field(default_factory=MigrateConfig)
    security: SecurityConfig = field(default_factory=SecurityConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)
    qa: QaConfig = field(default_factory=QaConfig)
    promotion: PromotionConfig = field(default_factory=PromotionConfig)
    publish: PublishConfig = field(default_factory=PublishConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    source: str = "defaults"


_SKIP = {"source"}
_TOML_TYPES: dict[type, str] = {
    bool: "a boolean", int: "an integer", float: "a float", str: "a string", list: "a list",
    dict: "a table", datetime: "a date-time", date: "a date", time: "a time",
}


def _kind(value: object) -> str:
    return _TOML_TYPES.get(type(value), type(value).__name__)


def dotted(prefix: str, name: str) -> str:
    """The key `name` under `prefix` as TOML writes it (quoted when it is not bare)."""
    if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
        escaped = name.encode("unicode_escape").decode("ascii").replace('"', '\\"')
        name = f'"{escaped}"'
    return f"{prefix}.{name}" if prefix else name


def _fail(where: str, key: str, problem: str) -> ConfigError:
    return ConfigError(f"{where}: `{key}` {problem}")


def _validate(value: Any, check: Check | None, where: str, key: str) -> None:
    if check is None:
        return
    try:
        check(value)
    except ValueError as exc:
        raise ConfigError(f"{where}: `{key}`: {exc}") from None


def _scalar(value: Any, hint: Any, where: str, key: str, check: Check | None) -> Any:
    expected: dict[object, type | tuple[type, ...]] = {
        bool: bool, int: int, float: (int, float), str: str
    }
    wanted = expected.get(hint)
    if wanted is None:
        raise _fail(where, key, "has an unsupported type")  # pragma: no cover
    if isinstance(value, bool) is not (hint is bool) or not isinstance(value, wanted):
        raise _fail(where, key, f"must be {_TOML_TYPES[hint]}, not {_kind(value)}")
    if isinstance(value, int) and hint is float:
        value = float(value)
    _validate(value, check, where, key)  # first: a field's own bounds say more
    if isinstance(value, str) and "\x00" in value:
        raise _fail(where, key, "contains a NUL character")
    if isinstance(value, int) and hint is int and not 0 <= value <= _INT_MAX:
        raise _fail(where, key, f"must be between 0 and {_INT_MAX}, not {value}")
    if isinstance(value, float) and not (math.isfinite(value) and value >= 0):
        raise _fail(where, key, f"must be a finite number >= 0, not {value}")
    return value


def _convert(value: Any, hint: Any, where: str, key: str, meta: Any = None) -> Any:
    """Check value against the field type hint and its metadata; key is its dotted name."""
    meta = meta or {}
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise _fail(where, key, f"must be a table, not {_kind(value)}")
        return _build(hint, value, where, key)
    if origin is tuple:
        item = typing.get_args(hint)[0]
        if not isinstance(value, list):
            raise _fail(where, key, f"must be a list, not {_kind(value)}")
        items = []
        for i, v in enumerate(value):
            at = f"{key}[{i}]"
            if v == "":
                raise _fail(where, at, "must not be empty")
            items.append(_convert(v, item, where, at, meta))
        return tuple(items)
    if origin is dict:
        _, item = typing.get_args(hint)
        if not isinstance(value, dict):
            raise _fail(where, key, f"must be a table, not {_kind(value)}")
        out = {}
        for k, v in value.items():
            at = dotted(key, k)
            _validate(k, meta.get("check_key"), where, at)
            out[k] = _convert(v, item, where, at)
        return out
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return _convert(value, args[0], where, key, meta)
    return _scalar(value, hint, where, key, meta.get("check"))


def _build(cls: Any, data: dict[str, Any], where: str, prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in _SKIP}
    kwargs = {}
    for key, value in data.items():
        at = dotted(prefix, key)
        if key not in fields:
            raise ConfigError(f"{where}: unknown key `{at}`")
        kwargs[key] = _convert(value, hints[key], where, at, fields[key].metadata)
    return cls(**kwargs)


def parse(data: dict[str, Any], where: str) -> Config:
    """Validate a [tool.dasct] table and build the Config (where names the file)."""
    config: Config = _build(Config, data, where, "")
    for i, pattern in enumerate(config.defects.patterns):
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ConfigError(
                f"{where}: `defects.patterns[{i}]` is not a valid regex: {exc}"
            ) from None
        slow = pathological(pattern)
        if slow is not None:
            raise ConfigError(f"{where}: `defects.patterns[{i}]` {slow}")
    if not config.check.budget_seconds > 0:
        raise ConfigError(f"{where}: `check.budget_seconds` must be more than 0")
    _check_gates(config, where)
    return dataclasses.replace(config, source=where)


NO_GATE = "none"


def gate_of(config: Config, name: str) -> str | None:
    """The environment that gates environment `name` (promotion), or None.

    By default production is gated by model when both are configured; `promote_from`
    names another gate, or "none" for no gate.
    """
    chosen = config.environments[name].promote_from if name in config.environments else ""
    if chosen == NO_GATE:
        return None
    if chosen:
        return chosen
    both = "model" in config.environments and "production" in config.environments
    return "model" if name == "production" and both else None


def gated_by(config: Config, gate: str) -> list[str]:
    """The environments that environment `gate` gates (where its sign-offs promote to)."""
    return sorted(n for n in config.environments if gate_of(config, n) == gate)


def _check_gates(config: Config, where: str) -> None:
    for name in config.environments:
        gate, seen = gate_of(config, name), [name]
        key = f"environments.{name}.promote_from"
        if gate is not None and gate not in config.environments:
            raise ConfigError(f"{where}: `{key}`: {gate!r} is not a configured environment")
        while gate is not None:  # a cycle would gate every environment on another forever
            if gate in seen:
                raise ConfigError(f"{where}: `{key}`: the gates form a cycle "
                                  f"({' -> '.join([*seen, gate])})")
            seen.append(gate)
            gate = gate_of(config, gate)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 (byte {raw[exc.start]:#04x} at offset "
                          f"{exc.start}); TOML files are UTF-8") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: invalid TOML: nested too deeply") from None


def load(root: Path) -> Config:
    """Load the configuration of the repository at root; defaults when there is none."""
    dasct_toml = root / ".dasct.toml"
    if dasct_toml.is_file():
        return parse(_read_toml(dasct_toml), str(dasct_toml))
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        tool = _read_toml(pyproject).get("tool", {})
        if not isinstance(tool, dict):
            raise _fail(str(pyproject), "tool", f"must be a table, not {_kind(tool)}")
        data = tool.get("dasct")
        if data is not None:
            if not isinstance(data, dict):
                raise _fail(str(pyproject), "tool.dasct",
                            f"must be a table, not {_kind(data)}")
            return parse(data, f"{pyproject} [tool.dasct]")
    return Config()
