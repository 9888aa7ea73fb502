"""The scoped archive against a real PostgreSQL server (conftest.py says where it comes from).

PostgreSQL is rolled back by the revert scripts and checked by the fingerprint, so a scope
that missed a table the enhancement changed would pass a wrong rollback as exact: the
tests give reverts that leave such a table changed and expect an escalation, and, with
reverts that undo everything, a full fingerprint equal to the one before.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
from engine_kit import NOW, health, make_env, quiet, stage

from dasct import audit
from dasct.migrate import database, engine, scope
from dasct.migrate.environment import Environment

SCHEMA = """
CREATE TABLE big (id int PRIMARY KEY, pad text);
INSERT INTO big SELECT g, md5(g::text) FROM generate_series(1, 2000) g;
CREATE TABLE small (id int PRIMARY KEY, v text);
INSERT INTO small VALUES (1, 'a'), (2, 'b');
CREATE TABLE orders (id int PRIMARY KEY, n int);
CREATE TABLE log (what text);
CREATE FUNCTION log_order() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO log VALUES ('order ' || NEW.n); RETURN NEW; END $$;
CREATE TRIGGER orders_log AFTER INSERT ON orders FOR EACH ROW EXECUTE FUNCTION log_order();
CREATE TABLE parent (id int PRIMARY KEY);
CREATE TABLE child (p int REFERENCES parent (id) ON DELETE CASCADE);
INSERT INTO parent VALUES (1); INSERT INTO child VALUES (1), (1);
"""


def pg_env(tmp: Path, url: str) -> Environment:
    env = make_env(tmp, database=url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SCHEMA)
    return env


def full(url: str) -> str:
    db = database.connect(url)
    try:
        return db.fingerprint()
    finally:
        db.close()


def scope_events(env: Environment) -> list[dict[str, Any]]:
    return [r["fields"] for r in audit.records(env.state_dir) if r["event"] == "archive-scope"]


def test_alter_and_update_archive_only_the_small_table(tmp_path: Path, pg_url: str) -> None:
    env = pg_env(tmp_path, pg_url)
    before = full(pg_url)
    stage(env, "E1", sql=[("s", "ALTER TABLE small ADD COLUMN w int;\n"
                               "UPDATE small SET v = v || '!', w = 1;\n"
                               "CREATE TABLE fresh (a int); INSERT INTO fresh VALUES (1);",
                           "DROP TABLE fresh; UPDATE small SET v = rtrim(v, '!');\n"
                           "ALTER TABLE small DROP COLUMN w;", None)], commands=[health(1)])
    assert quiet(env).rolled_back == ["E1"]
    assert full(pg_url) == before
    event = scope_events(env)[0]
    assert event["database"] == "scope" and event["tables"] == ["fresh", "public.small"]


def test_scoped_fingerprint_reads_only_the_scope_s_rows(tmp_path: Path, pg_url: str) -> None:
    pg_env(tmp_path, pg_url)
    db = database.connect(pg_url)
    try:
        within = db.scope_of(scope.analyse([("d", "UPDATE small SET v = 'x';")], "postgres"))
        assert isinstance(within, scope.Scope) and within.tables == ("public.small",)
        before, whole = db.fingerprint(within), db.fingerprint()
        descriptor = db.backup(tmp_path, within)
        db.conn.execute("UPDATE big SET pad = 'changed' WHERE id = 1")
        assert db.fingerprint(within) == before and db.fingerprint() != whole
        db.conn.execute("UPDATE small SET v = 'changed' WHERE id = 1")
        assert db.fingerprint(within) != before
        assert descriptor["scope"]["tables"] == ["public.small"]
        if descriptor["file"]:  # pg_dump present: it dumped small alone
            assert (tmp_path / descriptor["file"]).stat().st_size < 20_000
    finally:
        db.close()


def test_a_trigger_s_writes_are_in_the_scope(tmp_path: Path, pg_url: str) -> None:
    env = pg_env(tmp_path, pg_url)
    before = full(pg_url)
    # The revert deletes the order but leaves the log row the trigger wrote: not exact.
    stage(env, "E1", sql=[("o", "INSERT INTO orders VALUES (1, 7);",
                           "DELETE FROM orders WHERE n = 7;", None)], commands=[health(1)])
    assert quiet(env).stats.escalated == 1
    assert scope_events(env)[0]["tables"] == ["public.log", "public.orders"]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DELETE FROM log")
    assert full(pg_url) == before  # only the log row was left; the check saw it


def test_a_cascade_s_child_is_in_the_scope(tmp_path: Path, pg_url: str) -> None:
    env = pg_env(tmp_path, pg_url)
    # ON DELETE CASCADE removes child rows; re-inserting the parent does not bring them back.
    stage(env, "E1", sql=[("p", "DELETE FROM parent WHERE id = 1;",
                           "INSERT INTO parent VALUES (1);", None)], commands=[health(1)])
    assert quiet(env).stats.escalated == 1
    assert scope_events(env)[0]["tables"] == ["public.child", "public.parent"]


def test_a_do_block_archives_the_whole_database_and_says_so(tmp_path: Path, pg_url: str
                                                            ) -> None:
    env = pg_env(tmp_path, pg_url)
    before = full(pg_url)
    stage(env, "E1", sql=[("d", "DO $$ BEGIN UPDATE big SET pad = 'x' WHERE id = 1; END $$;",
                           "UPDATE big SET pad = md5('1') WHERE id = 1;", None)],
          commands=[health(1)])
    lines: list[str] = []
    engine.run(env, now=NOW, dry_run=True, write=lines.append)
    assert any("archive: whole database (deploy script of d: cannot analyse `DO" in x
               for x in lines), lines
    assert quiet(env).rolled_back == ["E1"]
    assert full(pg_url) == before
    event = scope_events(env)[0]
    assert event["database"] == "whole" and "DO" in event["reason"]


def test_a_migrated_archive_records_its_scope(tmp_path: Path, pg_url: str) -> None:
    env = pg_env(tmp_path, pg_url)
    stage(env, "E1", sql=[("s", "UPDATE small SET v = 'z';", "UPDATE small SET v = 'a';",
                           None)])
    assert quiet(env).migrated == ["E1"]
    desc = json.loads((env.state_dir / "archives/E1/manifest.json").read_text())["database"]
    assert desc["scope"] == {"tables": ["public.small"], "names": []}


def test_called_functions_are_followed_or_fall_back(tmp_path: Path, pg_url: str) -> None:
    pg_env(tmp_path, pg_url)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE counter (n int);\n"
                     "CREATE FUNCTION bump_inner() RETURNS void LANGUAGE sql AS "
                     "'UPDATE counter SET n = n + 1';\n"
                     "CREATE FUNCTION bump() RETURNS void LANGUAGE plpgsql AS "
                     "$$ BEGIN PERFORM bump_inner(); END $$;\n"
                     "CREATE FUNCTION wild(t text) RETURNS void LANGUAGE plpgsql AS "
                     "$$ BEGIN EXECUTE 'DELETE FROM ' || t; END $$;")
    db = database.connect(pg_url)
    try:
        followed = db.scope_of(scope.analyse([("d", "SELECT bump();")], "postgres"))
        assert isinstance(followed, scope.Scope) and followed.tables == ("public.counter",)
        dynamic = db.scope_of(scope.analyse([("d", "SELECT wild('big');")], "postgres"))
        assert dynamic == "function wild(text) runs dynamic SQL (EXECUTE)"
    finally:
        db.close()
