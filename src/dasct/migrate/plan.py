"""Which due triggers run, in which order, and which are held (conflicts, dependencies)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from dasct.migrate import inventory
from dasct.migrate import trigger as trig
from dasct.migrate.environment import Environment


@dataclass
class Scan:
    """The triggers waiting in staging for one environment, sorted out."""

    due: list[trig.Trigger] = field(default_factory=list)
    waiting: list[trig.Trigger] = field(default_factory=list)
    expired: list[trig.Trigger] = field(default_factory=list)
    refused: list[tuple[Path, str]] = field(default_factory=list)
    settled: list[tuple[Path, str]] = field(default_factory=list)


def scan(env: Environment, now: datetime) -> Scan:
    """Read and verify every pending trigger of env; sort them by schedule."""
    found = Scan()
    for path in trig.pending(env.staging, env.name):
        done = inventory.outcome(env.state_dir, path.stem)
        if done is not None:
            found.settled.append((path, str(done["outcome"])))
            continue
        try:
            t = trig.load(path, environments=[env.name], key=env.key,
                          previous_keys=env.previous_keys,
                          require_signature=env.require_signature)
        except trig.TriggerError as exc:
            found.refused.append((path, str(exc)))
            continue
        if t.expires <= now:
            found.expired.append(t)
        elif t.not_before > now:
            found.waiting.append(t)
        else:
            found.due.append(t)
    found.due.sort(key=lambda t: (t.not_before, t.id))
    return found


_DDL = re.compile(
    r"(?i)\b(?:create|alter|drop)\s+(?:or\s+replace\s+)?(?:unique\s+)?(?:materialized\s+)?"
    r"(?:table|view|index|function|procedure|trigger|sequence|type|schema)\s+"
    r"(?:if\s+(?:not\s+)?exists\s+)?(?:concurrently\s+)?([\w.\"]+)"
)


def sql_objects(t: trig.Trigger) -> set[str]:
    """The SQL changes of t and the objects its deploy scripts create, alter or drop."""
    objects = {f"change {c.name}" for c in t.sql}
    for change in t.sql:
        text = trig.read_payload(t.staging, change.deploy).decode(errors="replace")
        objects |= {f"object {m.lower().replace(chr(34), '')}" for m in _DDL.findall(text)}
    return objects


def file_paths(t: trig.Trigger) -> set[str]:
    """Every target path t touches."""
    return {p for f in t.files for p in (f.path, f.old_path) if p is not None}


def plan(env: Environment, due: list[trig.Trigger]) -> tuple[list[trig.Trigger], dict[str, str]]:
    """Split due triggers into those that run (dependencies first) and those held, with why."""
    deployed = {tid for tid, dep in inventory.load(env.state_dir)["deployments"].items()
                if dep["status"] == "deployed"}
    batch = {t.id: t for t in due}
    held: dict[str, str] = {}

    def hold(tid: str, why: str) -> None:
        held[tid] = f"{held[tid]}; {why}" if tid in held else why

    objects: dict[str, set[str]] = {}
    for t in due:
        try:
            objects[t.id] = sql_objects(t)
        except trig.TriggerError as exc:
            hold(t.id, str(exc))
            objects[t.id] = set()
    for i, a in enumerate(due):
        for b in due[i + 1:]:
            reasons = [f"same file {p}" for p in sorted(file_paths(a) & file_paths(b))]
            reasons += [f"same SQL {o}" for o in sorted(objects[a.id] & objects[b.id])]
            if b.id in a.conflicts_with or a.id in b.conflicts_with:
                reasons.append("declared conflict")
            if reasons:
                hold(a.id, f"conflicts with {b.id} ({', '.join(reasons)})")
                hold(b.id, f"conflicts with {a.id} ({', '.join(reasons)})")
        for other in a.conflicts_with:
            if other in deployed:
                hold(a.id, f"declared conflict with {other}, which is deployed here")
        for dep in a.depends_on:
            if dep not in deployed and dep not in batch:
                hold(a.id, f"depends on {dep}, which is not deployed here")
    changed = True
    while changed:  # a trigger whose dependency is held waits with it
        changed = False
        for t in due:
            blocked = [d for d in t.depends_on if d in held]
            if t.id not in held and blocked:
                hold(t.id, f"depends on {blocked[0]}, which is held")
                changed = True
    order: list[trig.Trigger] = []
    placed: set[str] = set()
    remaining = [t for t in due if t.id not in held]
    while remaining:
        ready = [t for t in remaining if all(d in placed or d in deployed for d in t.depends_on)]
        if not ready:
            for t in remaining:
                hold(t.id, "circular dependency")
            break
        order.append(ready[0])
        placed.add(ready[0].id)
        remaining.remove(ready[0])
    return order, held
