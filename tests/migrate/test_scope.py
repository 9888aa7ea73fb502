"""The archive covers what an enhancement's SQL touches (SQLite, and the script analysis).

Each rollback is checked against the database as it was before: its full SQL dump, and the
scoped fingerprint recomputed over a scope the test names itself.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from engine_kit import NOW, dump, health, make_env, quiet, stage

from dasct import audit
from dasct.migrate import engine, scope, sqlitescope
from dasct.migrate.environment import Environment

BIG_ROWS = 3000


def sqlite_env(tmp: Path, schema: str) -> Environment:
    env = make_env(tmp)
    conn = sqlite3.connect(tmp / "db.sqlite")
    conn.executescript(
        "CREATE TABLE big (id INTEGER PRIMARY KEY, pad TEXT);\n"
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < "
        f"{BIG_ROWS}) INSERT INTO big SELECT i, hex(randomblob(100)) FROM n;\n" + schema)
    conn.close()
    return env


def manifest(env: Environment, tid: str) -> dict[str, Any]:
    return dict(json.loads((env.state_dir / "archives" / tid / "manifest.json").read_text()))


def keep_archive(env: Environment, tid: str) -> dict[str, Any]:
    """The database part of tid's archive (kept from a migration that succeeded)."""
    return dict(manifest(env, tid)["database"])


def scoped(path: Path, tables: tuple[str, ...], names: tuple[str, ...] = ()) -> str:
    conn = sqlite3.connect(path)
    try:
        return sqlitescope.fingerprint(conn, scope.Scope(tables, names))
    finally:
        conn.close()


def analysed(sql: str, dialect: str = "sqlite") -> scope.Analysis:
    return scope.analyse([("deploy", sql)], dialect)


def test_analysis_names_what_scripts_create_alter_write_and_drop() -> None:
    found = analysed("CREATE TABLE t (a);\nALTER TABLE u ADD COLUMN c;\n"
                     "UPDATE u SET c = 1; INSERT INTO v SELECT * FROM w; DELETE FROM \"Z\";\n"
                     "REPLACE INTO r VALUES (1); DROP TABLE IF EXISTS q, q2;\n"
                     "ALTER TABLE o RENAME TO o2; CREATE INDEX i ON big (pad);\n"
                     "CREATE TRIGGER tg AFTER INSERT ON u BEGIN INSERT INTO log VALUES (1); "
                     "END;")
    assert found.whole is None
    assert {n for _s, n in found.tables} == {"t", "u", "v", "z", "r", "q", "q2", "o", "o2",
                                             "log"}
    assert {n for _s, n in found.names} == {"i", "tg"}  # big is read by the index, not written


