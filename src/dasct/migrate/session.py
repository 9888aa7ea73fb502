"""What a run, a recovery and a revert share: the Session and how one is opened.

`session` prepares an environment, takes its lock and opens a Session (the lease kept
renewed, the database opened on first use). Beside it: the needs-attention mark every
entry point refuses on, the lock owner's name, settling a trigger file out of staging, and
the trigger of an archive. It is its own module so that the run (engine.py), its rollback
and recovery (recovery.py), a revert (revert.py) and the decisions a person takes between
runs (manual.py) all import it, and none of them imports another in a cycle.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from dasct import durable, redact
from dasct.errors import DasctError
from dasct.migrate import archive, lock
from dasct.migrate import trace as tracing
from dasct.migrate import trigger as trig
from dasct.migrate import trigger_read as trigr
from dasct.migrate.database import Database, DatabaseError, connect, require_driver
from dasct.migrate.environment import EngineError, Environment, ensure_ignored, sqlite_file
from dasct.migrate.report import Reporter

__all__ = ["NEEDS_ATTENTION", "Session", "Write", "archived_trigger", "needs_attention", "owner",
           "prepare", "refuse_if_attention", "session", "settle_file"]

NEEDS_ATTENTION = "needs-attention.json"
# Audit events that make a run's trace worth keeping (docs/audit-and-notifications.md).
_FAILURES = frozenset({"rolled-back", "escalation", "trigger-refused", "refused",
                       "revert-refused", "restart-after-restore-failed"})
Write = Callable[[str], None]


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
        self.pinned: tuple[str, ...] = ()  # archives retention keeps at the end (engine.run)
        self._write = write
        self.keeper = keeper
        self.report = Reporter(env.state_dir, environment=env.name,
                               recipients=env.config.recipients, anchor=env.anchor)
        self._db: Database | None = None
        cfg = env.config
        full = cfg.trace_full_after_failure and (env.state_dir / tracing.FULL_MARK).exists()
        self.trace = tracing.Trace(records=cfg.trace_records, minutes=cfg.trace_minutes,
                                   full=full)
        self.trace.add("session", environment=env.name, root=str(env.root),
                       database=redact.mask_urls(env.database), pid=os.getpid(),
                       owner=owner(), remote=env.remote is not None, full=full)

    def write(self, line: str) -> None:
        """Say line to the person (or CI log) running this, and trace it."""
        self.trace.add("output", line=line)
        self._write(line)

    @property
    def db(self) -> Database:
        """The target database, connected on first use."""
        if self._db is None:
            self._db = connect(self.env.database)
        return self._db

    def tracer(self, kind: str, **fields: Any) -> Callable[..., None]:
        """A callback adding kind records (with fields) to the trace, for a step's detail."""
        return lambda **more: self.trace.add(kind, **fields, **more)

    def log(self, event: str, **fields: Any) -> None:
        """Append an audit record (traced too; a failure's event marks the trace kept)."""
        self.report.audit(event, **fields)
        self.trace.add("audit", event=event, **fields)
        if event in _FAILURES:
            name = fields.get("trigger") or Path(str(fields.get("path", ""))).stem
            self.trace.failed(str(name or ""), f"{event}: {fields.get('reason', '')}".rstrip(": "))

    def keep_trace(self, error: BaseException | None = None) -> None:
        """At the end of the session: write the trace when something failed (or when this
        is the full-detail run after a failure), record its digest, set or clear the mark
        that asks the next run for full detail, and prune traces past retention."""
        t, env = self.trace, self.env
        if error is not None:
            t.failed("", f"error: {type(error).__name__}: {error}")
        mark = env.state_dir / tracing.FULL_MARK
        cfg = env.config
        if t.failures or t.full:
            try:
                self._keep(t, mark)
            except OSError as exc:  # lost detail, never a failed run (a full disk, say)
                self._write(f"note: the trace of this run was not kept: {exc}")
        for path in tracing.prune(env.state_dir, keep_count=cfg.retention_count,
                                  keep_days=cfg.retention_days):
            self.report.audit("trace-pruned", path=path.relative_to(env.state_dir).as_posix())

    def _keep(self, t: tracing.Trace, mark: Path) -> None:
        env = self.env
        _, told = tracing.keep_recorded(t, env.state_dir, env.name, self.report.audit)
        if t.failures and env.config.trace_full_after_failure:
            durable.atomic_write(mark, b"the last run failed: the next one keeps every record\n")
        elif mark.exists():
            mark.unlink()
        self._write(told)

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



def settle_file(env: Environment, path: Path, outcome: str) -> None:
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
    return trigr.load(a.path / "trigger.json", environments=[env.name], key=None,
                     require_signature=False)



def owner() -> str:
    """Who holds the lock, as the lease records it."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"dasct migrate ({user})"



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
        except BaseException as exc:
            # The run's own error is what the caller must see; a log that cannot be
            # anchored now is refused again by the next checkpoint and reported by
            # `audit verify`, and a trace that cannot be written is only lost detail.
            with suppress(DasctError, OSError):
                ctx.keep_trace(exc)
            with suppress(DasctError, OSError):
                ctx.report.checkpoint()
            raise
        else:
            ctx.keep_trace()
            ctx.report.checkpoint()
        finally:
            ctx.close()
    finally:
        keeper.stop()
        lock.release(env.state_dir, keeper.lease)



def refuse_if_attention(ctx: Session) -> None:
    """Raise EngineError while the environment is marked as needing attention."""
    marker = needs_attention(ctx.env.state_dir)
    if marker is not None:
        ctx.log("refused", reason="needs attention", trigger=marker.get("trigger"))
        raise EngineError(
            f"environment {ctx.env.name} needs attention since a failed restore of "
            f"{marker.get('trigger')} ({'; '.join(marker.get('problems', []))}); fix it, "
            f"then run `dasct migrate resolve --env {ctx.env.name}`")
