"""The migration run: lock, recover, find due triggers, hold conflicts, migrate, report.

One trigger at a time: archive, SQL deploy then verify per change, files, commands. Any
failure rolls the trigger back from its archive and checks the restore against the
archive's hashes; a restore that does not match escalates and marks the environment as
needing attention. Every step is journaled (journal.py) and audited (dasct.audit).
`session` is what a run and a revert share: the environment prepared, its lock held, the
database opened on first use.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dasct import durable, redact
from dasct.errors import DasctError
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
from dasct.migrate.archive import ArchiveError
from dasct.migrate.database import Database, DatabaseError, connect, require_driver
from dasct.migrate.environment import EngineError, Environment, ensure_ignored, sqlite_file
from dasct.migrate.plan import plan, scan
from dasct.migrate.report import Reporter
from dasct.migrate.steps import StepError

__all__ = ["Result", "Stats", "migrate_one", "needs_attention", "prepare", "recover", "resolve",
           "run", "session", "unlock", "withdraw"]

NEEDS_ATTENTION = "needs-attention.json"
Write = Callable[[str], None]


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


def needs_attention(state_dir: Path) -> dict[str, Any] | None:
    """The escalation that blocks this environment, or None."""
    try:
        data: dict[str, Any] = json.loads((state_dir / NEEDS_ATTENTION).read_text())
    except FileNotFoundError:
        return None
    return data


class Session:
    """One run (or revert) against one environment: its lease kept renewed by `keeper`
    (None in tests that hold no lock), the database opened on first use."""

    def __init__(self, env: Environment, write: Write, keeper: lock.Keeper | None) -> None:
        self.env = env
        self.write = write
        self.keeper = keeper
        self.report = Reporter(env.state_dir, environment=env.name,
                               recipients=env.config.recipients, anchor=env.anchor)
        self._db: Database | None = None

    @property
    def db(self) -> Database:
        """The target database, connected on first use."""
        if self._db is None:
            self._db = connect(self.env.database)
        return self._db

    def log(self, event: str, **fields: Any) -> None:
        """Append an audit record."""
        self.report.audit(event, **fields)

    def renew(self) -> None:
        """Extend the lease now; LockError (the run stops) if someone else took it."""
        if self.keeper is not None:
            self.keeper.renew()

    def check_lock(self) -> None:
        """LockError (the run stops) if the lease was found taken by someone else."""
        if self.keeper is not None:
            self.keeper.check()

    def close(self) -> None:
        """Close the database if it was opened."""
        if self._db is not None:
            self._db.close()


@contextmanager
def _step(ctx: Session, j: journal.Journal, tid: str, name: str, /, **data: Any
          ) -> Iterator[None]:
    # Never start a step on a target that another run may now own.
    ctx.check_lock()
    ctx.log("step", trigger=tid, step=name, phase="start", **data)
    with j.step(name, **data):
        yield
    ctx.log("step", trigger=tid, step=name, phase="done")


# ----------------------------------------------------------------------- one migration


def _settle_file(env: Environment, path: Path, outcome: str) -> None:
    """Move a settled trigger out of staging (its outcome is already recorded)."""
    if not path.exists() or path.parent != env.staging / "triggers" / env.name:
        return
    dest = env.state_dir / "triggers" / outcome / path.name
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(path, dest)
    except OSError:  # staging on another file system
        shutil.copyfile(path, dest)
        path.unlink()


def archived_trigger(env: Environment, tid: str) -> trig.Trigger:
    """The trigger as it was run, from its archive."""
    a = archive.load(env.state_dir, tid)
    return trig.load(a.path / "trigger.json", environments=[env.name], key=None,
                     require_signature=False)


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
            with _step(ctx, j, t.id, f"sql-deploy:{i}", change=change.name):
                steps.sql_deploy(ctx.db, t, i)
            with _step(ctx, j, t.id, f"sql-verify:{i}", change=change.name):
                steps.sql_verify(ctx.db, t, i)
        for i, fc in enumerate(t.files):
            with _step(ctx, j, t.id, f"file:{i}", op=fc.op, path=fc.path):
                steps.apply_file(t, i, env.root)
        for i, cmd in enumerate(cmds):
            with _step(ctx, j, t.id, f"command:{i}", command=cmd.name):
                steps.run_command(cmd, root=env.root, environment=env.name,
                                  left_running=started)
            ctx.renew()
    except (StepError, trig.TriggerError, ArchiveError, DatabaseError, OSError) as exc:
        ctx.write(f"  {t.id}: {exc}")
        steps.end_groups(started)  # nothing of the trigger may run on the restored files
        return _rollback(ctx, j, t.id, cause="failure", reason=str(exc))
    _commit(ctx, j, t.id)
    return "migrated"


def _commit(ctx: Session, j: journal.Journal, tid: str) -> None:
    env = ctx.env
    records = journal.pending(env.state_dir) or [{}]
    begin = records[0]
    with j.step("commit"):
        t = archived_trigger(env, tid)
        if begin.get("kind") == "revert" and begin.get("reverts"):
            inventory.unrecord(env.state_dir, str(begin["reverts"]))
        else:
            inventory.record(env.state_dir, t)
        inventory.set_outcome(env.state_dir, tid, "migrated", kind=begin.get("kind", "migrate"),
                              reverts=begin.get("reverts"))
        _settle_file(env, Path(str(begin.get("path", ""))), "migrated")
        # Queued before the journal closes: a crash here re-sends rather than loses it.
        if begin.get("kind") != "revert":
            ctx.report.moved(t, env_root=str(env.root))
    ctx.log("migrated", trigger=tid, kind=begin.get("kind"), reverts=begin.get("reverts"),
            items=inventory.items_of(t))
    j.finish("migrated")


def _restart_after_restore(ctx: Session, tid: str, reverts: str | None = None) -> None:
    # The system may have been restarted on the new files; restart it on the restored ones.
    # Those of a failed revert are the reverted enhancement's: its restart commands apply.
    try:
        t = archived_trigger(ctx.env, reverts or tid)
    except (ArchiveError, trig.TriggerError):
        return
    for c in t.commands:
        if c.kind == "restart":
            try:
                steps.run_command(c, root=ctx.env.root, environment=ctx.env.name)
            except StepError as exc:
                ctx.log("restart-after-restore-failed", trigger=tid, error=str(exc))


def _rollback(ctx: Session, j: journal.Journal, tid: str, *, cause: str, reason: str) -> str:
    """Undo trigger tid from its archive and check the result; escalate if it differs."""
    env = ctx.env
    records = journal.pending(env.state_dir) or []
    done = journal.done_steps(records)
    begin = records[0] if records else {}
    if "rollback" not in done:
        j.record("rollback", "intent", cause=cause, reason=reason)
        ctx.log("rollback-begin", trigger=tid, cause=cause, reason=reason)
        problems: list[str] = []
        if "archive" in done or _archive_of_this_attempt(env, tid, begin):
            try:
                problems = _restore(ctx, records, tid)
            except (ArchiveError, OSError, DatabaseError) as exc:
                problems = [f"restore failed: {exc}"]
        else:
            archive.discard_partial(env.state_dir, tid)
        if problems:
            return _escalate(ctx, j, tid, cause=cause, reason=reason, problems=problems)
        j.record("rollback", "done")
        ctx.log("rollback-checked", trigger=tid, result="identical to the archive")
    with suppress(ArchiveError):
        _restart_after_restore(ctx, tid, begin.get("reverts"))
        archive.remove(archive.load(env.state_dir, tid))
    if cause == "interrupted":
        j.finish("recovered")
        return "recovered"
    inventory.set_outcome(env.state_dir, tid, "rolled-back", reason=reason,
                          kind=begin.get("kind", "migrate"))
    _settle_file(env, Path(str(begin.get("path", ""))), "rolled-back")
    ctx.report.rolled_back(tid, reason=reason)
    ctx.log("rolled-back", trigger=tid, reason=reason)
    j.finish("rolled-back")
    return "rolled-back"


def _archive_of_this_attempt(env: Environment, tid: str, begin: dict[str, Any]) -> bool:
    # A crash between the archive's rename into place and its `done` record leaves a
    # complete archive the journal does not know of; without this a rerun would find it
    # in the way and fail the trigger.
    try:
        return archive.load(env.state_dir, tid).created >= float(begin.get("time", 0))
    except ArchiveError:
        return False


def _restore(ctx: Session, records: list[dict[str, Any]], tid: str) -> list[str]:
    env = ctx.env
    a = archive.load(env.state_dir, tid)
    problems: list[str] = []
    desc = a.manifest["database"]
    if desc is not None:
        by_name = {s["name"]: s for s in a.manifest["sql"]}
        deployed = ctx.db.deployed_changes(tid)
        if deployed is None:  # SQLite: every deploy that started (the backup covers the rest)
            deployed = list(dict.fromkeys(
                str(r["change"]) for r in records if str(r["step"]).startswith("sql-deploy:")))
        for name in reversed(deployed):
            try:
                steps.sql_revert(ctx.db, tid, name, archive.script(a, by_name[name]["revert"])
                                 .decode())
                ctx.log("sql-reverted", trigger=tid, change=name)
            except StepError as exc:
                ctx.log("sql-revert-failed", trigger=tid, change=name, error=str(exc))
        try:
            if ctx.db.restore(a.path, desc):
                ctx.log("database-restored", trigger=tid, file=desc["file"])
            if ctx.db.fingerprint(archive.database_scope(desc)) != desc["fingerprint"]:
                problems.append("database: differs from the archive after the restore")
        except (DatabaseError, OSError, sqlite3.Error) as exc:
            problems.append(f"database: restore failed: {exc}")
    # The files are restored even when the database could not be: each half counts.
    try:
        archive.restore_files(a, env.root)
    except OSError as exc:
        problems.append(f"files: restore failed: {exc}")
    problems += archive.check_files(a, env.root)
    return problems


def _escalate(ctx: Session, j: journal.Journal, tid: str, *, cause: str, reason: str,
              problems: list[str]) -> str:
    env = ctx.env
    marker = {"trigger": tid, "cause": cause, "reason": reason, "problems": problems,
              "time": time.time(), "archive": str(archive.archives_dir(env.state_dir) / tid)}
    durable.atomic_write(env.state_dir / NEEDS_ATTENTION,
                         json.dumps(redact.scrub(marker, keep=("trigger",)), indent=1).encode())
    inventory.set_outcome(env.state_dir, tid, "escalated", reason=reason, problems=problems)
    ctx.report.escalation(tid, reason=reason, problems=problems)
    ctx.log("escalation", trigger=tid, reason=reason, problems=problems)
    j.finish("escalated")
    for p in problems:
        ctx.write(f"  restore check: {p}")
    return "escalated"


def recover(ctx: Session) -> str | None:
    """Finish or roll back a migration a killed run left in flight; None if there is none."""
    env = ctx.env
    records = journal.pending(env.state_dir)
    if records is None:
        return None
    if not records:
        (env.state_dir / journal.JOURNAL_NAME).unlink()
        return None
    begin = records[0]
    tid = str(begin["trigger"])
    j = journal.Journal(env.state_dir)
    if records[-1]["step"] == "end":
        ctx.log("recover", trigger=tid, last_step="end", last_phase=records[-1]["phase"])
        os.replace(j.path, env.state_dir / journal.LAST_NAME)
        return f"{tid}: already settled"
    done = journal.done_steps(records)
    last = records[-1]
    ctx.log("recover", trigger=tid, last_step=last["step"], last_phase=last["phase"])
    intents = [r for r in records if r["step"] == "rollback" and r["phase"] == "intent"]
    if intents:
        outcome = _rollback(ctx, j, tid, cause=str(intents[0]["cause"]),
                            reason=str(intents[0]["reason"]))
        return f"{tid}: finished the interrupted rollback ({outcome})"
    if "commit" in done or set(begin["steps"]) <= done:
        _commit(ctx, j, tid)
        return f"{tid}: every step had completed; finished it"
    _rollback(ctx, j, tid, cause="interrupted",
              reason=f"the previous run died at {last['step']} ({last['phase']})")
    return f"{tid}: rolled back the interrupted migration; it stays pending"


# ----------------------------------------------------------------------- the run


def owner() -> str:
    """Who holds the lock, as the lease records it."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"dasct migrate ({user})"


