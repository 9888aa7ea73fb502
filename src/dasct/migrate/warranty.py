"""Warranty: after a migration into a final environment, `WP` for its warranty_days, then `CP`.

A final environment is one that gates no other (production by default; model, which
gates production, has no warranty). The transitions are records, not a computed label:
the engine starts the warranty right after a successful migration (`start`), or, when a
`customer` role is configured ([promotion.roles]), the customer's sign-off does
(customer.signoff, `begin`: since = the sign-off) and until then the enhancement is
`awaiting customer sign-off` (`awaiting`); the next
`migrate run` or `dasct warranty check` completes each one that is due (`check`). A claim
(`claim`: a defect reported against the enhancement during its warranty) is recorded and
notified; it extends nothing: the warranty still ends when it was due to, and the
completion says how many claims were made.

Audit events, in the environment's own log: `warranty-start` (trigger, since, until,
days), `warranty-claim` (trigger, reason, by), `warranty-complete` (trigger, since, until,
claims). Times are ISO 8601 UTC. Notifications: kinds `warranty` and `warranty-claim`.

Read API (no lock, no write):
- `state(env, tid) -> State | None`: `WP`, `claimed` (in warranty, with a claim) or `CP`,
  since when, until when and the number of claims; None when tid has no warranty in env
  (not migrated there, reverted, or env is not a final environment).
- `applies(env) -> bool`: whether env keeps warranties.
- `awaiting(env, tid) -> bool`: deployed in env, its warranty waiting for the customer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from dasct import audit, notify
from dasct.config import Config
from dasct.errors import DasctError
from dasct.migrate import inventory, lock, promotion, roles
from dasct.migrate import trigger as trig
from dasct.migrate.environment import Environment
from dasct.migrate.report import Reporter

START, CLAIM, COMPLETE = "warranty-start", "warranty-claim", "warranty-complete"
WP, CLAIMED, CP = "WP", "claimed", "CP"
Write = Callable[[str], None]


class WarrantyError(DasctError):
    """A claim or check that cannot be recorded; one line saying why."""


@dataclass(frozen=True)
class State:
    """An enhancement's warranty in one environment."""

    state: str  # WP, CLAIMED or CP
    since: str  # when this state began (ISO 8601 UTC)
    until: str  # when the warranty ends or ended
    claims: int


@dataclass
class _Warranty:
    since: str
    until: str
    claims: list[dict[str, Any]] = field(default_factory=list)
    complete: str | None = None


def clock() -> datetime:
    """Now, in UTC; the one clock warranty transitions are decided on (tests replace it)."""
    return datetime.now(timezone.utc)


def _iso(when: datetime) -> str:
    return when.astimezone(timezone.utc).isoformat(timespec="seconds")


def applies(env: Environment) -> bool:
    """Whether env keeps warranties: it gates no other environment."""
    return not env.gates


def _warranties(env: Environment) -> dict[str, _Warranty]:
    found: dict[str, _Warranty] = {}
    for record in audit.records(env.state_dir):
        f, event = record.get("fields") or {}, record.get("event")
        tid = str(f.get("trigger"))
        if event == START and tid not in found:
            found[tid] = _Warranty(str(f.get("since")), str(f.get("until")))
        elif event == CLAIM and tid in found:
            found[tid].claims.append({**f, "time": record.get("time")})
        elif event == COMPLETE and tid in found:
            found[tid].complete = str(record.get("time"))
    return found


def _deployed(env: Environment, tid: str) -> bool:
    dep = inventory.load(env.state_dir)["deployments"].get(tid)
    return dep is not None and dep.get("status") == "deployed"


def state(env: Environment, tid: str) -> State | None:
    """WP / claimed / CP of tid in env, or None when it has no warranty there."""
    w = _warranties(env).get(tid)
    if w is None or not applies(env) or (w.complete is None and not _deployed(env, tid)):
        return None
    if w.complete is not None:
        return State(CP, w.complete, w.until, len(w.claims))
    if w.claims:
        return State(CLAIMED, str(w.claims[-1]["time"]), w.until, len(w.claims))
    return State(WP, w.since, w.until, 0)


def start(env: Environment, report: Reporter, t: trig.Trigger) -> None:
    """Put t under warranty in env from its deployment (after a successful migration)."""
    dep = inventory.load(env.state_dir)["deployments"].get(t.id)
    if not applies(env) or dep is None or t.id in _warranties(env) or roles.awaits_customer(env):
        return
    begin(env, report, t.id, _deployed_at(dep))


def awaiting(env: Environment, tid: str) -> bool:
    """Whether tid is deployed in env and its warranty waits for the customer's sign-off."""
    return (applies(env) and roles.awaits_customer(env) and _deployed(env, tid)
            and tid not in _warranties(env) and tid not in roles.customer_signed(env))


