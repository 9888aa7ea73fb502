"""The commands file of an enhancement: what runs after its files (`deploy/commands.toml`).

`trigger create` reads it at B and turns each entry into a command step of the trigger:

- `[[restart]]` restarts the system, `[[health]]` checks it answers;
- `[[verify]]` is the remote testing of the seed: a command run on the target that may be
  fed a predetermined input file and must give an expected exit status and, optionally,
  exactly an expected output; its response time is measured, and `max_seconds` makes a
  slow answer fail verification. The input and expected output are repository files at B,
  shipped with the trigger as content-addressed payloads, so the target needs no git.

Entries run by kind (every restart, then every health, then every verify), each in file
order. Every problem is one TriggerError naming the file, the revision and the key.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from dasct.migrate.trigger import (
    COMMAND_KINDS,
    NAME_PATTERN,
    StepCommand,
    TriggerError,
    path_problem,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

DEFAULT_TIMEOUT = 60.0
_KEYS = {"name", "argv", "timeout"}
_VERIFY_KEYS = _KEYS | {"input", "expect_output", "expect_exit", "max_seconds"}

# Given a repository path at B, store that file as a payload and return its sha256; None
# when the path is not a file at B.
StorePath = Callable[[str], "str | None"]


def parse(data: bytes, where: str, store: StorePath) -> list[StepCommand]:
    """The command steps of a commands file's bytes (see the module docstring)."""
    try:
        table = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise TriggerError(f"{where}: invalid TOML: {exc}") from None
    unknown = sorted(set(table) - set(COMMAND_KINDS))
    if unknown:
        raise TriggerError(f"{where}: unknown key `{unknown[0]}` "
                           "(expected [[restart]], [[health]] and [[verify]])")
    commands: list[StepCommand] = []
    for kind in COMMAND_KINDS:
        entries = table.get(kind, [])
        if not isinstance(entries, list):
            raise TriggerError(f"{where}: `{kind}` must be an array of tables ([[{kind}]])")
        for i, entry in enumerate(entries):
            key = f"{kind}[{i}]"
            if not isinstance(entry, dict):
                raise TriggerError(f"{where}: `{key}` must be a table")
            commands.append(_entry(entry, kind, f"{where}: `{key}", store))
    return commands


def _entry(entry: dict[str, Any], kind: str, at: str, store: StorePath) -> StepCommand:
    # `at` is "FILE at REV: `KIND[i]"; each message closes the backquote after the key.
    extra = sorted(set(entry) - (_VERIFY_KEYS if kind == "verify" else _KEYS))
    if extra:
        raise TriggerError(f"{at}.{extra[0]}` is not a key of [[{kind}]]")
    name, argv = entry.get("name"), entry.get("argv")
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise TriggerError(f"{at}.name` must be a simple name")
    if not (isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv)):
        raise TriggerError(f"{at}.argv` must be a non-empty list of strings")
    timeout = _seconds(entry.get("timeout", DEFAULT_TIMEOUT), f"{at}.timeout`")
    if kind != "verify":
        return StepCommand(name, tuple(argv), kind, timeout)  # type: ignore[arg-type]
    expect_exit = entry.get("expect_exit", 0)
    if isinstance(expect_exit, bool) or not isinstance(expect_exit, int) or not (
        0 <= expect_exit <= 255
    ):
        raise TriggerError(f"{at}.expect_exit` must be an exit status 0..255")
    limit = entry.get("max_seconds")
    max_seconds = None if limit is None else _seconds(limit, f"{at}.max_seconds`")
    if max_seconds is not None and max_seconds > timeout:
        raise TriggerError(f"{at}.max_seconds` is above its timeout ({timeout:g}s)")
    return StepCommand(
        name, tuple(argv), "verify", timeout,
        input=_payload(entry.get("input"), f"{at}.input`", store),
        expect_output=_payload(entry.get("expect_output"), f"{at}.expect_output`", store),
        expect_exit=expect_exit, max_seconds=max_seconds,
    )


def _seconds(value: object, at: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
        0 < value <= 86400
    ):
        raise TriggerError(f"{at} must be 0 < seconds <= 86400")
    return float(value)


def _payload(value: object, at: str, store: StorePath) -> str | None:
    """The payload sha256 of the repository file a verify entry names (None if unset)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise TriggerError(f"{at} must be a repository path")
    problem = path_problem(value)
    if problem:
        raise TriggerError(f"{at} {problem}: {value!r}")
    sha = store(value)
    if sha is None:
        raise TriggerError(f"{at} names {value!r}, which is not a file at this revision")
    return sha
