"""The building blocks of the configuration schema: per-value validators and shared defaults.

A setting whose type is not enough declares its validator beside it
(`field(metadata=checked(fn))`); `fn` raises ValueError saying what is wrong with one value
(config.py turns that into one `FILE: `key`: ...` line). Shared by config.py and qaconfig.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Check = Callable[[Any], None]  # raises ValueError naming what is wrong with one value
_INT_MAX = 2**31 - 1


def checked(check: Check) -> dict[str, Check]:
    """Field metadata declaring a setting's validator (for each item of a list)."""
    return {"check": check}


def show(value: object, limit: int = 60) -> str:
    """value for a one-line message: quoted, escaped, and cut at limit characters."""
    text = repr(value)  # repr escapes newlines and every other unprintable character
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _matching(pattern: str, what: str) -> Check:
    compiled = re.compile(pattern)

    def check(value: str) -> None:
        if not compiled.fullmatch(value):
            raise ValueError(f"{show(value)} is not {what}")

    return check


def _between(low: int, high: int) -> Check:
    def check(value: int) -> None:
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}, not {value}")

    return check


def _non_empty(value: str) -> None:
    if not value.strip():
        raise ValueError("must not be empty")


def _time_zone(value: str) -> None:
    from dasct.migrate import windows  # only when a zone is configured: off the hook path

    windows.zone(value)


def _window(value: str) -> None:
    from dasct.migrate import windows

    windows.parse_window(value)


def _ssh_target(value: str) -> None:
    if value:  # "" is a local environment
        from dasct.remote import hosts

        hosts.check_target(value)


def _on_failure(value: str) -> None:
    if value not in ("halt", "rollback-all"):
        raise ValueError(f"must be 'halt' or 'rollback-all', not {value!r}")


def _freeze(value: str) -> None:
    from dasct.migrate import windows

    windows.parse_freeze(value)


def _command(value: str) -> None:
    import shlex

    try:
        argv = shlex.split(value)
    except ValueError as exc:  # an unclosed quote
        raise ValueError(f"{show(value)} is not a command: {exc}") from None
    if not argv:
        raise ValueError(f"{show(value)} is not a command")


def _environment_name(value: str) -> None:
    # The name travels in trigger files and directory names: the trigger format's rule.
    from dasct.migrate.trigger import ENV_PATTERN

    if not ENV_PATTERN.fullmatch(value):
        raise ValueError(f"{show(value)} is not an environment name "
                         f"({ENV_PATTERN.pattern})")


def _system_name(value: str) -> None:
    from dasct.migrate.trigger import NAME_PATTERN

    if not NAME_PATTERN.fullmatch(value):
        raise ValueError(f"{show(value)} is not a system name ({NAME_PATTERN.pattern})")


_jira_project = _matching(r"[A-Z][A-Z0-9_]+", "a Jira project key ([A-Z][A-Z0-9_]+, e.g. PROJ)")
_recipient = _matching(r"[^\s\x00-\x1f\x7f]+", "a recipient (no spaces or control characters)")
_env_var = _matching(r"[A-Za-z_][A-Za-z0-9_]*", "an environment variable name")
_env_glob = _matching(r"[A-Za-z0-9_*?\[\]!-]+", "an environment variable name or glob")
_day_count = _between(0, 36500)  # days: at most a century
# Full or abbreviated commit ids (sha1 or sha256), at least 7 digits as git abbreviates.
_commit_id = _matching(r"[0-9a-fA-F]{7,64}", "a commit id (7 to 64 hex digits)")


def _line_kind(value: str) -> None:
    from dasct.kinds import KINDS

    if value not in KINDS:
        raise ValueError(f"{show(value)} is not a line kind ({', '.join(KINDS)})")


DEFAULT_TEST_PATHS = ("test/*", "*/test/*", "tests/*", "*/tests/*", "testing/*",
                      "*/testing/*", "*_test.*", "test_*.py", "Test*.java", "*Test.java",
                      "*Tests.java", "*IT.java")
