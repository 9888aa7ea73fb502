"""Settling a migration: commit it, or roll it back from its archive; and recovery.

`rollback` undoes a trigger from its archive (SQL reverts, the database backup, the files)
and checks the result against the archive's hashes; a restore that does not match
escalates and marks the environment as needing attention. `recover` finishes or rolls
back a migration a killed run left in flight, from the journal. It is separate from the
run (engine.py) because the run is the order of the steps and this is their undoing: the
run's migrate_one ends in commit or rollback, and a run or a revert calls recover first.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

from dasct import durable, redact
from dasct.migrate import archive, inventory, journal, steps
from dasct.migrate import trigger as trig
from dasct.migrate.archive import ArchiveError
from dasct.migrate.database import DatabaseError
from dasct.migrate.environment import Environment
from dasct.migrate.session import NEEDS_ATTENTION, Session, archived_trigger, settle_file
from dasct.migrate.steps import StepError

__all__ = ["commit", "recover", "rollback", "verify_results"]


def commit(ctx: Session, j: journal.Journal, tid: str) -> None:
    env = ctx.env
    records = journal.pending(env.state_dir) or [{}]
    begin = records[0]
    checks = verify_results(records)
    with j.step("commit"):
        t = archived_trigger(env, tid)
        if begin.get("kind") == "revert" and begin.get("reverts"):
            inventory.unrecord(env.state_dir, str(begin["reverts"]))
        else:
            inventory.record(env.state_dir, t)
        inventory.set_outcome(env.state_dir, tid, "migrated", kind=begin.get("kind", "migrate"),
                              reverts=begin.get("reverts"), verify=checks)
        settle_file(env, Path(str(begin.get("path", ""))), "migrated")
        # Queued before the journal closes: a crash here re-sends rather than loses it.
        if begin.get("kind") != "revert":
            ctx.report.moved(t, env_root=str(env.root), verify=checks)
    ctx.log("migrated", trigger=tid, kind=begin.get("kind"), reverts=begin.get("reverts"),
            items=inventory.items_of(t), verify=checks)
    j.finish("migrated")


def verify_results(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The verify commands that passed in this migration, with their response times, as
    their done records in the journal hold them (so a recovered commit has them too)."""
    return [{"name": r["verify"], "seconds": r["seconds"], "max_seconds": r.get("max_seconds")}
            for r in records if r.get("phase") == "done" and "verify" in r and "seconds" in r]


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
                steps.run_command(c, root=ctx.env.root, environment=ctx.env.name,
                                  record=ctx.tracer("command", trigger=tid))
            except StepError as exc:
                ctx.log("restart-after-restore-failed", trigger=tid, error=str(exc))


def rollback(ctx: Session, j: journal.Journal, tid: str, *, cause: str, reason: str) -> str:
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
    settle_file(env, Path(str(begin.get("path", ""))), "rolled-back")
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
        outcome = rollback(ctx, j, tid, cause=str(intents[0]["cause"]),
                            reason=str(intents[0]["reason"]))
        return f"{tid}: finished the interrupted rollback ({outcome})"
    if "commit" in done or set(begin["steps"]) <= done:
        commit(ctx, j, tid)
        return f"{tid}: every step had completed; finished it"
    rollback(ctx, j, tid, cause="interrupted",
              reason=f"the previous run died at {last['step']} ({last['phase']})")
    return f"{tid}: rolled back the interrupted migration; it stays pending"
