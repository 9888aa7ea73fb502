"""Retention of archives: keep the last N and anything younger than D days, and never the
archive of an enhancement still deployed within its warranty."""

from __future__ import annotations

import time
from pathlib import Path

from dasct.migrate import archive, inventory


def prune(state_dir: Path, *, keep_count: int, keep_days: int, warranty_days: int,
          now: float | None = None) -> list[str]:
    """Remove the archives retention no longer keeps; return their enhancement ids."""
    now = time.time() if now is None else now
    deployments = inventory.load(state_dir)["deployments"]
    newest_first = list(reversed(archive.all_archives(state_dir)))
    removed = []
    for rank, a in enumerate(newest_first):
        dep = deployments.get(a.id)
        keep = (
            rank < keep_count
            or now - a.created < keep_days * 86400
            or (dep is not None
                and inventory.warranty_status(dep, warranty_days=warranty_days, now=now) == "WP")
        )
        if not keep:
            archive.remove(a)
            removed.append(a.id)
    return removed
