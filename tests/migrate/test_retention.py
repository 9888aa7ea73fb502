"""Retention (dasct.migrate.retention) over every mix of archives: the archives of deployed
enhancements are kept first (the newest `retention_count`, every one under warranty),
anything younger than `retention_days` stays, and the archives that revert nothing (a
reverse trigger's, a reverted enhancement's) never displace a deployed one: adding any
number of them changes nothing about which deployed archives are kept."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from dasct.migrate import archive, retention

NOW = 1_800_000_000.0
DAY = 86400.0
KINDS = ("deployed", "reverted", "reverse")

# One archive: its kind and its age in days (its position breaks ties, newer later).
archives_strategy = st.lists(st.tuples(st.sampled_from(KINDS), st.integers(0, 12)),
                             max_size=9)


def build(state: Path, specs: list[tuple[int, str, int]]) -> dict[str, tuple[str, float]]:
    """Archives and an inventory in state for (position, kind, age) specs; id -> (kind,
    created). The id and creation time follow from the position alone."""
    made: dict[str, tuple[str, float]] = {}
    deployments = {}
    state.mkdir()
    for i, kind, age in specs:
        tid = f"revert-E{i}-1" if kind == "reverse" else f"E{i}"
        created = NOW - age * DAY - (100 - i)  # a later position is never older
        folder = archive.archives_dir(state) / tid
        folder.mkdir(parents=True)
        (folder / "manifest.json").write_text(json.dumps({"trigger": tid, "created": created}))
        if kind != "reverse":
            deployments[tid] = {"deployed_at": created, "status": kind, "items": [],
                                "previous": {}}
        made[tid] = (kind, created)
    (state / "inventory.json").write_text(json.dumps({"items": {}, "deployments": deployments}))
    return made


def prune(state: Path, count: int, days: int, warranty: int, pinned: list[str]) -> set[str]:
    retention.prune(state, keep_count=count, keep_days=days, warranty_days=warranty,
                    pinned=pinned, now=NOW)
    return {a.id for a in archive.all_archives(state)}


@settings(max_examples=80, deadline=None)
@given(kinds=archives_strategy, count=st.integers(0, 4), days=st.integers(0, 6),
       warranty=st.integers(0, 6), pin=st.one_of(st.none(), st.integers(0, 8)))
def test_deployed_archives_are_kept_first_and_never_displaced(
        kinds: list[tuple[str, int]], count: int, days: int, warranty: int, pin: int | None
        ) -> None:
    specs = [(i, kind, age) for i, (kind, age) in enumerate(kinds)]
    with tempfile.TemporaryDirectory() as tmp:
        made = build(Path(tmp) / "all", specs)
        ids = list(made)
        pinned = [ids[pin % len(ids)]] if pin is not None and ids else []
        kept = prune(Path(tmp) / "all", count, days, warranty, pinned)
        deployed = {tid for tid, (kind, _) in made.items() if kind == "deployed"}

        newest = sorted(deployed, key=lambda t: made[t][1], reverse=True)[:count]
        assert set(newest) <= kept
        for tid, (kind, created) in made.items():
            if NOW - created < days * DAY or tid in pinned:
                assert tid in kept, tid  # young, or pinned
            elif kind == "deployed" and NOW - created < warranty * DAY:
                assert tid in kept, tid  # under warranty
            elif kind != "deployed":
                assert tid not in kept, tid  # reverts nothing: first to go
            elif tid not in newest:
                assert tid not in kept, tid  # deployed, but past the count

        # The same deployed archives without any of the others: the same ones are kept.
        build(Path(tmp) / "alone", [s for s in specs if s[1] == "deployed"])
        alone = prune(Path(tmp) / "alone", count, days, warranty,
                      [t for t in pinned if t in deployed])
        assert kept & deployed == alone
