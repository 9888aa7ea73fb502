"""Scripts with their own transaction control: refused at `trigger create` and before running.

The engine wraps every script in a transaction of its own (with its bookkeeping row on
PostgreSQL); a script's own BEGIN ... COMMIT would end it half-way. sqltext finds such
statements without being fooled by strings, comments, dollar quotes or function bodies;
create.py and database.py both ask it.
"""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import psycopg
import pytest
from engine_kit import make_env, quiet, stage
from hypothesis import given
from hypothesis import strategies as st

from dasct.config import DefectsConfig, MigrateConfig
from dasct.migrate import database, inventory, sqltext
from dasct.migrate.create import create
from dasct.migrate.trigger import TriggerError

# Statements that contain the words but control no transaction.
HARMLESS = [
    "CREATE TABLE t (x int)",
    "SELECT 'BEGIN; COMMIT;'",
    "SELECT 'it''s; COMMIT'",
    "SELECT E'\\'; COMMIT; \\''",
    'SELECT 1 AS "commit"',
    'CREATE TABLE "begin" ("end" int)',
    "SELECT 1 -- ; COMMIT;\n",
    "SELECT /* ; COMMIT; /* nested */ ROLLBACK; */ 1",
    "SELECT $$; COMMIT;$$",
    "SELECT $tag$ $$ ; END; $$ $tag$",
    "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN COMMIT; RETURN 1; END $$",
    "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS ' BEGIN RETURN 1; END '",
    "DO $$ BEGIN ROLLBACK; END $$",
    "CREATE FUNCTION g() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; "
    "SELECT CASE WHEN true THEN 1 ELSE 2 END; END",
    "CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC INSERT INTO t VALUES (1); END",
    "CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET x = CASE WHEN x THEN 1 END; "
    "DELETE FROM t WHERE 0; END",
    "CREATE TEMP TRIGGER tr2 AFTER DELETE ON t FOR EACH ROW BEGIN SELECT 1; END",
    "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO u VALUES (1); DELETE FROM u)",
    "PREPARE q AS SELECT 1",
    "UPDATE t SET x = 1 WHERE x IN (SELECT x FROM t)",
    "SELECT x AS begin_at, x AS commit_sha FROM t",
]
CONTROL = [
    ("BEGIN", "BEGIN"), ("begin transaction", "BEGIN"), ("BEGIN IMMEDIATE", "BEGIN"),
    ("COMMIT", "COMMIT"), ("commit work", "COMMIT"), ("END", "END"), ("ROLLBACK", "ROLLBACK"),
    ("ROLLBACK TO SAVEPOINT s", "ROLLBACK"), ("ABORT", "ABORT"), ("SAVEPOINT s", "SAVEPOINT"),
    ("RELEASE SAVEPOINT s", "RELEASE"), ("START TRANSACTION", "START TRANSACTION"),
    ("PREPARE TRANSACTION 'x'", "PREPARE TRANSACTION"), ("COMMIT PREPARED 'x'", "COMMIT"),
]
SEPARATORS = [";\n", "; ", ";\n\n-- a comment; COMMIT;\n", ";\n/* COMMIT; */\n"]


@pytest.mark.parametrize("statement", HARMLESS)
def test_harmless_statements_pass(statement: str) -> None:
    assert sqltext.transaction_control(statement + ";\n") is None


@pytest.mark.parametrize(("statement", "keyword"), CONTROL)
def test_transaction_control_is_found(statement: str, keyword: str) -> None:
    script = f"CREATE TABLE t (x int);\n\n  {statement};\nINSERT INTO t VALUES (1);\n"
    assert sqltext.transaction_control(script) == f"{keyword} on line 3"


@given(
    before=st.lists(st.sampled_from(HARMLESS), max_size=4),
    after=st.lists(st.sampled_from(HARMLESS), max_size=4),
    control=st.none() | st.sampled_from(CONTROL),
    separators=st.lists(st.sampled_from(SEPARATORS), min_size=9, max_size=9),
    final=st.booleans(),
)
def test_found_exactly_when_there_is_one(before: list[str], after: list[str],
                                         control: tuple[str, str] | None,
                                         separators: list[str], final: bool) -> None:
    statements = [*before, *([control[0]] if control else []), *after]
    pieces = [s + sep for s, sep in zip(statements, separators, strict=False)]
    if pieces and not final:  # the last statement may lack its ';'
        pieces[-1] = statements[-1]
    script = "".join(pieces)
    found = sqltext.transaction_control(script)
    if control is None:
        assert found is None, script
    else:
        line = "".join(pieces[: len(before)]).count("\n") + 1
        assert found == f"{control[1]} on line {line}", script


# `trigger create`


def git(root: Path, *args: str) -> str:
    return subprocess.run(("git", *args), cwd=root, check=True, capture_output=True,
                          text=True).stdout.strip()


def repo_with(tmp_path: Path, scripts: dict[str, str]) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "commit", "-q", "--allow-empty", "-m", "initial")
    for name, text in {"db/sqitch.plan": "%project=app\n\nusers\n", **scripts}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "users")
    return root


def build(root: Path, staging: Path) -> None:
    create(repo_root=root, rev_range="HEAD~1..HEAD", environment="model", staging=staging,
           migrate=MigrateConfig(system="app", sql_dir="db", expiry_hours=72),
           defect_patterns=DefectsConfig().compiled())


