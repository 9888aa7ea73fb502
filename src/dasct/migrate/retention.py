"""Retention of archives: what is deployed is kept first.

An archive is what makes an enhancement revertible, so the budget of `retention_count`
is spent on the archives of enhancements still deployed (the newest first), and every one
of those under warranty is kept whatever the count. Any archive younger than
`retention_days` stays too. The other archives (a reverse trigger's, made by a revert,
and a reverted enhancement's) revert nothing: they count against no budget and are the
first to go, once they are older than `retention_days`.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from pathlib import Path

from dasct.migrate import archive, inventory


def prune(state_dir: Path, *, keep_count: int, keep_days: int, warranty_days: int,
          pinned: Collection[str] = (), now: float | None = None) -> list[str]:
    """Remove the archives retention no longer keeps; return their enhancement ids.

    pinned: archives kept whatever the rule (the one a needs-attention mark names).
    """
    now = time.time() if now is None else now
    deployments = inventory.load(state_dir)["deployments"]
    rank = 0  # among the archives of deployed enhancements, newest first
    removed = []
    for a in reversed(archive.all_archives(state_dir)):
        dep = deployments.get(a.id)
        keep = a.id in pinned or now - a.created < keep_days * 86400
        if dep is not None and dep["status"] == "deployed":
            keep = (keep or rank < keep_count
                    or inventory.warranty_status(dep, warranty_days=warranty_days,
                                                 now=now) == "WP")
            rank += 1
        if not keep:
            archive.remove(a)
            removed.append(a.id)
    return removed
