"""The inventory: which enhancement and content hash each deployed item has, per environment.

Items are `file:PATH` (sha256 of the content) and `sql:NAME` (sha256 of the deploy
script). Each deployment remembers the entries it replaced, so a revert puts them back.
`outcomes/<id>.json` records what happened to each trigger here (migrated, rolled-back,
expired, escalated, withdrawn), so a trigger is never applied twice.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from dasct import durable
from dasct.migrate import trigger as trig
from dasct.redact import scrub

INVENTORY = "inventory.json"


def load(state_dir: Path) -> dict[str, Any]:
    """The inventory document (empty when nothing was deployed yet)."""
    try:
        data: dict[str, Any] = json.loads((state_dir / INVENTORY).read_text())
    except FileNotFoundError:
        return {"items": {}, "deployments": {}}
    return data


def _save(state_dir: Path, data: dict[str, Any]) -> None:
    # Not redacted: the inventory holds only what triggers say (paths, hashes, defect keys,
    # commits), read back by revert; a path that happened to contain a secret-looking
    # value must not be rewritten.
    data_bytes = json.dumps(data, indent=1, sort_keys=True).encode()
    durable.atomic_write(state_dir / INVENTORY, data_bytes)


def items_of(t: trig.Trigger) -> dict[str, str | None]:
    """item -> the hash it has after t (None: t removes it)."""
    items: dict[str, str | None] = {}
    for change in t.sql:
        items[f"sql:{change.name}"] = change.deploy
    for f in t.files:
        if f.op == "rename" and f.old_path:
            items[f"file:{f.old_path}"] = None
        items[f"file:{f.path}"] = f.post_sha256
    return items


def record(state_dir: Path, t: trig.Trigger, *, when: float | None = None) -> None:
    """Record t as deployed (idempotent: a second call for the same id does nothing)."""
    data = load(state_dir)
    if t.id in data["deployments"] and data["deployments"][t.id]["status"] == "deployed":
        return
    when = time.time() if when is None else when
    previous = {}
    for item, sha in items_of(t).items():
        previous[item] = data["items"].get(item)
        if sha is None:
            data["items"].pop(item, None)
        else:
            data["items"][item] = {"enhancement": t.id, "sha256": sha, "deployed_at": when}
    data["deployments"][t.id] = {
        "deployed_at": when, "status": "deployed", "items": sorted(previous),
        "previous": previous, "defects": list(t.defects), "commits": list(t.commits),
    }
    _save(state_dir, data)


def unrecord(state_dir: Path, tid: str, *, when: float | None = None) -> None:
    """Mark tid reverted and give its items back their previous entries."""
    data = load(state_dir)
    dep = data["deployments"].get(tid)
    if dep is None or dep["status"] != "deployed":
        return
    for item, prior in dep["previous"].items():
        if prior is None:
            data["items"].pop(item, None)
        else:
            data["items"][item] = prior
    dep["status"] = "reverted"
    dep["reverted_at"] = time.time() if when is None else when
    _save(state_dir, data)


def later_overlapping(state_dir: Path, tid: str) -> list[str]:
    """Enhancements deployed after tid, still deployed, that changed one of its items.

    Newest first: the order a cascade reverts them in.
    """
    data = load(state_dir)
    dep = data["deployments"].get(tid)
    if dep is None:
        return []
    mine = set(dep["items"])
    later = [
        (other["deployed_at"], oid) for oid, other in data["deployments"].items()
        if oid != tid and other["status"] == "deployed"
        and other["deployed_at"] > dep["deployed_at"] and mine & set(other["items"])
    ]
    # An enhancement overlapping a later one is reverted too: follow the chain.
    found = {oid for _, oid in later}
    for _, oid in list(later):
        for deeper in later_overlapping(state_dir, oid):
            if deeper not in found:
                found.add(deeper)
                later.append((data["deployments"][deeper]["deployed_at"], deeper))
    return [oid for _, oid in sorted(later, reverse=True)]


def warranty_status(dep: dict[str, Any], *, warranty_days: int, now: float) -> str:
    """WP while the deployment is within its warranty, CP after; '-' when not deployed."""
    if dep["status"] != "deployed":
        return "-"
    return "WP" if now - dep["deployed_at"] < warranty_days * 86400 else "CP"


def outcome(state_dir: Path, tid: str) -> dict[str, Any] | None:
    """What happened to trigger tid in this environment, or None if it is still to run."""
    try:
        data: dict[str, Any] = json.loads((state_dir / "outcomes" / f"{tid}.json").read_text())
    except FileNotFoundError:
        return None
    return data


def set_outcome(state_dir: Path, tid: str, result: str, **fields: Any) -> None:
    """Record the final outcome of trigger tid (durably, before it leaves staging); its
    reason and problems are redacted (dasct.redact)."""
    doc = scrub({"trigger": tid, "outcome": result, "time": time.time(), **fields},
                keep=("trigger", "outcome", "reverts"))
    durable.atomic_write(state_dir / "outcomes" / f"{tid}.json", json.dumps(doc).encode())
