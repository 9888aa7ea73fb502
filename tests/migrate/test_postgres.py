"""The engine against a real PostgreSQL server (see conftest.py for where it comes from)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest
from engine_kit import health, kill_points, make_env, migrate_run, quiet, snapshot, stage

from dasct.migrate import database, inventory, revert, session
from dasct.migrate.environment import Environment

USERS = ("users", "CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL);\n"
         "INSERT INTO users (name) VALUES ('ada'), ('bob');\n"
         "UPDATE users SET name = name WHERE name LIKE '%%a%';",
         "DROP TABLE users;", "SELECT count(*) = 2 FROM users;")
ORDERS = ("orders", "CREATE TABLE orders (id serial PRIMARY KEY, "
          "user_id int REFERENCES users(id));\nCREATE INDEX orders_user ON orders (user_id);\n"
          "UPDATE keep SET x = x + 1;",
          "DROP TABLE orders;\nUPDATE keep SET x = x - 1;",
          "SELECT x = 2 FROM keep;")


def rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


def pg_env(tmp: Path, url: str) -> Environment:
    env = make_env(tmp, database=url)
    (env.root / "app.py").write_text("v1\n")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE keep (x int); INSERT INTO keep VALUES (1);")
    return env


def fingerprint(url: str) -> str:
    db = database.connect(url)
    try:
        return db.fingerprint()
    finally:
        db.close()


def test_migrates_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    env = pg_env(tmp_path, pg_url)
    stage(env, "E1", sql=[USERS, ORDERS], files=[("modify", "app.py", b"v2\n", None)])
    result = quiet(env)
    assert result.migrated == ["E1"]
    assert rows(pg_url, "SELECT name FROM users ORDER BY id") == [("ada",), ("bob",)]
    assert rows(pg_url, "SELECT x FROM keep") == [(2,)]
    assert rows(pg_url, "SELECT change FROM dasct_bookkeeping.deployed_change ORDER BY change") == [
        ("orders",), ("users",)]
    manifest = (env.state_dir / "archives/E1/manifest.json").read_text()
    assert '"kind": "postgresql"' in manifest
    if database.find_pg_dump():
        assert (env.state_dir / "archives/E1/db.pgdump").stat().st_size > 0
    assert inventory.load(env.state_dir)["items"]["sql:orders"]["enhancement"] == "E1"


@pytest.mark.parametrize("failure", ["health", "verify", "deploy"])
def test_failure_reverts_sql_and_the_restore_is_checked(tmp_path: Path, pg_url: str,
                                                         failure: str) -> None:
    env = pg_env(tmp_path, pg_url)
    before, before_files = fingerprint(pg_url), snapshot(env.root)
    sql = [USERS, ORDERS]
    commands = [health(2)] if failure == "health" else []
    if failure == "verify":
        sql.append(("bad", "CREATE TABLE t3 (x int);", "DROP TABLE t3;",
                    "SELECT count(*) FROM t3;"))  # 0 rows counted: the verify fails
    if failure == "deploy":
        sql.append(("bad", "CREATE TABLE t3 (x int);\nINSERT INTO nowhere VALUES (1);",
                    "DROP TABLE t3;", None))
    stage(env, "E1", sql=sql, files=[("modify", "app.py", b"v2\n", None)], commands=commands)
    result = quiet(env)
    assert result.rolled_back == ["E1"], result
    assert fingerprint(pg_url) == before
    assert snapshot(env.root) == before_files
    assert rows(pg_url, "SELECT count(*) FROM dasct_bookkeeping.deployed_change") == [(0,)]
    assert rows(pg_url, "SELECT to_regclass('t3')") == [(None,)]


def test_revert_that_does_not_undo_escalates(tmp_path: Path, pg_url: str) -> None:
    env = pg_env(tmp_path, pg_url)
    leaky = ("leaky", "CREATE TABLE leaky (x int);", "SELECT 1;", None)
    stage(env, "E1", sql=[leaky], commands=[health(1)])
    result = quiet(env)
    assert result.stats.escalated == 1
    marker = session.needs_attention(env.state_dir)
    assert marker is not None and "database" in marker["problems"][0]


def test_fingerprint_sees_data_and_definitions_not_sequence_positions(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE s (id serial PRIMARY KEY, v text)")
        base = fingerprint(pg_url)
        conn.execute("INSERT INTO s (v) VALUES ('a')")
        assert fingerprint(pg_url) != base
        conn.execute("DELETE FROM s")
        assert fingerprint(pg_url) == base  # the sequence moved on; the content did not
        conn.execute("CREATE INDEX s_v ON s (v)")
        assert fingerprint(pg_url) != base


@pytest.mark.slow
def test_sigkill_at_every_boundary_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    base = tmp_path / "base"
    subprocess.run(["git", "init", "-q", str(base)], check=True)
    env = pg_env(base, pg_url)
    stage(env, "E1", sql=[USERS, ORDERS], files=[("modify", "app.py", b"v2\n", None),
                                                 ("add", "lib/new.py", b"n\n", None)])
    template = pg_url.rsplit("/", 1)[1]
    server = pg_url.rsplit("/", 1)[0]
    before = (fingerprint(pg_url), snapshot(env.root))

    def fresh(name: str) -> Path:
        with psycopg.connect(server + "/postgres", autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name} TEMPLATE {template}")
        work = tmp_path / name
        shutil.copytree(base, work)
        toml = (work / ".dasct.toml").read_text().replace(pg_url, f"{server}/{name}")
        (work / ".dasct.toml").write_text(toml)
        return work

    clean = fresh("dasct_clean")
    assert migrate_run(clean).returncode == 0
    after = (fingerprint(f"{server}/dasct_clean"), snapshot(clean / "target"))
    assert after != before
    points = kill_points(clean / "state")
    names = [f"dasct_kill{n}" for n in range(len(points))]
    try:
        for k, name in zip(points, names, strict=True):
            work = fresh(name)
            assert migrate_run(work, kill_at=k).returncode == -9
            again = migrate_run(work)
            assert again.returncode == 0, (k, again.stderr)
            now = (fingerprint(f"{server}/{name}"), snapshot(work / "target"))
            assert now == after, (k, again.stdout)
            outcome = inventory.outcome(work / "state", "E1")
            assert outcome is not None and outcome["outcome"] == "migrated"
    finally:
        with psycopg.connect(server + "/postgres", autocommit=True) as conn:
            for name in names:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            conn.execute("DROP DATABASE IF EXISTS dasct_clean WITH (FORCE)")


def test_revert_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    env = pg_env(tmp_path, pg_url)
    before = fingerprint(pg_url), snapshot(env.root)
    stage(env, "E1", sql=[USERS, ORDERS], files=[("modify", "app.py", b"v2\n", None)])
    assert quiet(env).migrated == ["E1"]
    with psycopg.connect(pg_url, autocommit=True) as conn:  # the application writes on
        conn.execute("CREATE TABLE notes (t text); INSERT INTO notes VALUES ('kept')")
    result = revert.revert(env, "E1", write=lambda _: None)
    assert result.migrated == ["E1"]
    assert rows(pg_url, "SELECT to_regclass('users'), to_regclass('orders')") == [(None, None)]
    assert rows(pg_url, "SELECT x FROM keep") == [(1,)]
    assert rows(pg_url, "SELECT t FROM notes") == [("kept",)]  # written since: kept
    assert snapshot(env.root) == before[1]


def test_pg_dump_gets_no_secret_and_no_password_on_its_command_line(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Trust authentication ignores the password: the URL may carry one, as production's do.
    password = "Hunter2Secret99"
    url = pg_url.replace("://dasct@", f"://dasct:{password}@")
    real = database.find_pg_dump()
    if real is None:
        pytest.skip("no pg_dump on this machine")
    spy = tmp_path / "bin"
    spy.mkdir()
    (spy / "pg_dump").write_text(
        f'#!/bin/sh\nprintf "%s\\n" "$@" > {tmp_path}/argv\nenv > {tmp_path}/env\n'
        f'exec {real} "$@"\n')
    (spy / "pg_dump").chmod(0o755)
    monkeypatch.setenv("PATH", f"{spy}:{os.environ['PATH']}")
    monkeypatch.setenv("DASCT_TRIGGER_KEY", "SuperSecretKey123456")
    (tmp_path / "archive").mkdir()
    db = database.connect(url)
    try:
        descriptor = db.backup(tmp_path / "archive")
    finally:
        db.close()
    assert descriptor["file"] == "db.pgdump", descriptor["dump_error"]
    assert (tmp_path / "archive" / "db.pgdump").stat().st_size > 0
    argv = (tmp_path / "argv").read_text()
    env = (tmp_path / "env").read_text()
    assert password not in argv and "dasct@127.0.0.1" in argv
    assert "SuperSecretKey123456" not in env and "DASCT_TRIGGER_KEY" not in env
    assert f"PGPASSWORD={password}\n" in env