def _print_plan(write: Write, t: trig.Trigger, cmds: list[trig.StepCommand]) -> None:
    write(f"  {t.id}: defects {', '.join(t.defects) or '-'}; "
          f"{len(t.sql)} SQL change(s), {len(t.files)} file change(s)")
    for c in t.sql:
        write(f"    sql deploy {c.name}" + (" then verify" if c.verify else ""))
    for f in t.files:
        write(f"    file {f.op} {f.label}")
    for cmd in cmds:
        write(f"    command {cmd.name}: {' '.join(cmd.argv)}")


def prepare(env: Environment) -> None:
    """Create what a migration writes into: the state directory and the default root."""
    ensure_ignored(env, env.state_dir, env.root, env.staging,
                   *filter(None, [sqlite_file(env.database)]))
    env.state_dir.mkdir(parents=True, exist_ok=True)
    if not env.config.root:
        # The embedded default (.dasct/env/NAME/root) needs no setup; a configured root
        # that is missing is refused by check_target instead of being created empty.
        env.root.mkdir(parents=True, exist_ok=True)


@contextmanager
def session(env: Environment, write: Write) -> Iterator[Session]:
    """Prepare env, take its lock and open a Session; close it and unlock on the way out.

    The lease is renewed in the background for the session's whole life (lock.Keeper), so
    a step longer than the lease never lets a breaker take it from a live run.
    A missing database driver is refused first, before anything is locked or journaled.
    """
    try:
        require_driver(env.database)
    except DatabaseError as exc:
        raise EngineError(f"environment {env.name}: {exc}") from None
    prepare(env)
    keeper = lock.Keeper(env.state_dir, lock.acquire(env.state_dir, owner=owner()))
    try:
        ctx = Session(env, write, keeper)
        keeper.start()
        try:
            yield ctx
        except BaseException:
            # The run's own error is what the caller must see; a log that cannot be
            # anchored now is refused again by the next checkpoint and reported by
            # `audit verify`.
            with suppress(DasctError, OSError):
                ctx.report.checkpoint()
            raise
        else:
            ctx.report.checkpoint()
        finally:
            ctx.close()
    finally:
        keeper.stop()
        lock.release(env.state_dir, keeper.lease)


