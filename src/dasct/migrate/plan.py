"""Which due triggers run, in which order, and which are held (conflicts, dependencies)."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from dasct.migrate import inventory
from dasct.migrate import trigger as trig
from dasct.migrate import trigger_check as trigc
from dasct.migrate import trigger_read as trigr
from dasct.migrate.environment import Environment


@dataclass
class Scan:
    """The triggers waiting in staging for one environment, sorted out."""

    due: list[trig.Trigger] = field(default_factory=list)
    waiting: list[trig.Trigger] = field(default_factory=list)
    expired: list[trig.Trigger] = field(default_factory=list)
    refused: list[tuple[Path, str]] = field(default_factory=list)
    settled: list[tuple[Path, str]] = field(default_factory=list)


def scan(env: Environment, now: datetime, *, honour_expiry: bool = True) -> Scan:
    """Read and verify every pending trigger of env; sort them by schedule.

    honour_expiry false (the pull-mode agent's install): a trigger past its `expires` is
    due all the same. Its release's signed TUF metadata, which expires on its own and was
    verified when the agent downloaded it, bounds its age instead (docs/agent.md).
    """
    found = Scan()
    for path in trig.pending(env.staging, env.name):
        done = inventory.outcome(env.state_dir, path.stem)
        if done is not None:
            found.settled.append((path, str(done["outcome"])))
            continue
        try:
            t = trigr.load(path, environments=[env.name], key=env.key,
                          previous_keys=env.previous_keys,
                          require_signature=env.require_signature)
        except trig.TriggerError as exc:
            found.refused.append((path, str(exc)))
            continue
        if honour_expiry and t.expires <= now:
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


# What a change declares its scripts touch beyond what reading them finds (a table written
# by a function, say): comment lines `-- dasct-archive: schema.table, other` in its deploy
# or revert script. `-- dasct-archive: whole-database` archives the whole database.
_DECLARED = re.compile(r"(?im)^[ \t]*--[ \t]*dasct-archive:[ \t]*(.*?)[ \t]*$")
WHOLE_DATABASE = "whole-database"


def declared_objects(text: str) -> list[str]:
    """The objects a script declares with `-- dasct-archive:` lines, in order."""
    names: list[str] = []
    for m in _DECLARED.finditer(text):
        names += [n.strip() for n in m.group(1).split(",") if n.strip()]
    return list(dict.fromkeys(names))


def sql_objects(t: trig.Trigger) -> set[str]:
    """The SQL changes of t and the objects its deploy scripts create, alter, drop or
    declare."""
    objects = {f"change {c.name}" for c in t.sql}
    for change in t.sql:
        text = trigc.read_payload(t.staging, change.deploy).decode(errors="replace")
        objects |= {f"object {m.lower().replace(chr(34), '')}" for m in _DDL.findall(text)}
        objects |= {f"object {n.lower().replace(chr(34), '')}" for n in declared_objects(text)
                    if n != WHOLE_DATABASE}
    return objects


_ABSENT = ""  # the state of a path with no file


def needs_before(t: trig.Trigger) -> dict[str, str]:
    """path -> the sha256 t needs there before it runs (_ABSENT: nothing may be there)."""
    need: dict[str, str] = {}
    for f in t.files:
        if f.op == "rename" and f.old_path is not None:
            need[f.old_path] = f.pre_sha256 or _ABSENT
        need[f.path] = _ABSENT if f.op in ("add", "rename") else f.pre_sha256 or _ABSENT
    return need


def leaves_after(t: trig.Trigger) -> dict[str, str]:
    """path -> the sha256 t leaves there (_ABSENT: it removes the file)."""
    leave: dict[str, str] = {}
    for f in t.files:
        if f.op == "rename" and f.old_path is not None:
            leave[f.old_path] = _ABSENT
        leave[f.path] = f.post_sha256 or _ABSENT
    return leave


def chains(after: dict[str, str], before: dict[str, str]) -> bool:
    """Whether a trigger needing `before` runs right after one leaving `after`: on every
    path both touch the pre-image is the post-image, and on one of them that is a content
    (a baseline, then a range from the same revision). Agreeing only on absent files proves
    no order: a delete then an add agree both ways round."""
    shared = after.keys() & before.keys()
    return (all(after[p] == before[p] for p in shared)
            and any(after[p] != _ABSENT for p in shared))


@dataclass
class Plan:
    """Which due triggers run, in order, which are held (with why), and for each that runs
    the triggers of the same batch it needs migrated first (declared or implied)."""

    order: list[trig.Trigger]
    held: dict[str, str]
    needs: dict[str, set[str]]


@dataclass(frozen=True)
class _Files:
    """What each due trigger needs before and leaves after, per path (computed once)."""

    before: dict[str, dict[str, str]]
    after: dict[str, dict[str, str]]


def _implied(due: list[trig.Trigger], declared: dict[str, set[str]], files: _Files
             ) -> dict[str, set[str]]:
    """declared plus, for each pair the declared ones leave unordered that chains one way
    only, the first before the second."""
    needs = {tid: set(deps) for tid, deps in declared.items()}
    ordered = _ahead(declared)
    for i, a in enumerate(due):
        for b in due[i + 1:]:
            if a.id in ordered[b.id] or b.id in ordered[a.id]:
                continue
            ab = chains(files.after[a.id], files.before[b.id])
            ba = chains(files.after[b.id], files.before[a.id])
            if ab != ba:
                first, then = (a, b) if ab else (b, a)
                needs[then.id].add(first.id)
    return needs


def _ahead(needs: dict[str, set[str]]) -> dict[str, set[str]]:
    """id -> every id of the batch that runs before it, directly or through others."""
    ahead: dict[str, set[str]] = {}
    for tid in needs:
        seen: set[str] = set()
        stack = list(needs[tid])
        while stack:
            other = stack.pop()
            if other not in seen:
                seen.add(other)
                stack += needs.get(other, ())
        ahead[tid] = seen
    return ahead


def plan(env: Environment, due: list[trig.Trigger]) -> Plan:
    """Split due triggers into those that run (dependencies first) and those held, with why.

    Two triggers that touch the same file or SQL object run one after the other when one
    depends on the other, declared (`depends_on`) or implied (its pre-images are the
    other's post-images); otherwise both are held. Along such an order, a trigger whose
    pre-image is not what the one before it leaves is held.
    """
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
    files = _Files({t.id: needs_before(t) for t in due}, {t.id: leaves_after(t) for t in due})
    needs = _implied(due, {t.id: {d for d in t.depends_on if d in batch} for t in due}, files)
    ahead = _ahead(needs)
    for i, a in enumerate(due):
        for b in due[i + 1:]:
            reasons: list[str] = []
            if a.id not in ahead[b.id] and b.id not in ahead[a.id]:
                shared = files.after[a.id].keys() & files.after[b.id].keys()
                reasons += [f"same file {p}" for p in sorted(shared)]
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
    _check_chains(due, ahead, files, hold)
    changed = True
    while changed:  # a trigger whose dependency is held waits with it
        changed = False
        for t in due:
            blocked = sorted(d for d in needs[t.id] if d in held)
            if t.id not in held and blocked:
                hold(t.id, f"depends on {blocked[0]}, which is held")
                changed = True
    order: list[trig.Trigger] = []
    placed: set[str] = set()
    remaining = [t for t in due if t.id not in held]
    while remaining:
        ready = [t for t in remaining if needs[t.id] <= placed]
        if not ready:
            for t in remaining:
                hold(t.id, "circular dependency")
            break
        order.append(ready[0])
        placed.add(ready[0].id)
        remaining.remove(ready[0])
    return Plan(order, held, {t.id: needs[t.id] for t in order})


def _check_chains(due: list[trig.Trigger], ahead: dict[str, set[str]], files: _Files,
                  hold: Callable[[str, str], None]) -> None:
    """Hold a trigger whose pre-image of a path is not what the one before it leaves there.

    Only the later one: the earlier applies (or not) on its own.
    """
    touching: dict[str, list[trig.Trigger]] = {}
    for t in due:
        for p in files.after[t.id]:
            touching.setdefault(p, []).append(t)
    for path, ts in sorted(touching.items()):
        if len(ts) < 2 or any(a.id not in ahead[b.id] and b.id not in ahead[a.id]
                              for i, a in enumerate(ts) for b in ts[i + 1:]):
            continue  # one trigger, or unordered ones (already held as conflicting)
        # Along a dependency chain each trigger has more triggers ahead than the one before.
        in_order = sorted(ts, key=lambda t: len(ahead[t.id]))
        for a, b in itertools.pairwise(in_order):
            if files.after[a.id][path] != files.before[b.id][path]:
                hold(b.id, f"conflicts with {a.id} ({b.id}'s pre-image of {path} is not "
                           f"what {a.id} leaves there)")
