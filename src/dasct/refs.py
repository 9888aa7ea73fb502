"""Defect keys: which defects a commit message names."""

from __future__ import annotations

# re and collections only for typing: at the top they loaded before the commit-time check
# starts `git diff` (~7 ms later); whatever needs re at run time imports it after.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import re
    from collections.abc import Sequence
    from typing import Any

MAX_KEY_LENGTH = 100  # longer "keys" are a pattern matching prose, not a defect


def valid_key(key: object) -> bool:
    """Whether key is something defect_keys can return: short, printable text.

    The index checks the keys it reads back against this (a damaged file is not believed).
    """
    return type(key) is str and 0 < len(key) <= MAX_KEY_LENGTH and key.isprintable()


def defect_keys(message: str, patterns: Sequence[re.Pattern[str]]) -> tuple[str, ...]:
    """The defects a full commit message names, in order of first mention, no duplicates.

    A key is the whole match, or the named group `key` when the pattern has one; a match
    that is not a valid_key (empty, too long, control characters) names no defect.
    """
    keys: dict[str, None] = {}
    for pattern in patterns:
        has_key = "key" in pattern.groupindex
        for match in pattern.finditer(message):
            key = match.group("key") if has_key else match.group(0)
            if key and valid_key(key):
                keys.setdefault(key, None)
    return tuple(keys)


def pathological(pattern: str) -> str | None:
    """Why pattern can take exponential time in Python's backtracking matcher, or None.

    Refused: a repetition of variable length (`+`, `*`, `{m,n}`) inside another one that
    can repeat more than once, such as `(a+)+$` or `(\\w+\\s?)*`: the shape behind nearly
    every catastrophic-backtracking report. Possessive and atomic parts never backtrack
    and pass. Subtler slow patterns (overlapping alternatives) are bounded at commit time
    by `[check] budget_seconds`. pattern must already compile.
    """
    import importlib
    import sys

    # re's own parser (private, so without type stubs): the same reading of the pattern
    # as the matcher's, escapes and character classes included.
    names = ("re._parser", "re._constants") if sys.version_info >= (3, 11) else (
        "sre_parse", "sre_constants")
    parser, c = (importlib.import_module(name) for name in names)

    repeats = (c.MAX_REPEAT, c.MIN_REPEAT)

    def nested(items: Any, inside: bool) -> bool:
        for op, av in items:
            deeper = inside
            if op in repeats:
                low, high, body = av
                if high != low and inside:
                    return True
                parts, deeper = [body], inside or (high != low and high > 1)
            elif op is c.SUBPATTERN:
                parts = [av[-1]]
            elif op is c.BRANCH:
                parts = av[1]
            elif op in (c.ASSERT, c.ASSERT_NOT):
                parts = [av[1]]
            elif op is c.GROUPREF_EXISTS:
                parts = [branch for branch in av[1:] if branch is not None]
            else:
                continue  # a literal, a class, or a possessive or atomic part (`safe`)
            if any(nested(part, deeper) for part in parts):
                return True
        return False

    if nested(parser.parse(pattern), False):
        return ("nests a variable repetition inside another (as in `(a+)+`), which can "
                "take exponential time on some messages; write it without the nesting")
    return None
