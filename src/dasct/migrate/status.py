"""Where each enhancement stands in each environment: one state per (environment, enhancement).

`facts` reads, for one environment, every record the engine keeps (SOURCES, and nothing
else); `state_of` is the one function that turns those facts into the state of one
enhancement there. A new kind of record (sign-off, warranty claims) is one more field of
Facts, read in `facts`, and one more rule in `state_of`: every command that shows a state
(`dasct status`, `dasct where`) gets it from there. Read-only: nothing here takes the lock
or writes a file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dasct import audit
from dasct.config import Config
from dasct.migrate import inventory, journal, promotion, session, warranty, windows
from dasct.migrate import trigger as trig
from dasct.migrate import trigger_read as trigr
from dasct.migrate.environment import Environment, environment, per_host

# What `facts` reads, in the order `state_of` lets them decide (first match wins).
SOURCES: tuple[tuple[str, str], ...] = (
    ("needs-attention.json", "the escalation that blocks the environment (escalated)"),
    ("journal.jsonl", "a migration in flight, or left by a run that died (migrating)"),
    ("outcomes/<id>.json", "what a run settled: migrated, rolled-back, expired, withdrawn, "
     "escalated"),
    ("inventory.json", "deployed or reverted, with dates"),
    ("audit.jsonl (gate)", "in an environment that gates another (model): the sign-off of "
     "a migrated enhancement, awaiting sign-off / signed off / rejected (promotion.state)"),
    ("audit.jsonl (warranty)", "in one that gates none (production): the recorded warranty "
     "of a migrated enhancement, WP / claimed / CP (warranty.state), or awaiting customer "
     "sign-off (warranty.awaiting) when a customer role is configured"),
    ("staging triggers/<env>/<id>.json", "pending: scheduled, due, refused, expired"),
    ("audit.jsonl", "the last decision about a pending trigger: held (with why) or refused"),
    ("[environments.ENV] windows, freeze", "waiting-for-window, for a due trigger"),
    ("state triggers/<outcome>/<id>.json", "the defects and commits of a settled trigger"),
)

# Every state, in the order a trigger usually passes through them.
STATES = ("scheduled", "due", "waiting-for-window", "held", "refused", "migrating",
          "migrated", "awaiting sign-off", "signed off", "rejected",
          "awaiting customer sign-off", "rolled-back",
          "reverted", "withdrawn", "expired", "escalated", "absent")

# Audit events that say what the last run decided about a pending trigger.
_DECISIONS = {"held": "held", "trigger-refused": "refused", "not-run": "waiting-for-window",
              "migrate-begin": "attempted"}


def iso(when: float | datetime | None) -> str | None:
    """A time as status shows it: UTC ISO 8601 to the second (2026-11-24T01:00:00Z)."""
    if when is None:
        return None
    if isinstance(when, (int, float)):
        when = datetime.fromtimestamp(when, timezone.utc)
    return trig.format_time(when)


@dataclass(frozen=True)
class Enhancement:
    """What the records say about an enhancement, whatever the environment."""

    id: str
    defects: tuple[str, ...] = ()
    commits: tuple[str, ...] = ()

    @property
    def revision(self) -> str | None:
        """The git revision it brings: the last commit of its range (or its baseline)."""
        return self.commits[-1] if self.commits else None


@dataclass(frozen=True)
class State:
    """The state of one enhancement in one environment.

    date: when it entered that state (for scheduled, due and waiting-for-window: the time
    the trigger is scheduled for); warranty: WP or CP while deployed, else None.
    """

    environment: str
    enhancement: str
    state: str
    date: str | None = None
    detail: str = ""
    warranty: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The documented JSON shape (docs/inventory.md)."""
        return {"state": self.state, "date": self.date, "detail": self.detail,
                "warranty": self.warranty}


@dataclass
class Facts:
    """Everything the engine recorded about one environment, read once (see SOURCES)."""

    env: Environment
    now: datetime
    attention: dict[str, Any] | None = None
    in_flight: str | None = None
    outcomes: dict[str, dict[str, Any]] = field(default_factory=dict)
    deployments: dict[str, dict[str, Any]] = field(default_factory=dict)
    staged: dict[str, trig.Trigger | str] = field(default_factory=dict)  # str: refused, why
    decisions: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # kind, time, why
    window: windows.Decision = field(default_factory=lambda: windows.Decision(True, ""))
    enhancements: dict[str, Enhancement] = field(default_factory=dict)
    signoff: dict[str, promotion.State] = field(default_factory=dict)  # a gate's, by id
    warranty: dict[str, warranty.State] = field(default_factory=dict)  # recorded, by id
    awaiting_customer: set[str] = field(default_factory=set)  # deployed, not signed yet

    def ids(self) -> list[str]:
        """The enhancements this environment knows of (revert triggers are not ones)."""
        found = {*self.deployments, *self.staged}
        found |= {tid for tid, o in self.outcomes.items() if o.get("kind") != "revert"}
        return sorted(found)


