"""Configuration: one `[tool.dasct]` table in pyproject.toml, or `.dasct.toml` (it wins).

Each section is a frozen dataclass; the loader derives validation from the dataclass
fields, so adding a setting is adding a field with its default. Unknown keys and wrong
types are ConfigError naming the file and the dotted key.
"""

from __future__ import annotations

import dataclasses
import re
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dasct.errors import ConfigError
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


@dataclass(frozen=True)
class DefectsConfig:
    """How a commit message names the defects it fixes."""

    patterns: tuple[str, ...] = ()  # replace the generic Jira-style default when set
    jira_projects: tuple[str, ...] = ()  # sugar for \bPROJ-\d+\b; also replaces the default
    github: bool = True  # GitHub closing keywords (fixes #12)

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


@dataclass(frozen=True)
class CheckConfig:
    """Commit-time behaviour."""

    strict: bool = False  # a touch fails the hook; so does an internal error
    budget_seconds: float = DEFAULT_BUDGET  # past it the commit-time check stops (one line)


@dataclass(frozen=True)
class EnvironmentConfig:
    """One target environment of the migration engine (model, production, ...).

    Relative paths are relative to the repository root (where the config lives).
    """

    root: str = ""  # the target's root directory; default .dasct/env/<name>/root
    database: str = ""  # sqlite:///path or postgresql://...; default .dasct/env/<name>/db.sqlite
    state_dir: str = ""  # lock, journal, archives, audit log; default .dasct/env/<name>/state
    staging: str = ""  # where trigger files and their payloads wait; default .dasct/staging
    timezone: str = "UTC"
    windows: tuple[str, ...] = ()  # allowed windows, e.g. "23:00-05:00"; empty: any time
    freeze: tuple[str, ...] = ()  # freeze windows; a freeze wins over a window
    verify: tuple[str, ...] = ()  # shell-free commands (split with shlex) run after files
    recipients: tuple[str, ...] = ()
    retention_count: int = 5
    retention_days: int = 30
    warranty_days: int = 30


def _default_environments() -> dict[str, EnvironmentConfig]:
    return {"model": EnvironmentConfig(), "production": EnvironmentConfig()}


@dataclass(frozen=True)
class MigrateConfig:
    """How enhancements become trigger files."""

    system: str = "app"  # the target system's name written into triggers
    sql_dir: str = "db"  # Sqitch-style: deploy/NAME.sql, revert/NAME.sql, verify/NAME.sql
    commands_file: str = "deploy/commands.toml"  # [[restart]] and [[health]] commands
    signing_key_env: str = "DASCT_TRIGGER_KEY"  # HMAC-SHA256 key; never stored anywhere
    require_signature: bool = False
    expiry_hours: int = 72  # a trigger not run by then is reported, not run


@dataclass(frozen=True)
class Config:
    """The whole configuration; `source` names the file it came from (or 'defaults')."""

    defects: DefectsConfig = field(default_factory=DefectsConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    check: CheckConfig = field(default_factory=CheckConfig)
    environments: dict[str, EnvironmentConfig] = field(default_factory=_default_environments)
    migrate: MigrateConfig = field(default_factory=MigrateConfig)
    source: str = "defaults"


_SKIP = {"source"}


def _convert(value: Any, hint: Any, where: str, key: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: `{key}` must be a table")
        return _build(hint, value, where, key)
    if origin is tuple:
        item = typing.get_args(hint)[0]
        if not isinstance(value, list):
            raise ConfigError(f"{where}: `{key}` must be a list")
        return tuple(_convert(v, item, where, f"{key}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        _, item = typing.get_args(hint)
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: `{key}` must be a table")
        return {k: _convert(v, item, where, f"{key}.{k}") for k, v in value.items()}
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return _convert(value, args[0], where, key)
    scalars: dict[object, type | tuple[type, ...]] = {
        bool: bool, int: int, float: (int, float), str: str
    }
    expected = scalars.get(hint)
    if expected is None:
        raise ConfigError(f"{where}: `{key}` has an unsupported type")  # pragma: no cover
    if (hint is int and isinstance(value, bool)) or not isinstance(value, expected):
        raise ConfigError(f"{where}: `{key}` must be {hint.__name__}, not {type(value).__name__}")
    return value


def _build(cls: Any, data: dict[str, Any], where: str, prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)} - _SKIP
    kwargs = {}
    for key, value in data.items():
        dotted = f"{prefix}.{key}" if prefix else key
        if key not in names:
            raise ConfigError(f"{where}: unknown key `{dotted}`")
        kwargs[key] = _convert(value, hints[key], where, dotted)
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
    return dataclasses.replace(config, source=where)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


def load(root: Path) -> Config:
    """Load the configuration of the repository at root; defaults when there is none."""
    dasct_toml = root / ".dasct.toml"
    if dasct_toml.is_file():
        return parse(_read_toml(dasct_toml), str(dasct_toml))
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        data = _read_toml(pyproject).get("tool", {}).get("dasct")
        if data is not None:
            if not isinstance(data, dict):
                raise ConfigError(f"{pyproject}: `tool.dasct` must be a table")
            return parse(data, f"{pyproject} [tool.dasct]")
    return Config()
