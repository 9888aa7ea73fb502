"""The migration part of `dasct demo`: a first deployment (baseline), an enhancement
migrated, a failure rolled back, a revert.

Everything happens in workdir on embedded defaults: a git repository, a model environment
made of a directory and a SQLite database, a staging area. No server, no network.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from dasct import config, git
from dasct.audit import verify as audit_verify
from dasct.migrate import engine, inventory, revert
from dasct.migrate import trigger as trig
from dasct.migrate.create import baseline, create
from dasct.migrate.environment import Environment, environment

_IDENTITY = ("-c", "user.name=dasct demo", "-c", "user.email=demo@example.com")

BASE = {
    "app/greet.py": "def greet():\n    return 'hello'\n",
    "app/settings.ini": "[app]\nname = demo\n",
    "README.txt": "The demo application.\n",
}
ENHANCEMENT = {
    "app/greet.py": "from app.users import first_user\n\n\ndef greet():\n"
                    "    return f'hello {first_user()}'\n",
    "app/users.py": "def first_user():\n    return 'ada'\n",
    "db/deploy/users.sql": "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n"
                           "INSERT INTO users (name) VALUES ('ada');\n",
    "db/revert/users.sql": "DROP TABLE users;\n",
    "db/verify/users.sql": "SELECT count(*) FROM users WHERE name = 'ada';\n",
}
BROKEN = {
    "app/settings.ini": "[app]\nname = demo\naudit = on\n",
    "db/deploy/audit_trail.sql": "CREATE TABLE audit_trail (id INTEGER PRIMARY KEY, what TEXT);\n",
    "db/revert/audit_trail.sql": "DROP TABLE audit_trail;\n",
    # Meant to check the backfill the developer forgot: the table is empty, so it fails.
    "db/verify/audit_trail.sql": "SELECT count(*) FROM audit_trail;\n",
}


def _commit(repo: Path, message: str, files: dict[str, str]) -> str:
    for name, text in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git.run("add", "-A", cwd=repo)
    git.run(*_IDENTITY, "commit", "-q", "-m", message, cwd=repo)
    return git.run("rev-parse", "HEAD", cwd=repo).decode().strip()


def _state_hash(env: Environment) -> str:
    """One hash over every file of the target (path, mode, content) and the database dump."""
    digest = hashlib.sha256()
    for path in sorted(p for p in env.root.rglob("*") if p.is_file()):
        rel = path.relative_to(env.root).as_posix()
        digest.update(f"{rel}\0{path.stat().st_mode:o}\0".encode() + path.read_bytes())
    db_path = Path(env.database[len("sqlite:///"):])
    if db_path.exists():
        conn = sqlite3.connect(db_path)
        try:
            for line in conn.iterdump():
                digest.update(line.encode())
        finally:
            conn.close()
    return digest.hexdigest()[:16]


def _tables(env: Environment) -> list[str]:
    conn = sqlite3.connect(env.database[len("sqlite:///"):])
    try:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY 1")
        return [r[0] for r in rows]
    finally:
        conn.close()


def _make_trigger(repo: Path, cfg: config.Config, env: Environment, rev_range: str,
                  tid: str) -> trig.Trigger:
    return create(
        repo_root=repo, rev_range=rev_range, environment=env.name, staging=env.staging,
        migrate=cfg.migrate, defect_patterns=cfg.defects.compiled(), tid=tid,
        at=datetime.now(timezone.utc))


def run_demo(workdir: Path, write: Callable[[str], None]) -> None:
    """Deploy a baseline into an empty model environment, migrate a sample enhancement,
    roll back a bad one, revert."""
    repo = workdir / "app-repo"
    repo.mkdir(parents=True)
    git.run("init", "-q", "-b", "main", cwd=repo)
    # The demo's configuration is not part of the application it deploys.
    (repo / ".git" / "info").mkdir(parents=True, exist_ok=True)
    (repo / ".git" / "info" / "exclude").write_text(".dasct.toml\n")
    (repo / ".dasct.toml").write_text(
        '[environments.model]\nroot = "../model/root"\n'
        'database = "sqlite:///../model/app.sqlite"\nstate_dir = "../model/state"\n'
        'staging = "../staging"\nrecipients = ["qa@example.com"]\n')
    base = _commit(repo, "Initial application", BASE)
    cfg = config.load(repo)
    env = environment(cfg, "model", repo)
    env.root.mkdir(parents=True, exist_ok=True)

    def show(line: str) -> None:
        write(f"    {line}")

    write("Touch-less migration")
    # The model environment starts empty; its first deployment is the initial version.
    first = baseline(repo_root=repo, rev=base, environment=env.name, staging=env.staging,
                     migrate=cfg.migrate, tid="baseline", at=datetime.now(timezone.utc))
    write(f"  0. dasct trigger create --baseline {base[:10]} --env {env.name}: "
          f"{len(first.files)} file(s) to add to the empty target, then migrate run")
    engine.run(env, ignore_window=True, write=show)
    good = _commit(repo, "PROJ-42: greet the first user by name", ENHANCEMENT)
    t = _make_trigger(repo, cfg, env, f"{base}..{good}", "PROJ-42")
    write(f"  1. CI wrote trigger {t.id} for {env.name}: defects {', '.join(t.defects)}, "
          f"{len(t.sql)} SQL change(s), {len(t.files)} file change(s)")
    write(f"  2. dasct migrate run --env {env.name} --now   (model state {_state_hash(env)})")
    engine.run(env, ignore_window=True, write=show)
    items = inventory.load(env.state_dir)["items"]
    write(f"     tables now: {', '.join(_tables(env))}; inventory: "
          + ", ".join(f"{k} <- {v['enhancement']}" for k, v in sorted(items.items())))

    bad = _commit(repo, "PROJ-43: record an audit trail", BROKEN)
    t2 = _make_trigger(repo, cfg, env, f"{good}..{bad}", "PROJ-43")
    before = _state_hash(env)
    write(f"  3. a broken enhancement: trigger {t2.id} (its SQL verify fails); state {before}")
    engine.run(env, ignore_window=True, write=show)
    after = _state_hash(env)
    verdict = "byte-identical" if after == before else "DIFFERENT"
    write(f"     after the rollback: state {after} ({verdict} to before)")

    write(f"  4. dasct migrate revert PROJ-42 --env {env.name}   (the upgrade nobody wanted)")
    revert.revert(env, "PROJ-42", write=show)
    same = all((env.root / n).read_text() == text for n, text in BASE.items())
    write(f"     files back to the initial version: {'yes' if same else 'NO'}; "
          f"tables now: {', '.join(_tables(env)) or 'none'}")
    problems = audit_verify(env.state_dir)
    write(f"  5. audit log {env.state_dir / 'audit.jsonl'}: "
          + ("intact" if not problems else f"{len(problems)} problem(s)")
          + f"; notifications in {env.state_dir / 'notifications.jsonl'}")
