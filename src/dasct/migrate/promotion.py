"""Promotion: sign-off on a gate environment (model), and the gate the next one keeps.

An environment may be gated by another (`promote_from`, config.gate_of: by default
production by model). Its triggers are not built from git: `signoff` writes them, from
the trigger the gate migrated (trigger_write.retarget: same id, steps and payload
digests), once `[promotion] approvals` distinct people signed off there, none of them an
author of the enhancement's commits. Every decision is a record in the gate's audit log
(dasct.audit, hash-chained and anchored), which is what the engine reads back, verified,
before anything is touched (`refusal`): editing one file forges nothing.

Audit events, in the gate's log: `signoff` (trigger, digest, approver, email, comment),
`signoff-rejected` (trigger, approver, email, reason), `promoted` (trigger, into, digest,
from_digest, not_before, expires, approvers).

Read API (for status and reports; none of them locks or writes):
- `signoffs(gate, tid) -> list[Signoff]`: the sign-offs recorded for tid, oldest first.
- `state(gate, tid) -> State | None`: `awaiting sign-off`, `signed off` or `rejected`,
  with when and who (for `signed off`, the last approver; None while tid has not been
  migrated in gate, or was reverted or rolled back there).
- `refusal(env, trigger) -> str | None`: why env's engine refuses trigger (one line).
- `migrated_trigger(gate, tid) -> Trigger`: the trigger gate migrated, checked against the
  digest its audit log recorded (what sign-off promotes).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from dasct import audit, checkpoint, git, notify
from dasct.errors import DasctError
from dasct.migrate import inventory, lock, roles
from dasct.migrate import trigger as trig
from dasct.migrate import trigger_read as trigr
from dasct.migrate import trigger_write as trigw
from dasct.migrate.environment import Environment
from dasct.migrate.report import Reporter

SIGNOFF = "signoff"
REJECTED = "signoff-rejected"
PROMOTED = "promoted"
AWAITING, SIGNED_OFF, REJECTED_STATE = "awaiting sign-off", "signed off", "rejected"
Write = Callable[[str], None]
_IDENT = re.compile(r"(?P<name>.*?) ?<(?P<email>[^<>]*)> \d+ [+-]\d{4}")


class PromotionError(DasctError):
    """A sign-off or rejection that cannot be recorded; one line saying why."""


@dataclass(frozen=True)
class Signoff:
    """One approver's recorded acceptance of a migrated enhancement."""

    approver: str  # "Name <email>", from git's committer identity
    email: str
    when: str  # ISO 8601 UTC, the audit record's time
    comment: str
    digest: str  # of the gate's trigger that was signed off


@dataclass(frozen=True)
class State:
    """Where an enhancement stands in its gate's sign-off."""

    state: str  # AWAITING, SIGNED_OFF or REJECTED_STATE
    when: str | None
    who: str | None
    reason: str = ""


@dataclass
class _History:
    """What the gate's audit log says about one trigger id."""

    begun: str | None = None  # digest of the last migrate-begin
    migrated: str | None = None  # digest the gate migrated (kind migrate)
    migrated_at: str | None = None
    reverted_at: str | None = None
    rolled_back: str | None = None  # reason of the last rollback
    signoffs: list[Signoff] = field(default_factory=list)
    rejected: dict[str, Any] | None = None
    promoted: dict[str, dict[str, Any]] = field(default_factory=dict)  # into -> fields


def _history(gate: Environment, tid: str) -> _History:
    h = _History()
    for record in audit.records(gate.state_dir):
        f = record.get("fields") or {}
        event, when = record.get("event"), str(record.get("time"))
        if f.get("reverts") == tid and event == "migrated" and f.get("kind") == "revert":
            h.reverted_at = when
        if f.get("trigger") != tid:
            continue
        if event == "migrate-begin":
            h.begun = f.get("digest")
        elif event == "migrated" and f.get("kind") in ("migrate", None):
            h.migrated, h.migrated_at, h.reverted_at = h.begun, when, None
        elif event == "rolled-back":
            h.rolled_back = str(f.get("reason", ""))
        elif event == SIGNOFF:
            h.signoffs.append(Signoff(str(f.get("approver")), str(f.get("email")), when,
                                      str(f.get("comment", "")), str(f.get("digest"))))
        elif event == REJECTED and h.rejected is None:
            h.rejected = {**f, "time": when}
        elif event == PROMOTED:
            h.promoted[str(f.get("into"))] = f
    return h