def test_analysis_falls_back_on_what_it_cannot_read() -> None:
    do = analysed("DO $$ BEGIN EXECUTE 'DROP TABLE x'; END $$;", "postgres")
    assert do.whole is not None and "DO" in do.whole
    assert "search_path" in str(analysed("SET search_path = other;", "postgres").whole)
    assert "FUNCTION" in str(analysed(
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1';", "postgres").whole)
    assert analysed("CREATE TABLE (;").whole is not None  # a parse error
    declared = analysed("-- dasct-archive: whole-database\nSELECT 1;")
    assert declared.whole and "declares" in declared.whole


def test_declared_objects_join_the_scope(tmp_path: Path) -> None:
    found = analysed("-- dasct-archive: side, \"Odd\"\nSELECT 1;", "postgres")
    assert found.tables == {("", "side"), ("", "Odd")} and found.whole is None


def test_created_table_rolls_back_to_its_absence_and_big_is_not_archived(tmp_path: Path
                                                                          ) -> None:
    env = sqlite_env(tmp_path, "")
    before = dump(tmp_path / "db.sqlite")
    stage(env, "E1", sql=[("t", "CREATE TABLE t (a INTEGER PRIMARY KEY, b);\n"
                               "INSERT INTO t (b) VALUES ('x');", "SELECT 1;", None)],
          commands=[health(1)])
    assert quiet(env).rolled_back == ["E1"]
    assert dump(tmp_path / "db.sqlite") == before  # the revert did nothing; the restore did
    events = [r["fields"] for r in audit.records(env.state_dir) if r["event"] == "archive-scope"]
    assert [(e["database"], e["tables"], e["objects"]) for e in events] == [("scope", ["t"], [])]


def test_alter_and_update_restore_exactly_with_only_the_small_table_copied(tmp_path: Path
                                                                           ) -> None:
    env = sqlite_env(tmp_path, "CREATE TABLE small (id INTEGER PRIMARY KEY, v TEXT);\n"
                               "CREATE INDEX small_v ON small (v);\n"
                               "INSERT INTO small (v) VALUES ('a'), ('b');")
    db = tmp_path / "db.sqlite"
    before, touched = dump(db), scoped(db, ("small",), ("small_v",))
    stage(env, "E1", sql=[("s", "ALTER TABLE small ADD COLUMN w INT;\n"
                               "UPDATE small SET v = v || '!', w = 1;\n"
                               "DROP INDEX small_v;", "SELECT 1;", None)])
    assert quiet(env).migrated == ["E1"]
    desc = keep_archive(env, "E1")
    assert desc["scope"] == {"tables": ["small"], "names": ["small_v"]}
    assert list(desc["rows"]) == ["small"]
    copy = env.state_dir / "archives/E1" / desc["file"]
    assert copy.stat().st_size < (db.stat().st_size / 10)  # big's 3000 rows are not in it
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        sqlitescope.restore(conn, copy.parent, desc)  # as a rollback would
    finally:
        conn.close()
    assert dump(db) == before and scoped(db, ("small",), ("small_v",)) == touched


def test_a_trigger_s_writes_are_archived_and_put_back(tmp_path: Path) -> None:
    env = sqlite_env(tmp_path, "CREATE TABLE orders (id INTEGER PRIMARY KEY, n INT);\n"
                               "CREATE TABLE log (what TEXT);\n"
                               "CREATE TRIGGER orders_log AFTER INSERT ON orders BEGIN "
                               "INSERT INTO log VALUES ('order ' || new.n); END;")
    db = tmp_path / "db.sqlite"
    before, touched = dump(db), scoped(db, ("log", "orders"))
    # The revert deletes the order but not the log row its trigger wrote: the archive must.
    stage(env, "E1", sql=[("o", "INSERT INTO orders (n) VALUES (7);",
                           "DELETE FROM orders WHERE n = 7;", None)], commands=[health(1)])
    assert quiet(env).rolled_back == ["E1"]
    assert dump(db) == before and scoped(db, ("log", "orders")) == touched
    events = [r["fields"] for r in audit.records(env.state_dir) if r["event"] == "archive-scope"]
    assert events[0]["tables"] == ["log", "orders"] and events[0]["objects"] == ["orders_log"]


def test_foreign_key_actions_reach_the_child_table(tmp_path: Path) -> None:
    sqlite_env(tmp_path, "CREATE TABLE parent (id INTEGER PRIMARY KEY);\n"
                         "CREATE TABLE child (p INT REFERENCES parent(id) ON DELETE CASCADE);\n"
                         "CREATE TABLE plain (p INT REFERENCES parent(id));")
    conn = sqlite3.connect(tmp_path / "db.sqlite")
    try:
        within = sqlitescope.resolve(conn, analysed("DELETE FROM parent WHERE id = 1;"))
    finally:
        conn.close()
    assert isinstance(within, scope.Scope)
    assert within.tables == ("child", "parent")  # plain has no action: no row of it changes


def test_whole_database_fallback_is_said_in_plan_and_audit(tmp_path: Path) -> None:
    env = sqlite_env(tmp_path, "")
    before = dump(tmp_path / "db.sqlite")
    stage(env, "E1", sql=[("w", "-- dasct-archive: whole-database\nUPDATE big SET pad = '';",
                           "SELECT 1;", None)], commands=[health(1)])
    lines: list[str] = []
    engine.run(env, now=NOW, dry_run=True, write=lines.append)
    assert any("archive: whole database (deploy script of w declares" in x for x in lines)
    assert quiet(env).rolled_back == ["E1"]
    assert dump(tmp_path / "db.sqlite") == before
    events = [r["fields"] for r in audit.records(env.state_dir) if r["event"] == "archive-scope"]
    assert events[0]["database"] == "whole" and "declares" in events[0]["reason"]


def test_a_rename_with_a_view_and_a_trigger_naming_it_is_put_back(tmp_path: Path) -> None:
    env = sqlite_env(tmp_path, "CREATE TABLE small (id INTEGER PRIMARY KEY, v TEXT);\n"
                               "INSERT INTO small (v) VALUES ('a');\n"
                               "CREATE TABLE log (what TEXT);\n"
                               "CREATE VIEW small_v AS SELECT v FROM small;\n"
                               "CREATE TRIGGER big_log AFTER DELETE ON big BEGIN "
                               "INSERT INTO small (v) VALUES (old.pad); END;")
    db = tmp_path / "db.sqlite"
    before = dump(db)
    # SQLite rewrites the view and the trigger to name small2; the revert undoes nothing.
    stage(env, "E1", sql=[("r", "ALTER TABLE small RENAME TO small2;\n"
                               "INSERT INTO small2 (v) VALUES ('b');", "SELECT 1;", None)],
          commands=[health(1)])
    assert quiet(env).rolled_back == ["E1"]
    assert dump(db) == before
    event = next(r["fields"] for r in audit.records(env.state_dir)
                 if r["event"] == "archive-scope")
    assert event["tables"] == ["small", "small2"]
    assert event["objects"] == ["big_log", "small_v"]  # big's rows are not in the archive
