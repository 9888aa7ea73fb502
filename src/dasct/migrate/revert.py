"""`dasct migrate revert`: put an environment back to before an enhancement.

The revert is a reverse trigger built from the enhancement's archive (its revert scripts
as deploys, the archived pre-images as contents, its post-images as the pre-images to
check) run through the same engine, so it is archived, journaled, crash-safe and rolled
back on failure like any migration. Its restart and health commands are those of the
version it restores (the enhancements whose entries the reverted one replaced, from
their archived triggers; none when it restores what was there before any), never the
reverted enhancement's own: those test the new behaviour the revert takes away.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from dasct.migrate import archive, inventory
from dasct.migrate import trigger as trig
from dasct.migrate import trigger_check as trigc
from dasct.migrate import trigger_write as trigw
from dasct.migrate.archive import ArchiveError
from dasct.migrate.engine import Result, migrate_one
from dasct.migrate.environment import EngineError, Environment
from dasct.migrate.recovery import recover
from dasct.migrate.session import Write, archived_trigger, refuse_if_attention, session


def restored_commands(env: Environment, tid: str) -> tuple[list[trig.StepCommand], list[str]]:
    """The restart, health and verify commands of the version a revert of tid restores
    (the verify commands' payloads copied from their archives into the revert's staging
    area), and a note for each of them that cannot run because its archive is gone.

    That version is the enhancements whose inventory entries tid replaced, oldest first;
    a command two of them share runs once.
    """
    deployments = inventory.load(env.state_dir)["deployments"]
    prior = {entry["enhancement"] for entry in deployments[tid]["previous"].values() if entry}
    commands: list[trig.StepCommand] = []
    notes = []
    for pid in sorted(prior, key=lambda i: (deployments.get(i, {}).get("deployed_at", 0), i)):
        try:
            found = archived_trigger(env, pid).commands
            kept = archive.load(env.state_dir, pid)
        except (ArchiveError, trig.TriggerError):
            notes.append(f"the archive of {pid}, whose version reverting {tid} restores, is "
                         "gone: its restart, health and verify commands are not run")
            continue
        for c in found:
            if (c.kind, c.argv) in {(k.kind, k.argv) for k in commands}:
                continue
            try:
                for sha in (c.input, c.expect_output):
                    if sha:
                        trigw.write_payload(_staging(env), archive.command_payload(kept, sha))
            except ArchiveError as exc:
                notes.append(f"{c.kind} {c.name} of {pid} is not run: {exc}")
                continue
            commands.append(c)
    return commands, notes


def _staging(env: Environment) -> Path:
    """Where a revert's reverse trigger and its payloads are written."""
    return env.state_dir / "revert-staging"


def reverse_trigger(env: Environment, tid: str, now: datetime,
                    commands: list[trig.StepCommand] | None = None) -> trig.Trigger:
    """A trigger that undoes enhancement tid, built from its archive, with commands (by
    default those restored_commands finds)."""
    if commands is None:
        commands = restored_commands(env, tid)[0]
    a = archive.load(env.state_dir, tid)
    original = archived_trigger(env, tid)
    staging = _staging(env)
    sql = [
        trig.SqlChange(name=f"revert.{s['name']}"[:128],
                       deploy=trigw.write_payload(staging, archive.script(a, s["revert"])),
                       revert=trigw.write_payload(staging, archive.script(a, s["deploy"])),
                       verify=None)
        for s in reversed(a.manifest["sql"])
    ]
    files = []
    for e in a.manifest["files"]:
        post = a.manifest["post"].get(e["path"])
        mode = 0o755 if (e["mode"] or 0) & 0o111 else 0o644
        content = (trigw.write_payload(staging, archive.blob(a, e["sha256"]))
                   if e["existed"] else None)
        if e["existed"] and post is not None:
            files.append(trig.FileChange("modify", e["path"], None, post, content, mode))
        elif e["existed"]:
            files.append(trig.FileChange("add", e["path"], None, None, content, mode))
        elif post is not None:
            files.append(trig.FileChange("delete", e["path"], None, post, None, mode))
    doc = trigw.document(
        id=f"revert-{tid}-{int(now.timestamp())}"[:128], system=original.system,
        environment=env.name, not_before=now - timedelta(minutes=1),
        expires=now + timedelta(hours=1), defects=original.defects, commits=original.commits,
        sql=sql, files=files, commands=commands)
    return trigw.write(staging, doc, key=None)


def revert(env: Environment, tid: str, *, cascade: bool = False, write: Write = print,
           now: datetime | None = None) -> Result:
    """Put env back to before enhancement tid (and, with cascade, later ones on its items)."""
    now = now or datetime.now(timezone.utc)
    result = Result()
    with session(env, write) as ctx:
        refuse_if_attention(ctx)
        result.recovered = recover(ctx)
        refuse_if_attention(ctx)
        dep = inventory.load(env.state_dir)["deployments"].get(tid)
        if dep is None or dep["status"] != "deployed":
            raise EngineError(f"{tid} is not deployed in {env.name}"
                              + (f" (it is {dep['status']})" if dep else ""))
        later = inventory.later_overlapping(env.state_dir, tid)
        if later and not cascade:
            ctx.log("revert-refused", trigger=tid, later=later)
            raise EngineError(
                f"cannot revert {tid}: later enhancements changed the same items: "
                f"{', '.join(later)}; revert them first, or pass --cascade to revert them too "
                "(newest first)")
        order = [*later, tid]
        for other in order:
            archive.load(env.state_dir, other)  # refuse before changing anything
        ctx.log("revert-begin", trigger=tid, order=order)
        for other in order:
            commands, notes = restored_commands(env, other)
            for note in notes:
                ctx.log("revert-commands-unknown", trigger=other, note=note)
                write(f"note: {note}")
            rt = reverse_trigger(env, other, now, commands)
            trigc.check_target(rt, env.root)
            result.stats.attempted += 1
            write(f"reverting {other} ({rt.id})")
            outcome = migrate_one(ctx, rt, kind="revert", reverts=other)
            if outcome != "migrated":
                result.stats.rolled_back += outcome == "rolled-back"
                result.stats.escalated += outcome == "escalated"
                write(f"revert of {other} failed and was rolled back ({outcome})")
                break
            result.stats.migrated += 1
            result.migrated.append(other)
            ctx.report.reverted(other, via=rt.id)
            write(f"reverted {other}")
        ctx.report.flush()
        return result
