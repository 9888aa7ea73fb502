"""Helpers for the engine tests: a configured environment, staged triggers, snapshots."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from dasct import config
from dasct.migrate import engine, journal
from dasct.migrate import trigger as trig
from dasct.migrate import trigger_write as trigw
from dasct.migrate.environment import Environment, environment

NOW = datetime(2026, 11, 24, 1, 0, tzinfo=timezone.utc)
AT = trig.format_time(NOW)  # NOW as `migrate run --at` takes it
SRC = Path(__file__).resolve().parents[2] / "src"

# (name, deploy, revert, verify)
Sql = tuple[str, str, str, "str | None"]
# (op, path, content or None, old_path or None)
File = tuple[str, str, "bytes | None", "str | None"]


def toml_for(tmp: Path, name: str = "model", database: str | None = None,
             extra: str = "") -> str:
    """A .dasct.toml with one environment rooted in tmp."""
    db = database or "sqlite:///db.sqlite"
    return (f'[environments.{name}]\nroot = "target"\ndatabase = "{db}"\n'
            f'state_dir = "state"\nstaging = "staging"\n{extra}')


def make_env(tmp: Path, *, name: str = "model", database: str | None = None,
             extra: str = "") -> Environment:
    """An environment in tmp (target/, db.sqlite, state/, staging/), configured via TOML."""
    (tmp / "target").mkdir(parents=True, exist_ok=True)
    (tmp / ".dasct.toml").write_text(toml_for(tmp, name, database, extra))
    return environment(config.load(tmp), name, tmp)


# The four file operations seed()'s target admits: modify, add (two new directories deep),
# delete, rename.
SEED_FILES: list[File] = [
    ("modify", "app/main.py", b"print('v2')\n", None),
    ("add", "app/new/deep/feature.py", b"feature = 1\n", None),
    ("delete", "app/gone.py", None, None),
    ("rename", "app/renamed.py", b"old\n", "app/old.py"),
]


def seed(tmp: Path, *, extra: str = "") -> Environment:
    """make_env, with a target holding app/main.py (v1), app/old.py and app/gone.py."""
    env = make_env(tmp, extra=extra)
    (env.root / "app").mkdir()
    (env.root / "app" / "main.py").write_text("print('v1')\n")
    (env.root / "app" / "old.py").write_text("old\n")
    (env.root / "app" / "gone.py").write_text("gone\n")
    return env


def quiet(env: Environment, *, now: datetime = NOW, **kw: Any) -> engine.Result:
    """engine.run at `now` (default NOW), its output dropped."""
    return engine.run(env, now=now, write=lambda _: None, **kw)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stage(env: Environment, tid: str, *, sql: Sequence[Sql] = (),
          files: Sequence[File] = (), commands: Sequence[trig.StepCommand] = (),
          depends_on: Sequence[str] = (), conflicts_with: Sequence[str] = (),
          not_before: datetime | None = None, expires: datetime | None = None,
          mode: int = 0o644) -> trig.Trigger:
    """Write a trigger for env whose pre-images are the target's current contents."""
    staging = env.staging
    changes = [
        trig.SqlChange(name, trigw.write_payload(staging, deploy.encode()),
                       trigw.write_payload(staging, revert.encode()),
                       trigw.write_payload(staging, verify.encode()) if verify else None)
        for name, deploy, revert, verify in sql
    ]
    fcs = []
    for op, path, content, old in files:
        source = env.root / (old if op == "rename" and old else path)
        pre = sha(source.read_bytes()) if op != "add" else None
        post = trigw.write_payload(staging, content) if content is not None else None
        fcs.append(trig.FileChange(op, path, old, pre, post, mode))  # type: ignore[arg-type]
    start = not_before or NOW - timedelta(hours=1)
    doc = trigw.document(
        id=tid, system="app", environment=env.name, not_before=start,
        expires=expires or start + timedelta(days=3), defects=["PROJ-1"], commits=[],
        sql=changes, files=fcs, commands=commands, depends_on=depends_on,
        conflicts_with=conflicts_with)
    return trigw.write(staging, doc, key=None)


def snapshot(root: Path) -> dict[str, Any]:
    """Every file (sha256, mode) and directory under root."""
    out: dict[str, Any] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        out[f"{rel}/"] = "dir"
        for f in filenames:
            p = Path(dirpath) / f
            out[os.path.join(rel, f)] = (sha(p.read_bytes()), stat.S_IMODE(p.stat().st_mode))
        dirnames.sort()
    return out


def dump(path: Path) -> list[str]:
    """The SQL dump of a SQLite database (empty when it does not exist)."""
    if not path.exists():
        return []
    conn = sqlite3.connect(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def health(code: int, *, touch: str | None = None) -> trig.StepCommand:
    """A health-check command that exits with code (optionally writing a file first)."""
    script = "import sys\n"
    if touch:
        script += f"open({touch!r}, 'w').write('x')\n"
    script += f"sys.exit({code})"
    return trig.StepCommand("health", (sys.executable, "-c", script), "health", 30.0)


def cli(tmp: Path, *args: str, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    """Run `python -m dasct ARGS` in tmp (a git repo) with the source tree on the path."""
    full = {**os.environ, "PYTHONPATH": str(SRC), **(env or {})}
    return subprocess.run([sys.executable, "-m", "dasct", *args], cwd=tmp, env=full,
                          capture_output=True, text=True, check=False)


def migrate_run(repo: Path, kill_at: int | str | None = None
                ) -> subprocess.CompletedProcess[str]:
    """`dasct migrate run --env model` at NOW, breaking a stale lock; with kill_at the run
    SIGKILLs itself at that journal point (journal.KILL_VAR)."""
    extra = {journal.KILL_VAR: str(kill_at)} if kill_at else {}
    return cli(repo, "migrate", "run", "--env", "model", "--at", AT, "--break-stale-lock",
               env=extra)


def kill_points(state_dir: Path) -> list[int | str]:
    """Where a run like the last one can be killed: after each of its journal records
    (journal.last.jsonl), and after each planned step took effect but before its record."""
    records = (state_dir / journal.LAST_NAME).read_text().splitlines()
    planned = json.loads(records[0])["steps"]
    return [*range(1, len(records) + 1), *(f"{s}:applied" for s in planned)]
