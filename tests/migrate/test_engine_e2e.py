"""End to end through the command line: `dasct trigger create` from a real git range, then
`dasct migrate run`, `dasct audit verify` and `dasct migrate revert`."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from engine_kit import cli

from gitrepo import GitRepo

BASE = {"app/main.py": "print('v1')\n", "app/util.py": "X = 1\n", "README": "demo\n"}
CHANGE = {
    "app/main.py": "print('v2')\n",
    "app/extra/new.py": "NEW = True\n",
    "db/deploy/items.sql": "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT);\n",
    "db/revert/items.sql": "DROP TABLE items;\n",
    "db/verify/items.sql": "SELECT id, name FROM items WHERE 0;\n",
}


def tables(db: Path) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        return [r[0] for r in conn.execute("SELECT name FROM sqlite_master ORDER BY 1")]
    finally:
        conn.close()


def create_and_migrate(repo: GitRepo, rev_range: str, tid: str) -> None:
    """`dasct trigger create --range` then `dasct migrate run --now`: both succeed."""
    made = cli(repo.path, "trigger", "create", "--range", rev_range, "--env", "model",
               "--id", tid)
    assert made.returncode == 0, made.stderr
    run = cli(repo.path, "migrate", "run", "--env", "model", "--now")
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"migrated {tid}" in run.stdout


def test_create_then_migrate_then_revert_through_the_cli(repo: GitRepo) -> None:
    repo.write(".dasct.toml", '[environments.model]\nroot = "../target"\n'
               'database = "sqlite:///../model.sqlite"\nstate_dir = "../state"\n')
    a = repo.commit("base", BASE)
    (repo.path / "app/util.py").unlink()
    b = repo.commit("PROJ-7: v2 with items", CHANGE)
    target = repo.path.parent / "target"
    for name, text in BASE.items():
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        (target / name).write_text(text)
    create_and_migrate(repo, f"{a}..{b}", "PROJ-7")
    assert (target / "app/main.py").read_text() == "print('v2')\n"
    assert (target / "app/extra/new.py").exists() and not (target / "app/util.py").exists()
    assert not (target / "db").exists()
    assert tables(repo.path.parent / "model.sqlite") == ["items"]
    audit = cli(repo.path, "audit", "verify", "--env", "model")
    assert audit.returncode == 0, audit.stdout + audit.stderr
    revert = cli(repo.path, "migrate", "revert", "PROJ-7", "--env", "model")
    assert revert.returncode == 0, revert.stdout + revert.stderr
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()
                  ) == sorted(BASE)
    assert tables(repo.path.parent / "model.sqlite") == []


PLAN = "%syntax-version=1.0.0\n%project=app\n\nusers 2026-11-01T00:00:00Z a <a@b> # users\n"
FIRST = {
    "app/main.py": "print('v1')\n",
    "bin/run.sh": "#!/bin/sh\nexec python app/main.py\n",
    "db/sqitch.plan": PLAN,
    "db/deploy/users.sql": "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);\n",
    "db/revert/users.sql": "DROP TABLE users;\n",
    "db/verify/users.sql": "SELECT id, name FROM users WHERE 0;\n",
}


def test_first_deployment_from_a_baseline_then_a_range_applies(repo: GitRepo) -> None:
    # The embedded default environment: no configuration, an empty directory and an empty
    # SQLite database under .dasct/env/model/.
    repo.commit("first version", FIRST)
    (repo.path / "bin/run.sh").chmod(0o755)
    repo.commit("run script is executable")
    repo.git("tag", "base")
    repo.commit("PROJ-9: v2 with items", {
        "app/main.py": "print('v2')\n",
        "db/sqitch.plan": PLAN + "items 2026-11-02T00:00:00Z a <a@b> # items\n",
        "db/deploy/items.sql": "CREATE TABLE items (id INTEGER PRIMARY KEY);\n",
        "db/revert/items.sql": "DROP TABLE items;\n",
    })
    target = repo.path / ".dasct/env/model/root"
    database = repo.path / ".dasct/env/model/db.sqlite"

    first = cli(repo.path, "trigger", "create", "--baseline", "base", "--env", "model")
    assert first.returncode == 0, first.stderr
    assert "0 file change(s)" not in first.stderr and "1 SQL change(s)" in first.stderr
    doc = json.loads(Path(first.stdout.strip()).read_text())
    assert doc["id"].startswith("baseline-") and doc["defects"] == []
    assert doc["commits"] == [repo.git("rev-parse", "base").strip()]
    assert {f["op"] for f in doc["steps"]["files"]} == {"add"}
    assert sorted(f["path"] for f in doc["steps"]["files"]) == ["app/main.py", "bin/run.sh"]
    assert [c["name"] for c in doc["steps"]["sql"]] == ["users"]

    run = cli(repo.path, "migrate", "run", "--env", "model", "--now")
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"migrated {doc['id']}" in run.stdout
    assert (target / "app/main.py").read_text() == "print('v1')\n"
    assert (target / "bin/run.sh").stat().st_mode & 0o777 == 0o755
    assert not (target / "db").exists()
    assert tables(database) == ["users"]

    create_and_migrate(repo, "base..HEAD", "PROJ-9")
    assert (target / "app/main.py").read_text() == "print('v2')\n"
    assert tables(database) == ["items", "users"]
    status = cli(repo.path, "migrate", "status", "--env", "model")
    rows = [line.split() for line in status.stdout.splitlines()]
    assert ["file:bin/run.sh", doc["id"]] in [r[:2] for r in rows]
    assert ["file:app/main.py", "PROJ-9"] in [r[:2] for r in rows]
    audit = cli(repo.path, "audit", "verify", "--env", "model")
    assert audit.returncode == 0, audit.stdout + audit.stderr

    # A baseline is applied only to a target that has none of its files.
    again = cli(repo.path, "trigger", "create", "--baseline", "HEAD", "--env", "model",
                "--id", "second-baseline")
    assert again.returncode == 0, again.stderr
    refused = cli(repo.path, "migrate", "run", "--env", "model", "--now")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert ("2 of its 2 new file(s) already exist on the target ('app/main.py', "
            "'bin/run.sh'); a trigger that only adds files, like a baseline, applies only "
            "to a target that has none of them") in refused.stdout, refused.stdout
    assert (target / "app/main.py").read_text() == "print('v2')\n"
    assert tables(database) == ["items", "users"]

    # It is reverted like any enhancement: the target is empty again.
    back = cli(repo.path, "migrate", "revert", "PROJ-9", "--env", "model")
    assert back.returncode == 0, back.stdout + back.stderr
    back = cli(repo.path, "migrate", "revert", doc["id"], "--env", "model")
    assert back.returncode == 0, back.stdout + back.stderr
    assert [p for p in target.rglob("*")] == [] and tables(database) == []
