"""End to end through the command line: `dasct trigger create` from a real git range, then
`dasct migrate run`, `dasct audit verify` and `dasct migrate revert`."""

from __future__ import annotations

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
    made = cli(repo.path, "trigger", "create", "--range", f"{a}..{b}", "--env", "model",
               "--id", "PROJ-7")
    assert made.returncode == 0, made.stderr
    run = cli(repo.path, "migrate", "run", "--env", "model", "--now")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "migrated PROJ-7" in run.stdout
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
