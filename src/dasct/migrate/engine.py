"""The migration run: lock, recover, find due triggers, hold conflicts, migrate, report.

One trigger at a time: archive, SQL deploy then verify per change, files, commands. Any
failure rolls the trigger back from its archive and checks the restore against the
archive's hashes; a restore that does not match escalates and marks the environment as
needing attention. Every step is journaled (journal.py) and audited (dasct.audit).

This module is the run itself: the order of the steps of one trigger (migrate_one), the run
over every due trigger, the windows, the dry run. Undoing a trigger and recovering a killed
run are recovery.py; the Session they share is session.py; resolve, unlock and withdraw are
manual.py.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from dasct import redact
from dasct.migrate import (
    archive,
    inventory,
    journal,
    lock,
    promotion,
    retention,
    steps,
    warranty,
    windows,
)
from dasct.migrate import trigger as trig
from dasct.migrate import trigger_check as trigc
from dasct.migrate.archive import ArchiveError
from dasct.migrate.database import DatabaseError
from dasct.migrate.environment import Environment
from dasct.migrate.manual import break_lock
from dasct.migrate.plan import plan, scan
from dasct.migrate.recovery import commit, recover, rollback
from dasct.migrate.session import (
    Session,
    Write,
    needs_attention,
    refuse_if_attention,
    session,
    settle_file,
)
from dasct.migrate.steps import StepError

__all__ = ["Result", "Stats", "migrate_one", "run"]


@dataclass
class Stats:
    """The statistics of one run (the seed's clean-up step)."""

    attempted: int = 0
    migrated: int = 0
    rolled_back: int = 0
    escalated: int = 0
    held: int = 0
    expired: int = 0
    refused: int = 0
    waiting: int = 0

    @property
    def success_percent(self) -> float | None:
        """Migrated over attempted, in percent (None when nothing was attempted)."""
        return 100.0 * self.migrated / self.attempted if self.attempted else None

    def line(self) -> str:
        """One line for people."""
        return (f"attempted {self.attempted}, migrated {self.migrated}, rolled back "
                f"{self.rolled_back}, escalated {self.escalated}, held {self.held}, expired "
                f"{self.expired}, refused {self.refused}, waiting {self.waiting}; success "
                + ("n/a" if self.success_percent is None else f"{self.success_percent:.0f}%"))


@dataclass
class Result:
    """What a run did, for the command's exit code and for tests."""

    stats: Stats = field(default_factory=Stats)
    migrated: list[str] = field(default_factory=list)
    rolled_back: list[str] = field(default_factory=list)
    held: dict[str, str] = field(default_factory=dict)
    recovered: str | None = None
    not_run: str | None = None  # why nothing ran (window, freeze), when that is the case

    @property
    def exit_code(self) -> int:
        """0 when nothing needs a person; 1 when a trigger was rolled back, escalated,
        refused, held or expired (the nightly job goes red so that someone looks).

        Nothing to migrate, everything migrated, triggers waiting for their time and a run
        outside its window are all 0.
        """
        s = self.stats
        return 1 if s.rolled_back or s.escalated or s.refused or s.held or s.expired else 0



@contextmanager
def _step(ctx: Session, j: journal.Journal, tid: str, name: str, /, **data: Any
          ) -> Iterator[dict[str, Any]]:
    # Never start a step on a target that another run may now own.
    ctx.check_lock()
    ctx.log("step", trigger=tid, step=name, phase="start", **data)
    with j.step(name, **data) as measured:
        yield measured
    ctx.log("step", trigger=tid, step=name, phase="done", **measured)



def migrate_one(ctx: Session, t: trig.Trigger, *, kind: str = "migrate",
                reverts: str | None = None) -> str:
    """Migrate one verified trigger; return migrated, rolled-back or escalated."""
    env = ctx.env
    cmds = steps.commands(t, env.config.verify)
    planned = ["archive"]
    planned += [f"sql-{w}:{i}" for i in range(len(t.sql)) for w in ("deploy", "verify")]
    planned += [f"file:{i}" for i in range(len(t.files))]
    planned += [f"command:{i}" for i in range(len(cmds))]
    started: list[int] = []  # process groups the trigger's restart commands left running
    j = journal.Journal.begin(env.state_dir, trigger=t.id, kind=kind, reverts=reverts,
                              path=str(t.path), steps=planned)
    ctx.log("migrate-begin", trigger=t.id, kind=kind, reverts=reverts, digest=t.digest,
            steps=planned)
    try:
        with _step(ctx, j, t.id, "archive"):
            made = archive.create(env.state_dir, t, root=env.root, db=ctx.db if t.sql else None)
            ctx.log("archive-scope", trigger=t.id, **archive.scope_record(made))
        for i, change in enumerate(t.sql):
            ctx.trace.add("sql", trigger=t.id, change=change.name, deploy=change.deploy,
                          revert=change.revert, verify=change.verify)
            with _step(ctx, j, t.id, f"sql-deploy:{i}", change=change.name):
                steps.sql_deploy(ctx.db, t, i)
            with _step(ctx, j, t.id, f"sql-verify:{i}", change=change.name):
                steps.sql_verify(ctx.db, t, i)
        for i, fc in enumerate(t.files):
            ctx.trace.add("file", trigger=t.id, op=fc.op, path=fc.path, old_path=fc.old_path,
                          pre_sha256=fc.pre_sha256, post_sha256=fc.post_sha256, mode=fc.mode)
            with _step(ctx, j, t.id, f"file:{i}", op=fc.op, path=fc.path):
                steps.apply_file(t, i, env.root)
        for i, cmd in enumerate(cmds):
            with _step(ctx, j, t.id, f"command:{i}", command=cmd.name) as measured:
                seconds = steps.run_command(cmd, root=env.root, environment=env.name,
                                            staging=t.staging, left_running=started,
                                            record=ctx.tracer("command", trigger=t.id))
                if cmd.kind == "verify":
                    measured.update(verify=cmd.name, seconds=round(seconds, 3),
                                    max_seconds=cmd.max_seconds)
                    ctx.write(f"  {t.id}: verify {cmd.name} passed in {seconds:.3f}s"
                              + _limit(cmd.max_seconds))
            ctx.renew()
    except (StepError, trig.TriggerError, ArchiveError, DatabaseError, OSError) as exc:
        ctx.write(f"  {t.id}: {exc}")
        steps.end_groups(started)  # nothing of the trigger may run on the restored files
        return rollback(ctx, j, t.id, cause="failure", reason=str(exc))
    commit(ctx, j, t.id)
    return "migrated"



def _limit(max_seconds: float | None) -> str:
    return f" (max {max_seconds:g}s)" if max_seconds is not None else ""


def _print_plan(write: Write, t: trig.Trigger, cmds: list[trig.StepCommand]) -> None:
    write(f"  {t.id}: defects {', '.join(t.defects) or '-'}; "
          f"{len(t.sql)} SQL change(s), {len(t.files)} file change(s)")
    for c in t.sql:
        write(f"    sql deploy {c.name}" + (" then verify" if c.verify else ""))
    for f in t.files:
        write(f"    file {f.op} {f.label}")
    for cmd in cmds:
        feeds = [f"input {cmd.input[:12]}" if cmd.input else "",
                 f"expects exit {cmd.expect_exit}" if cmd.expect_exit else "",
                 f"expects output {cmd.expect_output[:12]}" if cmd.expect_output else "",
                 _limit(cmd.max_seconds).strip(" ()")]
        more = ", ".join(f for f in feeds if f)
        write(f"    command {cmd.name}: {' '.join(cmd.argv)}" + (f" ({more})" if more else ""))



def run(env: Environment, *, now: datetime | None = None, ignore_window: bool = False,
        dry_run: bool = False, break_stale_lock: bool = False, honour_expiry: bool = True,
        keep_archives: Collection[str] = (), write: Write = print) -> Result:
    """`dasct migrate run`: migrate every due trigger of env, in the issue's order.

    honour_expiry false is the agent's install only (plan.scan says why); keep_archives:
    archives retention must not prune at the end of this run (the agent's open uninstall
    windows: taking a release back needs every archive of its triggers)."""
    now = now or datetime.now(timezone.utc)
    if dry_run:
        return _dry_run(env, now=now, ignore_window=ignore_window, write=write)
    if break_stale_lock and lock.read(env.state_dir) is not None:
        break_lock(env, write)
    with session(env, write) as ctx:
        ctx.pinned = tuple(keep_archives)
        return _run_locked(ctx, now=now, ignore_window=ignore_window,
                           honour_expiry=honour_expiry)


def _run_locked(ctx: Session, *, now: datetime, ignore_window: bool,
                honour_expiry: bool) -> Result:
    env, write, result = ctx.env, ctx.write, Result()
    stats = result.stats
    ctx.log("run-start", now=trig.format_time(now), ignore_window=ignore_window,
            **({} if honour_expiry else {"honour_expiry": False}))
    refuse_if_attention(ctx)
    result.recovered = recover(ctx)
    if result.recovered:
        write(f"recovered: {result.recovered}")
        refuse_if_attention(ctx)
    warranty.check(env, ctx.report)  # warranties due to end become CP (real clock only)
    found = scan(env, now, honour_expiry=honour_expiry)
    for path, outcome in found.settled:
        settle_file(env, path, outcome)
    for path, why in found.refused:
        stats.refused += 1
        ctx.log("trigger-refused", path=str(path), reason=why)
        ctx.report.held(path.stem, reason=f"refused: {why}")
        write(f"refused: {why}")
    for t, why in list(promotion.refused(env, found.due)):  # the gate: before any step
        found.due.remove(t)
        stats.refused += 1
        ctx.log("trigger-refused", trigger=t.id, reason=why)
        ctx.report.held(t.id, reason=why)
        write(f"refused: {why}")
    real_now = datetime.now(timezone.utc)
    for t in found.expired:
        stats.expired += 1
        if t.expires > real_now:
            # Expired only on a simulated clock (--at): a real pending trigger stays pending.
            ctx.log("trigger-expired", trigger=t.id, expires=trig.format_time(t.expires),
                    recorded=False)
            write(f"expired at the simulated time, not run, not recorded: {t.id}")
            continue
        inventory.set_outcome(env.state_dir, t.id, "expired", expires=trig.format_time(t.expires))
        settle_file(env, t.path, "expired")
        ctx.log("trigger-expired", trigger=t.id, expires=trig.format_time(t.expires))
        ctx.report.held(t.id, reason=f"expired at {trig.format_time(t.expires)}; not run")
        write(f"expired, not run: {t.id} (expired {trig.format_time(t.expires)})")
    stats.waiting = len(found.waiting)
    if not found.due:
        ctx.log("nothing-to-migrate", waiting=[t.id for t in found.waiting])
        ctx.report.nothing_to_migrate(waiting=[t.id for t in found.waiting])
        write(f"nothing to migrate in {env.name}")
        return _finish(ctx, result)
    decision = _window(env, now)
    frozen = "freeze" in decision.reason
    if _blocked(decision, ignore_window):
        result.not_run = decision.reason
        stats.waiting += len(found.due)
        ctx.log("not-run", reason=decision.reason, due=[t.id for t in found.due])
        write(f"not run: {decision.reason}" + ("" if frozen else " (use --now to run anyway)"))
        return _finish(ctx, result)
    ctx.log("window", allowed=decision.allowed, reason=decision.reason, forced=ignore_window)
    planned = plan(env, found.due)
    order, held = planned.order, planned.held
    for tid, why in held.items():
        stats.held += 1
        result.held[tid] = why
        ctx.log("held", trigger=tid, reason=why)
        ctx.report.held(tid, reason=why)
        write(f"held: {tid}: {why}")
    for t in order:
        failed = sorted(d for d in planned.needs[t.id] if d not in result.migrated)
        if failed:  # it runs after them in this run, and they were refused or rolled back
            stats.held += 1
            result.held[t.id] = f"depends on {failed[0]}, which was not migrated in this run"
            ctx.log("held", trigger=t.id, reason=result.held[t.id])
            ctx.report.held(t.id, reason=result.held[t.id])
            write(f"held: {t.id}: {result.held[t.id]}")
            continue
        try:
            trigc.check_payloads(t)
            trigc.check_target(t, env.root)
        except trig.TriggerError as exc:
            stats.refused += 1
            ctx.log("trigger-refused", trigger=t.id, reason=str(exc))
            ctx.report.held(t.id, reason=str(exc))
            write(f"refused: {exc}")
            continue
        stats.attempted += 1
        ctx.renew()
        write(f"migrating {t.id} into {env.name}")
        outcome = migrate_one(ctx, t)
        if outcome == "migrated":
            stats.migrated += 1
            result.migrated.append(t.id)
            write(f"migrated {t.id}")
            warranty.start(env, ctx.report, t)
        elif outcome == "rolled-back":
            stats.rolled_back += 1
            result.rolled_back.append(t.id)
            write(f"rolled back {t.id}; the environment is as before")
        else:
            stats.escalated += 1
            write(f"ESCALATED {t.id}: the restore did not match the archive; {env.name} "
                  "needs attention")
            break
    return _finish(ctx, result)


def _window(env: Environment, now: datetime) -> windows.Decision:
    # An environment promoted into (production) runs without a window only on --now.
    return windows.check(now, windows=env.config.windows, freeze=env.config.freeze,
                         timezone=env.config.timezone,
                         require_window=env.name if env.gate is not None else None)


def _blocked(decision: windows.Decision, ignore_window: bool) -> bool:
    # --now overrides the allowed windows, never a freeze.
    return not decision.allowed and ("freeze" in decision.reason or not ignore_window)


def _finish(ctx: Session, result: Result) -> Result:
    env = ctx.env
    marker = needs_attention(env.state_dir)  # its archive is what a person restores from
    removed = retention.prune(env.state_dir, keep_count=env.config.retention_count,
                              keep_days=env.config.retention_days,
                              warranty_days=env.config.warranty_days,
                              pinned=[*ctx.pinned, *([str(marker["trigger"])] if marker
                                                     else [])])
    for tid in removed:
        ctx.log("archive-pruned", trigger=tid)
    stats = result.stats
    ctx.log("run-end", **{k: v for k, v in vars(stats).items()},
            success_percent=None if stats.success_percent is None
            else round(stats.success_percent, 1))
    ctx.write(f"{env.name}: {stats.line()}")
    ctx.report.flush()
    return result


def _dry_run(env: Environment, *, now: datetime, ignore_window: bool, write: Write) -> Result:
    result = Result()
    write(f"dry run for {env.name} (root {env.root}, database "
          f"{redact.mask_urls(env.database)}); nothing changes")
    marker = needs_attention(env.state_dir)
    if marker is not None:
        write(f"  would refuse: needs attention since {marker.get('trigger')}")
    records = journal.pending(env.state_dir)
    if records:
        write(f"  would first recover the interrupted migration of {records[0]['trigger']}")
    found = scan(env, now)
    for path, why in found.refused:
        write(f"  would refuse {path.name}: {why}")
    for t in found.expired:
        write(f"  expired, would not run: {t.id}")
    for t in found.waiting:
        write(f"  not due yet: {t.id} (not before {trig.format_time(t.not_before)})")
    for t, why in list(promotion.refused(env, found.due)):
        found.due.remove(t)
        write(f"  would refuse {t.id}: {why}")
    if not found.due:
        write("  nothing to migrate")
        return result
    decision = _window(env, now)
    if _blocked(decision, ignore_window):
        result.not_run = decision.reason
        write(f"  would not run: {decision.reason}")
    else:
        write(f"  window: {decision.reason}" + ("" if decision.allowed else " (--now)"))
    planned = plan(env, found.due)
    order, held = planned.order, planned.held
    for tid, why in held.items():
        write(f"  would hold {tid}: {why}")
    for t in order:
        _print_plan(write, t, steps.commands(t, env.config.verify))
        if t.sql:
            write(f"    archive: {archive.plan_line(t, env.database)}")
    result.held = held
    return result
