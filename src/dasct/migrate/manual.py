"""What a person does to an environment between runs: resolve, unlock, withdraw.

Clear the needs-attention mark after fixing a failed restore by hand, show or break a
stale lock, take a pending trigger out of staging without running it. Each is a decision
taken outside a run, audited; it is separate from the run (engine.py) because none of it
migrates anything, and the run only borrows `break_lock` (for --break-stale-lock).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dasct.migrate import inventory, journal, lock
from dasct.migrate import trigger as trig
from dasct.migrate.environment import EngineError, Environment
from dasct.migrate.report import Reporter
from dasct.migrate.session import (
    NEEDS_ATTENTION,
    Write,
    needs_attention,
    owner,
    session,
    settle_file,
)

__all__ = ["break_lock", "resolve", "unlock", "withdraw"]


def _audit(env: Environment, event: str, **fields: Any) -> None:
    # A decision taken outside a run (lock broken, escalation resolved): audited, not notified.
    report = Reporter(env.state_dir, environment=env.name, recipients=(), anchor=env.anchor)
    report.audit(event, **fields)
    report.checkpoint()


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
    break_lock(env, write)
    return True


def break_lock(env: Environment, write: Write) -> bool:
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
        settle_file(env, path, "withdrawn")
        ctx.log("withdrawn", trigger=tid, reason=reason)
        ctx.report.withdrawn(tid, reason=reason)
        ctx.report.flush()
    return env.state_dir / "triggers" / "withdrawn" / path.name