def _approvers(h: _History) -> list[str]:
    return list(dict.fromkeys(s.email.lower() for s in h.signoffs if s.digest == h.migrated))


def signoffs(gate: Environment, tid: str) -> list[Signoff]:
    """The sign-offs recorded in gate for tid, oldest first."""
    return _history(gate, tid).signoffs


def state(gate: Environment, tid: str) -> State | None:
    """awaiting sign-off / signed off / rejected for tid in gate; None when tid is not
    (or no longer) migrated there."""
    h = _history(gate, tid)
    if h.rejected is not None:
        return State(REJECTED_STATE, h.rejected["time"], str(h.rejected.get("approver")),
                     str(h.rejected.get("reason", "")))
    if h.migrated is None or h.reverted_at is not None:
        return None
    if len(_approvers(h)) >= gate.approvals:
        last = h.signoffs[-1]
        return State(SIGNED_OFF, last.when, last.approver)
    return State(AWAITING, h.migrated_at, None)


def _not_passed(gate: Environment, tid: str, h: _History) -> str | None:
    """Why tid has not passed gate (not migrated, rolled back, reverted, rejected)."""
    if h.rejected is not None:
        return (f"{tid} was rejected in {gate.name} by {h.rejected.get('approver')} at "
                f"{h.rejected['time'][:19]}Z: {h.rejected.get('reason', '')}")
    if h.migrated is None:
        done = inventory.outcome(gate.state_dir, tid)
        if h.rolled_back is not None or (done and done.get("outcome") == "rolled-back"):
            return f"{tid} failed in {gate.name} and was rolled back: {h.rolled_back or ''}"
        if done is not None:
            return f"{tid} did not migrate in {gate.name} (it is {done.get('outcome')})"
        return f"{tid} has not been migrated in {gate.name}"
    dep = inventory.load(gate.state_dir)["deployments"].get(tid)
    if h.reverted_at is not None or (dep is not None and dep.get("status") == "reverted"):
        return f"{tid} was reverted in {gate.name} since its migration"
    if dep is None:
        # The audit log says migrated but the inventory does not know it: one of the two
        # was edited or lost, and neither is taken on its own word.
        return f"{tid}: {gate.name}'s audit log and inventory disagree on its migration"
    return None


def not_migrated(env: Environment, tid: str) -> str | None:
    """Why tid does not stand migrated in env (never migrated, rolled back, reverted,
    rejected, audit and inventory disagreeing), or None."""
    return _not_passed(env, tid, _history(env, tid))


def untrusted(gate: Environment) -> str | None:
    """Why gate's audit log cannot be trusted, or None."""
    problems = audit.verify(gate.state_dir)
    if not problems and gate.anchor is not None:
        problems = checkpoint.check(gate.state_dir, gate.anchor)[0]
    if problems:
        return (f"{gate.name}'s audit log does not verify ({problems[0]}); its sign-offs "
                f"cannot be trusted: run `dasct audit verify --env {gate.name}`")
    return None


def refusal(env: Environment, t: trig.Trigger) -> str | None:
    """Why env refuses t because of its gate (one line), or None when t may run."""
    gate = env.gate
    if gate is None:
        return None
    why = untrusted(gate)
    if why:
        return f"{t.id}: {why}"
    h = _history(gate, t.id)
    why = _not_passed(gate, t.id, h)
    if why:
        return f"{why}; {env.name} takes only what {gate.name} migrated and signed off"
    have = len(_approvers(h))
    if have < env.approvals:
        return (f"{t.id} has {have} of the {env.approvals} sign-off(s) it needs in "
                f"{gate.name} (`dasct signoff {t.id} --env {gate.name}`)")
    promoted = h.promoted.get(env.name)
    if promoted is None or promoted.get("digest") != t.digest:
        return (f"{t.id} is not the trigger `dasct signoff` promoted from {gate.name} (digest "
                f"{t.digest[:12]}): {env.name} never takes a trigger rebuilt from git")
    return None


def refused(env: Environment, due: Iterable[trig.Trigger]
            ) -> Iterator[tuple[trig.Trigger, str]]:
    """(trigger, why) for each of due that env's gate refuses."""
    for t in due:
        why = refusal(env, t)
        if why is not None:
            yield t, why


# ----------------------------------------------------------------------- people