def _audit(env: Environment, event: str, **fields: Any) -> None:
    # A decision taken outside a run (lock broken, escalation resolved): audited, not notified.
    report = Reporter(env.state_dir, environment=env.name, recipients=(), anchor=env.anchor)
    report.audit(event, **fields)
    report.checkpoint()


def run(env: Environment, *, now: datetime | None = None, ignore_window: bool = False,
        dry_run: bool = False, break_stale_lock: bool = False, write: Write = print) -> Result:
    """`dasct migrate run`: migrate every due trigger of env, in the issue's order."""
    now = now or datetime.now(timezone.utc)
    if dry_run:
        return _dry_run(env, now=now, ignore_window=ignore_window, write=write)
    if break_stale_lock and lock.read(env.state_dir) is not None:
        _break_lock(env, write)
    with session(env, write) as ctx:
        return _run_locked(ctx, now=now, ignore_window=ignore_window)


def refuse_if_attention(ctx: Session) -> None:
    """Raise EngineError while the environment is marked as needing attention."""
    marker = needs_attention(ctx.env.state_dir)
    if marker is not None:
        ctx.log("refused", reason="needs attention", trigger=marker.get("trigger"))
        raise EngineError(
            f"environment {ctx.env.name} needs attention since a failed restore of "
            f"{marker.get('trigger')} ({'; '.join(marker.get('problems', []))}); fix it, "
            f"then run `dasct migrate resolve --env {ctx.env.name}`")


