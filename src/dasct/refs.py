"""Defect keys: which defects a commit message names."""

from __future__ import annotations

import re
from collections.abc import Sequence


def defect_keys(message: str, patterns: Sequence[re.Pattern[str]]) -> tuple[str, ...]:
    """The defects a full commit message names, in order of first mention, no duplicates.

    A key is the whole match, or the named group `key` when the pattern has one.
    """
    keys: dict[str, None] = {}
    for pattern in patterns:
        has_key = "key" in pattern.groupindex
        for match in pattern.finditer(message):
            key = match.group("key") if has_key else match.group(0)
            if key:
                keys.setdefault(key, None)
    return tuple(keys)