def identity(repo_root: Path) -> tuple[str, str]:
    """(`Name <email>`, email) of the person running dasct: git's committer identity."""
    out = git.run("var", "GIT_COMMITTER_IDENT", cwd=repo_root).decode("utf-8", "replace")
    m = _IDENT.fullmatch(out.strip())
    if m is None or not m["email"]:
        raise PromotionError("cannot tell who you are: set git's user.name and user.email")
    return f"{m['name']} <{m['email']}>", m["email"]


def authors(repo_root: Path, tid: str, commits: Iterable[str]) -> dict[str, str]:
    """email (lowercase) -> `Name <email>` of the authors of an enhancement's commits."""
    wanted = list(dict.fromkeys(commits))
    if not wanted:
        return {}
    code, out = git.run_code("show", "-s", "--no-notes", "--format=%an%x00%ae", *wanted, "--",
                             cwd=repo_root)
    if code != 0:
        raise PromotionError(f"{tid}: its commits are not all in this repository, so who "
                             "wrote them cannot be checked; run this in the repository")
    found: dict[str, str] = {}
    for line in out.decode("utf-8", "replace").splitlines():
        name, _, email = line.partition("\0")
        found[email.lower()] = f"{name} <{email}>"
    return found


def send(report: Reporter, kind: str, subject: str, body: str,
          recipients: Iterable[str], **data: Any) -> None:
    """Queue a notification to the environment's recipients and `recipients` (the
    enhancement's developers), through the run's outbox, and audit it."""
    to = tuple(dict.fromkeys([*report.recipients, *recipients]))
    report.outbox.enqueue(notify.Notification(kind=kind, subject=subject, body=body,
                                              recipients=to, environment=report.environment,
                                              data=data))
    report.audit("notification-queued", kind=kind, subject=subject)


# ----------------------------------------------------------------------- sign-off


def _migrated_trigger(gate: Environment, tid: str, digest: str) -> trig.Trigger:
    """The trigger gate migrated, from its settled file, checked against the audit's digest."""
    settled = gate.state_dir / "triggers" / "migrated" / f"{tid}.json"
    # Parsed as if it still lay in staging, where its payloads are.
    where = trig.trigger_path(gate.staging, gate.name, tid)
    t = trigr.parse(trigr.read_document(settled), where, environments=[gate.name], key=gate.key,
                   require_signature=gate.require_signature, previous_keys=gate.previous_keys)
    if t.digest != digest:
        raise PromotionError(f"{settled}: not the trigger {gate.name}'s audit log says was "
                             f"migrated (digest {t.digest[:12]}, logged {digest[:12]})")
    return t


def migrated_trigger(gate: Environment, tid: str) -> trig.Trigger:
    """The trigger gate migrated as tid, verified against its audit log's digest."""
    digest = _history(gate, tid).migrated
    if digest is None:
        raise PromotionError(f"{tid} has not been migrated in {gate.name}")
    return _migrated_trigger(gate, tid, digest)


def _owner() -> str:
    return f"dasct signoff ({audit.actor()})"


def signoff(gate: Environment, tid: str, *, into: Iterable[Environment], repo_root: Path,
            comment: str = "", expiry_hours: int = 72, write: Write = print,
            now: datetime | None = None, role: str | None = None) -> list[trig.Trigger]:
    """Record the caller's sign-off of tid in gate (as `role`, checked against
    [promotion.roles]); when the approvals are met, write tid's trigger for each
    environment in `into` (retarget). Returns the triggers written."""
    if not trig.ID_PATTERN.fullmatch(tid):
        raise PromotionError(f"not a trigger id: {tid!r}")
    now = now or datetime.now(timezone.utc)
    targets = list(into)
    if not targets:
        raise PromotionError(f"{gate.name} gates no environment: there is nothing to sign off "
                             "for (see `promote_from` in docs/promotion.md)")
    unsigned = [env.name for env in targets if env.require_signature and env.key is None]
    if unsigned:
        raise PromotionError(f"cannot sign off: {unsigned[0]} requires signed triggers and no "
                             "signing key is set")
    who, email = identity(repo_root)
    roles.require(gate, email, who, role)
    gate.state_dir.mkdir(parents=True, exist_ok=True)
    with lock.held(gate.state_dir, owner=_owner()):
        why = untrusted(gate)
        h = _history(gate, tid)
        why = why or _not_passed(gate, tid, h)
        if why:
            raise PromotionError(f"cannot sign off: {why}")
        assert h.migrated is not None
        t = _migrated_trigger(gate, tid, h.migrated)
        wrote = authors(repo_root, tid, t.commits)
        if email.lower() in wrote:
            raise PromotionError(f"cannot sign off: {who} is an author of {tid} "
                                 f"({wrote[email.lower()]}); an author cannot approve")
        report = Reporter(gate.state_dir, environment=gate.name,
                          recipients=gate.config.recipients, anchor=gate.anchor)
        if email.lower() in _approvers(h):
            if len(_approvers(h)) < gate.approvals:
                raise PromotionError(f"cannot sign off: {who} already signed off {tid}; it "
                                     f"needs {gate.approvals} distinct approvers")
        else:
            report.audit(SIGNOFF, trigger=tid, digest=t.digest, approver=who, email=email,
                         comment=comment)
            h.signoffs.append(Signoff(who, email, now.isoformat(), comment, t.digest))
        have = len(_approvers(h))
        write(f"{tid}: signed off by {who} in {gate.name} ({have} of {gate.approvals})")
        promoted = []
        if have >= gate.approvals:
            promoted = [_promote(report, gate, t, h, env, now, expiry_hours, write)
                        for env in targets]
        report.checkpoint()
        report.flush()
    return [p for p in promoted if p is not None]