def _run_locked(ctx: Session, *, now: datetime, ignore_window: bool) -> Result:
    env, write, result = ctx.env, ctx.write, Result()
    stats = result.stats
    ctx.log("run-start", now=trig.format_time(now), ignore_window=ignore_window)
    refuse_if_attention(ctx)
    result.recovered = recover(ctx)
    if result.recovered:
        write(f"recovered: {result.recovered}")
        refuse_if_attention(ctx)
    warranty.check(env, ctx.report)  # warranties due to end become CP (real clock only)
    found = scan(env, now)
    for path, outcome in found.settled:
        _settle_file(env, path, outcome)
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
        _settle_file(env, t.path, "expired")
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
            trig.check_payloads(t)
            trig.check_target(t, env.root)
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
                              pinned=[str(marker["trigger"])] if marker else [])
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


# ----------------------------------------------------------------------- resolve, unlock, withdraw


def resolve(env: Environment, *, note: str, write: Write = print) -> bool:
    """Clear the needs-attention mark after a person fixed the environment."""
    marker = needs_attention(env.state_dir)
    if marker is None:
        write(f"{env.name} does not need attention")
        return False
    with lock.held(env.state_dir, owner=owner()):
        _audit(env, "resolved", trigger=marker.get("trigger"), note=note, by=owner())
        (env.state_dir / NEEDS_ATTENTION).unlink()
    write(f"{env.name}: cleared the escalation of {marker.get('trigger')}")
    return True