@pytest.mark.parametrize("kind", ["deploy", "revert", "verify"])
def test_create_refuses_a_script_with_transaction_control(tmp_path: Path, kind: str) -> None:
    scripts = {"db/deploy/users.sql": "CREATE TABLE users (id int);\n",
               "db/revert/users.sql": "DROP TABLE users;\n",
               "db/verify/users.sql": "SELECT id FROM users WHERE false;\n"}
    scripts[f"db/{kind}/users.sql"] = f"BEGIN;\n{scripts[f'db/{kind}/users.sql']}COMMIT;\n"
    root, staging = repo_with(tmp_path, scripts), tmp_path / "staging"
    with pytest.raises(TriggerError) as caught:
        build(root, staging)
    message = str(caught.value)
    assert "\n" not in message
    assert f"db/{kind}/users.sql: transaction control (BEGIN on line 1) is not allowed" in message
    assert not list(staging.glob("*.json"))  # no trigger written


def test_create_accepts_function_and_trigger_bodies(tmp_path: Path) -> None:
    body = "\n".join(s + ";" for s in HARMLESS) + "\n"
    root = repo_with(tmp_path, {"db/deploy/users.sql": body,
                                "db/revert/users.sql": "DROP TABLE t;\n"})
    build(root, tmp_path / "staging")


# Before running: a hand-made trigger that slipped past `trigger create`.

OWN_TRANSACTION = ("users", "BEGIN;\nCREATE TABLE users (id int);\nCOMMIT;\n",
                   "DROP TABLE users;", "SELECT count(*) FROM users;")


@pytest.mark.parametrize("tail", ["", "INSERT INTO nowhere VALUES (1);\n"])
def test_postgresql_refuses_to_run_a_deploy_with_its_own_commit(tmp_path: Path, pg_url: str,
                                                                tail: str) -> None:
    # With a failure after its COMMIT the deploy used to leave its table and no bookkeeping
    # row: the working revert was never run and the run escalated.
    env = make_env(tmp_path, database=pg_url)
    db = database.connect(pg_url)
    before = db.fingerprint()
    name, deploy, revert, verify = OWN_TRANSACTION
    stage(env, "E1", sql=[(name, deploy + tail, revert, verify)])
    result = quiet(env)
    assert result.rolled_back == ["E1"] and not result.stats.escalated
    outcome = inventory.outcome(env.state_dir, "E1")
    assert outcome is not None
    assert ("deploy users: transaction control (BEGIN on line 1) is not allowed"
            in outcome["reason"])
    assert db.fingerprint() == before
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT to_regclass('users')").fetchone() == (None,)
    db.close()


def test_sqlite_refuses_to_run_a_deploy_with_its_own_commit(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    db = database.connect(env.database)
    before = db.fingerprint()
    stage(env, "E1", sql=[OWN_TRANSACTION])
    result = quiet(env)
    assert result.rolled_back == ["E1"] and not result.stats.escalated
    outcome = inventory.outcome(env.state_dir, "E1")
    assert outcome is not None and "deploy users: transaction control" in outcome["reason"]
    assert db.fingerprint() == before
    db.close()


@pytest.mark.parametrize("engine_kind", ["sqlite", "postgresql"])
def test_scripts_are_refused_before_anything_runs(tmp_path: Path, engine_kind: str,
                                                  request: pytest.FixtureRequest) -> None:
    url = (request.getfixturevalue("pg_url") if engine_kind == "postgresql"
           else f"sqlite:///{tmp_path / 'db.sqlite'}")
    db = database.connect(url)
    try:
        before = db.fingerprint()
        script = "CREATE TABLE early (x int);\nSAVEPOINT s;\nCREATE TABLE late (x int);"
        with pytest.raises(database.DatabaseError,
                           match=r"^deploy x: transaction control \(SAVEPOINT on line 2\)"):
            db.run_script(script, label="deploy x", mark=("E1", "x"))
        with pytest.raises(database.DatabaseError, match=r"^verify x: .*\(COMMIT on line 1\)"):
            db.verify_script("COMMIT; SELECT 1;", label="verify x")
        assert db.fingerprint() == before  # nothing of it ran
        assert db.deployed_changes("E1") in (None, [])
    finally:
        db.close()


def test_postgresql_runs_function_bodies_with_begin(tmp_path: Path, pg_url: str) -> None:
    env = make_env(tmp_path, database=pg_url)
    deploy = ("CREATE TABLE t (x int);\n"
              "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$\nBEGIN\n  RETURN 1;\n"
              "END\n$$;\nCREATE FUNCTION g() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n"
              "  SELECT CASE WHEN f() = 1 THEN 2 END;\nEND;\n")
    stage(env, "E1", sql=[("fns", deploy, "DROP FUNCTION g(); DROP FUNCTION f(); DROP TABLE t;",
                           "SELECT g() = 2;")])
    assert quiet(env).migrated == ["E1"]


def test_sqlite_runs_trigger_bodies_with_begin(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    deploy = ("CREATE TABLE t (x int);\nCREATE TABLE log (x int);\n"
              "CREATE TRIGGER t_log AFTER INSERT ON t BEGIN\n"
              "  INSERT INTO log VALUES (CASE WHEN new.x > 0 THEN new.x END);\nEND;\n"
              "INSERT INTO t VALUES (5);\n")
    stage(env, "E1", sql=[("trg", deploy, "DROP TABLE t; DROP TABLE log;",
                           "SELECT x = 5 FROM log;")])
    assert quiet(env).migrated == ["E1"]
    with sqlite3.connect(tmp_path / "db.sqlite") as conn:
        assert conn.execute("SELECT x FROM log").fetchall() == [(5,)]