def _deployed_at(dep: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp(float(dep["deployed_at"]), timezone.utc)


def begin(env: Environment, report: Reporter, tid: str, since: datetime) -> None:
    """Record tid's warranty-start in env from `since` and notify it (under env's lock)."""
    days = env.config.warranty_days
    until = since + timedelta(days=days)
    report.audit(START, trigger=tid, since=_iso(since), until=_iso(until), days=days)
    promotion.send(report, notify.WARRANTY, f"[{env.name}] {tid} under warranty (WP)",
                   f"Enhancement {tid} is under warranty in {env.name} for {days} day(s), "
                   f"until {_iso(until)}.", (), trigger=tid, state=WP, until=_iso(until))


def check(env: Environment, report: Reporter, *, now: datetime | None = None) -> list[str]:
    """Record every transition now due in env: WP for a deployment without one (a run that
    died between its commit and the warranty), CP for each warranty past its end.
    Returns the ids that became CP."""
    if not applies(env):
        return []
    now = now or clock()
    known = _warranties(env)
    signed = roles.customer_signed(env) if roles.awaits_customer(env) else None
    for tid, dep in sorted(inventory.load(env.state_dir)["deployments"].items()):
        if dep.get("status") != "deployed" or tid in known:
            continue
        if signed is None:
            begin(env, report, tid, _deployed_at(dep))
        elif tid in signed:  # the customer signed off, and the run died before the start
            begin(env, report, tid, datetime.fromisoformat(signed[tid].when))
    completed = []
    for tid, w in sorted(_warranties(env).items()):
        ends = datetime.fromisoformat(w.until)
        if w.complete is not None or ends > now or not _deployed(env, tid):
            continue
        report.audit(COMPLETE, trigger=tid, since=w.since, until=w.until, claims=len(w.claims))
        claims = f" {len(w.claims)} claim(s) were made during it." if w.claims else ""
        promotion.send(report, notify.WARRANTY, f"[{env.name}] {tid} complete (CP)",
                       f"The warranty of {tid} in {env.name} ended at {w.until}; it is "
                       f"complete.{claims}", (), trigger=tid, state=CP, claims=len(w.claims))
        completed.append(tid)
    return completed


def _owner() -> str:
    return f"dasct warranty ({audit.actor()})"


def check_now(env: Environment, *, now: datetime | None = None, write: Write = print
              ) -> list[str]:
    """`dasct warranty check`: check under env's lock, outside a run."""
    env.state_dir.mkdir(parents=True, exist_ok=True)
    with lock.held(env.state_dir, owner=_owner()):
        report = Reporter(env.state_dir, environment=env.name,
                          recipients=env.config.recipients, anchor=env.anchor)
        done = check(env, report, now=now)
        report.checkpoint()
        report.flush()
    for tid in done:
        write(f"{tid}: warranty complete in {env.name} (CP)")
    if not done:
        write(f"{env.name}: no warranty was due to complete")
    return done


def claim(env: Environment, tid: str, *, reason: str, repo_root: Path | None,
          write: Write = print) -> State:
    """Record a claim against tid's warranty in env (audited, notified to its developers
    when the repository is at hand); refused outside the warranty."""
    if not reason.strip():
        raise WarrantyError("a claim needs --reason: what went wrong")
    env.state_dir.mkdir(parents=True, exist_ok=True)
    with lock.held(env.state_dir, owner=_owner()):
        report = Reporter(env.state_dir, environment=env.name,
                          recipients=env.config.recipients, anchor=env.anchor)
        check(env, report)  # a warranty that ended is completed first, then refused
        now = state(env, tid)
        if now is None:
            raise WarrantyError(f"{tid} has no warranty in {env.name} (not migrated there, "
                                "reverted, or the environment keeps none)")
        if now.state == CP:
            raise WarrantyError(f"{tid}: its warranty in {env.name} ended at {now.until} (CP); "
                                "a claim after it is a new defect, not a warranty claim")
        commits = inventory.load(env.state_dir)["deployments"][tid].get("commits", [])
        developers = promotion.authors(repo_root, tid, commits) if repo_root else {}
        who = audit.actor()
        report.audit(CLAIM, trigger=tid, reason=reason, by=who)
        promotion.send(report, notify.WARRANTY_CLAIM, f"[{env.name}] warranty claim on {tid}",
                       f"A defect was reported against {tid} in {env.name} during its "
                       f"warranty: {reason}\nThe warranty still ends at {now.until}.",
                       sorted(developers), trigger=tid, reason=reason, by=who)
        report.checkpoint()
        report.flush()
    after = state(env, tid)
    assert after is not None
    write(f"{tid}: claim recorded in {env.name} ({after.claims} so far); the warranty still "
          f"ends at {after.until}")
    return after


def claims_from_fixes(cfg: Config, repo_root: Path, fixes: Iterable[tuple[str, Sequence[str]]],
                      *, write: Write = print) -> list[tuple[str, str, str]]:
    """`ci record`'s half of the warranty: a new fix commit (sha, the defects its message
    names) naming a defect of an enhancement under warranty in an environment whose state
    is at hand records a claim there, once per commit. The enhancement's own commits claim
    nothing. Returns (environment, enhancement, commit) for each claim recorded."""
    from dasct.migrate.environment import environment

    named = [(sha, set(defects)) for sha, defects in fixes if defects]
    made: list[tuple[str, str, str]] = []
    if not named:
        return made
    for name in cfg.environments:
        env = environment(cfg, name, repo_root)
        if not applies(env) or not (env.state_dir / inventory.INVENTORY).is_file():
            continue  # kept elsewhere (a runner of its own), or never migrated
        kept = _warranties(env)
        for tid, dep in inventory.load(env.state_dir)["deployments"].items():
            w = kept.get(tid)
            if dep.get("status") != "deployed" or w is None or w.complete is not None:
                continue
            told = " ".join(str(c.get("reason", "")) for c in w.claims)
            own = set(dep.get("commits", ()))
            for sha, defects in named:
                hit = sorted(defects & set(dep.get("defects", ())))
                if not hit or sha in own or sha[:12] in told:
                    continue
                claim(env, tid, reason=f"fix commit {sha[:12]} names {', '.join(hit)}",
                      repo_root=repo_root, write=write)
                made.append((name, tid, sha))
    return made