def settled_trigger(env: Environment, path: Path) -> trig.Trigger | None:
    """A trigger file the engine settled (state/triggers/<outcome>/<id>.json), or None.

    Its integrity is checked as the engine checks an archived trigger (digest, no key).
    trigger.parse refuses a file under `triggers/<dir>/` whose dir is not its environment
    (a staging rule), and there dir is the outcome: so it is given the file's name alone.
    """
    try:
        return trigr.parse(trigr.read_document(path), Path(path.name), environments=[env.name],
                          key=None, require_signature=False)
    except trig.TriggerError:
        return None


def _settled_triggers(env: Environment) -> dict[str, Enhancement]:
    found: dict[str, Enhancement] = {}
    for path in sorted((env.state_dir / "triggers").glob("*/*.json")):
        t = settled_trigger(env, path)
        if t is not None:  # else shown from its outcome alone; its defects are unknown
            found[t.id] = Enhancement(t.id, t.defects, t.commits)
    return found


def _outcomes(state_dir: Path) -> dict[str, dict[str, Any]]:
    found = {}
    for path in sorted((state_dir / "outcomes").glob("*.json")):
        doc = inventory.outcome(state_dir, path.stem)
        if doc is not None:
            found[path.stem] = doc
    return found


def _decisions(state_dir: Path) -> dict[str, tuple[str, str, str]]:
    # The last word per trigger wins: a trigger held by one run and let through by the
    # next is not held any more.
    last: dict[str, tuple[str, str, str]] = {}
    for record in audit.records(state_dir):
        kind = _DECISIONS.get(str(record.get("event")))
        fields = record.get("fields") or {}
        if kind is None or not isinstance(fields, dict):
            continue
        when = str(record.get("time", ""))
        tids = fields.get("due", []) if kind == "waiting-for-window" else [fields.get("trigger")]
        for tid in tids if isinstance(tids, list) else []:
            if isinstance(tid, str):
                last[tid] = (kind, when, str(fields.get("reason", "")))
    return last


def facts(env: Environment, now: datetime | None = None) -> Facts:
    """Read every source of SOURCES for env (an environment never run has none)."""
    now = now or datetime.now(timezone.utc)
    f = Facts(env=env, now=now)
    state = env.state_dir
    f.attention = session.needs_attention(state)
    records = journal.pending(state)
    f.in_flight = str(records[0].get("trigger")) if records else None
    f.outcomes = _outcomes(state)
    f.deployments = inventory.load(state)["deployments"]
    f.decisions = _decisions(state)
    f.window = windows.check(now, windows=env.config.windows, freeze=env.config.freeze,
                             timezone=env.config.timezone)
    f.enhancements = _settled_triggers(env)
    for tid, dep in f.deployments.items():
        f.enhancements.setdefault(tid, Enhancement(tid, tuple(dep.get("defects", ())),
                                                   tuple(dep.get("commits", ()))))
    deployed = [t for t, d in f.deployments.items() if d.get("status") == "deployed"]
    for tid in deployed:
        if env.gates:
            signed = promotion.state(env, tid)
            if signed is not None:
                f.signoff[tid] = signed
        if warranty.applies(env):
            kept = warranty.state(env, tid)
            if kept is not None:
                f.warranty[tid] = kept
            elif warranty.awaiting(env, tid):
                f.awaiting_customer.add(tid)
    for path in trig.pending(env.staging, env.name):
        if path.stem in f.outcomes:
            continue  # settled; the next run moves the file out of staging
        try:
            t = trigr.load(path, environments=[env.name], key=env.key,
                          previous_keys=env.previous_keys,
                          require_signature=env.require_signature)
        except trig.TriggerError as exc:
            f.staged[path.stem] = str(exc)
            continue
        f.staged[t.id] = t
        f.enhancements[t.id] = Enhancement(t.id, t.defects, t.commits)
    return f


