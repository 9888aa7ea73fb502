"""Drift: what an environment holds that no longer matches its inventory (changed by hand).

Files: every `file:PATH` item is hashed on the target and compared with the sha256 the
inventory recorded. SQL: the inventory records the deploy script's hash, not a fingerprint
of the objects it made (the engine fingerprints the whole database only around a
migration, see database.py), so what can be checked is behaviour: each `sql:NAME` item's
verify script, run read-only in a transaction that is always rolled back, exactly as the
engine runs it after the deploy. A change without a verify script, or whose script is no
longer kept (its trigger and staging payloads gone), is reported as not checked. Nothing
here takes the lock or writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dasct.migrate import inventory, journal, lock
from dasct.migrate import trigger as trig
from dasct.migrate import trigger_check as trigc
from dasct.migrate import trigger_read as trigr
from dasct.migrate.database import DatabaseError, connect
from dasct.migrate.environment import EngineError, Environment, sqlite_file
from dasct.migrate.status import settled_trigger


@dataclass
class Verification:
    """What inventory verify found in one environment."""

    environment: str
    files: int = 0  # file items hashed
    sql_checked: int = 0  # SQL items whose verify script ran
    drift: list[tuple[str, str]] = field(default_factory=list)  # item, what is wrong
    unchecked: list[tuple[str, str]] = field(default_factory=list)  # item, why not
    note: str = ""  # e.g. the environment is locked by a run

    def line(self) -> str:
        """One line for people."""
        not_checked = f", {len(self.unchecked)} SQL change(s) not checked" if self.unchecked \
            else ""
        return (f"{self.environment}: {self.files} file(s) match the inventory, "
                f"{self.sql_checked} SQL change(s) pass their verify script{not_checked}")


def _file_problem(root: Path, rel: str, want: str) -> str | None:
    path = root / rel
    if path.is_symlink() or not path.is_file():
        return "missing on the target" if not path.exists() and not path.is_symlink() \
            else "no longer a regular file"
    have = trigc.file_sha256(path)
    if have != want:
        return f"content changed (sha256 {have[:12]}, inventory {want[:12]})"
    return None


def _trigger(env: Environment, tid: str) -> trig.Trigger | None:
    """The trigger tid was migrated with: its settled file, else its archived copy."""
    found = settled_trigger(env, env.state_dir / "triggers" / "migrated" / f"{tid}.json")
    if found is not None:
        return found
    try:
        return trigr.load(env.state_dir / "archives" / tid / "trigger.json",
                         environments=[env.name], key=None, require_signature=False)
    except trig.TriggerError:
        return None


def _verify_script(env: Environment, tid: str, name: str) -> tuple[bytes | None, str]:
    t = _trigger(env, tid)
    if t is None:
        return None, f"the trigger of {tid} is no longer kept"
    change = next((c for c in t.sql if c.name == name), None)
    if change is None or change.verify is None:
        return None, f"{tid} has no verify script for it"
    # The archive keeps deploy and revert scripts only: a verify script lives in staging.
    try:
        return trigc.read_payload(env.staging, change.verify), ""
    except trig.TriggerError:
        return None, f"its verify script is no longer in staging ({env.staging})"


def verify(env: Environment) -> Verification:
    """Compare env's target and database with its inventory."""
    if journal.pending(env.state_dir):
        raise EngineError(f"{env.name}: a migration is in flight or was interrupted; "
                          f"`dasct migrate run --env {env.name}` settles it first")
    result = Verification(env.name)
    holder = lock.read(env.state_dir)
    if holder is not None:
        result.note = f"locked by {holder.describe()}: a run may be changing it now"
    data = inventory.load(env.state_dir)["items"]
    scripts: list[tuple[str, bytes]] = []
    for item, entry in sorted(data.items()):
        kind, _, name = item.partition(":")
        if kind == "file":
            result.files += 1
            problem = _file_problem(env.root, name, entry["sha256"])
            if problem:
                result.drift.append((item, problem))
            continue
        script, why = _verify_script(env, entry["enhancement"], name)
        if script is None:
            result.unchecked.append((item, why))
        else:
            scripts.append((item, script))
    if scripts:
        _run_verify(env, scripts, result)
    return result


def _run_verify(env: Environment, scripts: list[tuple[str, bytes]],
                result: Verification) -> None:
    db_file = sqlite_file(env.database)
    if db_file is not None and not db_file.is_file():
        # connect() would create an empty database: a missing one is drift of every change.
        result.drift += [(item, f"the database {db_file} is missing") for item, _ in scripts]
        return
    try:
        db = connect(env.database)
    except DatabaseError as exc:
        raise EngineError(f"{env.name}: {exc}") from None
    try:
        for item, script in scripts:
            try:
                db.verify_script(script.decode(errors="replace"), label=item)
                result.sql_checked += 1
            except DatabaseError as exc:
                result.drift.append((item, f"its verify script fails now: {exc}"))
    finally:
        db.close()