def _promote(report: Reporter, gate: Environment, t: trig.Trigger, h: _History,
             env: Environment, now: datetime, expiry_hours: int, write: Write
             ) -> trig.Trigger | None:
    """Write t's trigger for env (once): audited first, so a crash rewrites the same bytes."""
    done = h.promoted.get(env.name)
    if done is not None and inventory.outcome(env.state_dir, t.id) is not None:
        return None  # already promoted and settled there
    start = (datetime.strptime(str(done["not_before"]), "%Y-%m-%dT%H:%M:%SZ")
             .replace(tzinfo=timezone.utc) if done else now.replace(microsecond=0))
    length = timedelta(hours=expiry_hours)
    doc = trigw.retargeted(t, env.name, not_before=start, expiry=length, key=env.key)
    if done is None:
        report.audit(PROMOTED, trigger=t.id, into=env.name, digest=doc["digest"],
                     from_digest=t.digest, not_before=doc["not_before"],
                     expires=doc["expires"], approvers=_approvers(h))
        send(report, notify.PROMOTED, f"[{gate.name}] {t.id} signed off for {env.name}",
              f"Enhancement {t.id} was signed off in {gate.name} by "
              f"{', '.join(s.approver for s in h.signoffs)} and staged for {env.name}.",
              (), trigger=t.id, into=env.name)
    written = trigw.retarget(t, env.name, staging=env.staging, not_before=start,
                             expiry=length, key=env.key)
    write(f"{t.id}: promoted to {env.name}: {written.path}")
    return written


def reject(gate: Environment, tid: str, *, reason: str, repo_root: Path,
           write: Write = print, role: str | None = None) -> None:
    """Return tid to its developers: audited, notified to its commits' authors; blocks it."""
    if not reason.strip():
        raise PromotionError("a rejection needs --reason: the developers are told why")
    if not trig.ID_PATTERN.fullmatch(tid):
        raise PromotionError(f"not a trigger id: {tid!r}")
    who, email = identity(repo_root)
    roles.require(gate, email, who, role)
    gate.state_dir.mkdir(parents=True, exist_ok=True)
    with lock.held(gate.state_dir, owner=_owner()):
        why = untrusted(gate)
        if why:
            raise PromotionError(f"cannot reject: {why}")
        h = _history(gate, tid)
        if h.rejected is not None:
            raise PromotionError(f"{tid} was already rejected by {h.rejected.get('approver')}")
        if h.migrated is None:
            raise PromotionError(f"cannot reject: {tid} has not been migrated in {gate.name}")
        t = _migrated_trigger(gate, tid, h.migrated)
        developers = authors(repo_root, tid, t.commits)
        report = Reporter(gate.state_dir, environment=gate.name,
                          recipients=gate.config.recipients, anchor=gate.anchor)
        report.audit(REJECTED, trigger=tid, approver=who, email=email, reason=reason)
        send(report, notify.REJECTED, f"[{gate.name}] {tid} rejected",
              f"Enhancement {tid} was rejected in {gate.name} by {who}: {reason}\n"
              f"It will not be promoted. Defects: {', '.join(t.defects) or '-'}",
              sorted(developers), trigger=tid, reason=reason, by=who)
        report.checkpoint()
        report.flush()
    write(f"{tid}: rejected in {gate.name} by {who}; its developers are notified")