def unlock(env: Environment, *, force: bool, write: Write = print) -> bool:
    """Show the lock, and with force break it when its holder is provably gone.

    True when env is unlocked afterwards (it was not locked, or the lock was broken);
    LockError when force was refused.
    """
    holder = lock.read(env.state_dir)
    if holder is None:
        write(f"{env.name} is not locked")
        return True
    if not force:
        why = lock.stale_reason(holder)
        write(f"{env.name} is locked by {holder.describe()}"
              + (f"; stale ({why}): pass --force to break it" if why else "; it is alive"))
        return False
    _break_lock(env, write)
    return True


def _break_lock(env: Environment, write: Write) -> bool:
    """Break a stale lock (LockError if its holder is alive) and audit who broke it."""
    broken = lock.break_stale(env.state_dir)
    if broken is None:
        return False
    _audit(env, "lock-broken", holder=broken[0].describe(), reason=broken[1], by=owner())
    write(f"broke the lock of {broken[0].describe()}: {broken[1]}")
    return True


def withdraw(env: Environment, tid: str, *, reason: str, write: Write = print) -> Path:
    """Take pending trigger tid out of staging without running it: outcome `withdrawn`.

    Under the lock (never while a run migrates it), audited and notified; refuses a trigger
    that is not pending here, already settled, or left in flight by a run that died.
    Returns where the trigger file went.
    """
    if not trig.ID_PATTERN.fullmatch(tid):
        raise EngineError(f"not a trigger id: {tid!r}")
    path = trig.trigger_path(env.staging, env.name, tid)
    with session(env, write) as ctx:
        done = inventory.outcome(env.state_dir, tid)
        if done is not None:
            raise EngineError(f"{tid} is already settled in {env.name} ({done['outcome']}); "
                              "there is nothing to withdraw")
        records = journal.pending(env.state_dir)
        if records and records[0].get("trigger") == tid:
            raise EngineError(f"{tid} was being migrated when a run died; `dasct migrate run "
                              f"--env {env.name}` settles it first")
        if not path.is_file():
            raise EngineError(f"{tid} is not pending in {env.name} (no {path})")
        # The outcome first, as a run settles: a crash before the move is finished by the
        # next run, which finds the outcome and moves the file.
        inventory.set_outcome(env.state_dir, tid, "withdrawn", reason=reason)
        _settle_file(env, path, "withdrawn")
        ctx.log("withdrawn", trigger=tid, reason=reason)
        ctx.report.withdrawn(tid, reason=reason)
        ctx.report.flush()
    return env.state_dir / "triggers" / "withdrawn" / path.name