def state_of(f: Facts, tid: str) -> State:
    """The state of enhancement tid in f's environment; the one place a state is decided."""
    name = f.env.name

    def made(state: str, date: float | datetime | str | None = None, detail: str = "",
             warranty: str | None = None) -> State:
        return State(name, tid, state, date if isinstance(date, str) else iso(date), detail,
                     warranty)

    if f.attention is not None and f.attention.get("trigger") == tid:
        return made("escalated", f.attention.get("time"), str(f.attention.get("reason", "")))
    if f.in_flight == tid:
        return made("migrating", detail="a run is migrating it, or died doing so (the next "
                    "`migrate run` finishes or rolls it back)")
    done = f.outcomes.get(tid)
    dep = f.deployments.get(tid)
    if dep is not None and dep["status"] == "reverted":
        return made("reverted", dep.get("reverted_at"),
                    f"deployed {iso(dep['deployed_at'])}, then reverted")
    if dep is not None and dep["status"] == "deployed":
        signed = f.signoff.get(tid)
        if signed is not None:  # in a gate: what QA decided about it
            who = f" by {signed.who}" if signed.who else ""
            return made(signed.state, _audit_time(signed.when or "") or dep["deployed_at"],
                        f"migrated {iso(dep['deployed_at'])}{who}"
                        + (f": {signed.reason}" if signed.reason else ""))
        kept = f.warranty.get(tid)
        if kept is not None:
            return made("migrated", dep["deployed_at"], f"warranty {kept.state} since "
                        f"{_audit_time(kept.since) or kept.since}, until "
                        f"{_audit_time(kept.until) or kept.until}"
                        + (f", {kept.claims} claim(s)" if kept.claims else ""),
                        warranty=kept.state)
        if tid in f.awaiting_customer:
            return made("awaiting customer sign-off", dep["deployed_at"],
                        f"migrated {iso(dep['deployed_at'])}; its warranty starts at the "
                        f"customer's sign-off (`dasct signoff {tid} --env {name} --as "
                        "customer`)")
        return made("migrated", dep["deployed_at"])
    if done is not None:
        outcome = str(done.get("outcome"))
        detail = str(done.get("reason") or (f"expired {done['expires']}" if "expires" in done
                                            else ""))
        return made(outcome, done.get("time"), detail)
    staged = f.staged.get(tid)
    if isinstance(staged, str):
        return made("refused", detail=staged)
    if staged is None:
        return made("absent")
    if staged.expires <= f.now:
        return made("expired", staged.expires, "not run; the next run records it")
    if staged.not_before > f.now:
        return made("scheduled", staged.not_before)
    kind, when, why = f.decisions.get(tid, ("", "", ""))
    if kind in ("held", "refused"):
        return made(kind, _audit_time(when), why)
    if not f.window.allowed:
        return made("waiting-for-window", staged.not_before, f.window.reason)
    return made("due", staged.not_before, "runs at the next `migrate run`")


def _audit_time(text: str) -> str | None:
    try:
        return iso(datetime.fromisoformat(text))
    except ValueError:
        return None


@dataclass(frozen=True)
class Report:
    """Every enhancement any environment knows of, and its state in each of them."""

    environments: tuple[str, ...]
    enhancements: tuple[Enhancement, ...]
    states: dict[tuple[str, str], State]  # (enhancement, environment) -> state

    def state(self, tid: str, env: str) -> State:
        """The state of tid in env."""
        return self.states[(tid, env)]


def report(cfg: Config, repo_root: Path, *, now: datetime | None = None) -> Report:
    """The states of every enhancement in every configured environment."""
    now = now or datetime.now(timezone.utc)
    views = [v for n in cfg.environments for v in per_host(environment(cfg, n, repo_root))]
    names = tuple(v.name for v in views)
    every = [facts(v, now) for v in views]
    ids = {tid for f in every for tid in f.ids()}
    info = {tid: Enhancement(tid) for tid in ids}
    for f in every:
        for tid, e in f.enhancements.items():
            if tid in ids and not info[tid].commits:
                info[tid] = e
    states = {(tid, f.env.name): state_of(f, tid) for f in every for tid in ids}

    def first_date(e: Enhancement) -> tuple[str, str]:
        dates = [s.date for (t, _), s in states.items() if t == e.id and s.date]
        return (min(dates) if dates else "9999", e.id)

    return Report(names, tuple(sorted(info.values(), key=first_date)), states)
