"""A SQLite archive of only what an enhancement touches (scope.py): find, copy, check, restore.

What the scripts name is widened by asking sqlite_master: the triggers of a touched table
(their bodies read like the scripts, so what they write is touched too), the tables a
foreign key with an ON DELETE/UPDATE action would change, and the indexes, triggers and
views of, or naming, a touched table. The copy holds those tables' rows (with their
rowids) in archive/db.sqlite, and every touched object's sqlite_master entry (or its
absence) in the manifest.

The fingerprint covers the whole schema (all of sqlite_master but sqlite_sequence: reading
it costs nothing next to the rows) and the rows and sqlite_sequence entries of the touched
tables only. The restore puts back, in one transaction, each touched object whose
definition or rows differ from the copy, and leaves the rest alone.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from dasct.migrate import scope

COPY_FILE = "db.sqlite"
_ALIAS = "dasct_archive"
_ACTIONS = ("CASCADE", "SET NULL", "SET DEFAULT")
_DROP_ORDER = {"trigger": 0, "view": 1, "index": 2, "table": 3}
_CREATE_ORDER = {"table": 0, "index": 1, "view": 2, "trigger": 3}

Entry = tuple[str, str, str, str | None]  # sqlite_master's type, name, tbl_name, sql


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def resolve(conn: sqlite3.Connection, found: scope.Analysis) -> scope.Scope | str:
    """The scope found reaches in this database, or why the whole database is needed."""
    if found.whole:
        return found.whole
    tables: set[str] = set()
    names = {n for s, n in found.names if s != "temp"}
    for schema, name in found.tables:
        if schema not in ("", "main", "temp"):
            return f"writes {schema}.{name}, in another attached database"
        if schema != "temp":  # a temporary table vanishes with the connection
            tables.add(name)
    todo = list(tables)
    while todo:
        table = todo.pop()
        entry = conn.execute("SELECT type, sql FROM sqlite_master WHERE lower(name) = ?",
                             (table,)).fetchone()
        if entry and re.match(r"(?i)\s*create\s+virtual", entry[1] or ""):
            return f"touches the virtual table {table}"
        reached: set[str] = set()
        for trigger, sql in conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                "AND lower(tbl_name) = ?", (table,)):
            body = scope.analyse([(f"trigger {trigger}", sql or "")], "sqlite")
            if body.whole:
                return body.whole
            names.add(trigger.lower())
            reached |= {n for s, n in body.tables if s != "temp"}
        reached |= {row[0].lower() for row in conn.execute(
            "SELECT m.name FROM sqlite_master m, pragma_foreign_key_list(m.name) f "
            "WHERE m.type = 'table' AND lower(f.\"table\") = ? "
            f"AND (f.on_delete IN {_ACTIONS} OR f.on_update IN {_ACTIONS})", (table,))}
        todo += sorted(reached - tables)
        tables |= reached
    for kind, name, tbl, sql in conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE type <> 'table'"):
        words = set(re.findall(r"\w+", (sql or "").lower()))
        if tbl.lower() in tables or (kind in ("view", "trigger") and words & tables):
            names.add(name.lower())
    return scope.Scope(tuple(sorted(tables)), tuple(sorted(names - tables)))


def _entries(conn: sqlite3.Connection, s: scope.Scope, prefix: str = "main") -> dict[str, Entry]:
    """The sqlite_master entries of every object in s, by lower-case name."""
    keys = [*s.tables, *s.names]
    marks = ", ".join("?" * len(keys)) or "NULL"
    rows = conn.execute(
        f"SELECT type, name, tbl_name, sql FROM {prefix}.sqlite_master "
        f"WHERE lower(name) IN ({marks}) OR lower(tbl_name) IN ({marks})", keys + keys)
    return {row[1].lower(): (row[0], row[1], row[2], row[3]) for row in rows}


def _columns(conn: sqlite3.Connection, table: str) -> tuple[list[str], bool]:
    """The stored (not generated) columns of table, and whether its rowid is copied too
    (it has one, and no INTEGER PRIMARY KEY column already holds it)."""
    info = conn.execute(f"SELECT name, type, pk, hidden FROM pragma_table_xinfo({_q(table)})"
                        ).fetchall()
    columns = [str(r[0]) for r in info if r[3] == 0]
    keys = [r for r in info if r[2]]
    alias = len(keys) == 1 and str(keys[0][1]).upper() == "INTEGER"
    sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (table,)).fetchone()
    rowless = bool(re.search(r"(?i)without\s+rowid", (sql[0] if sql else "") or ""))
    named = {c.lower() for c in columns} & {"rowid", "_rowid_", "oid"}
    return columns, not (alias or rowless or named)


def _sequence(conn: sqlite3.Connection, table: str) -> int | None:
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'").fetchone():
        return None
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE lower(name) = ?",
                       (table,)).fetchone()
    return int(row[0]) if row else None


def _rows_hash(conn: sqlite3.Connection, table: str) -> str:
    columns, rowid = _columns(conn, table)
    select = ", ".join((["rowid"] if rowid else []) + [_q(c) for c in columns])
    digest = hashlib.sha256()
    # Sorted here: the order of a plain SELECT is not part of the content.
    for line in sorted(repr(tuple(r)) for r in conn.execute(f"SELECT {select} FROM {_q(table)}")):
        digest.update(line.encode() + b"\n")
    return digest.hexdigest()


def fingerprint(conn: sqlite3.Connection, s: scope.Scope) -> str:
    """sha256 of the whole schema, and of the rows and sequences of s's tables."""
    digest = hashlib.sha256(b"sqlite-scope 1\n")
    schema = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master "
                          "WHERE name <> 'sqlite_sequence'").fetchall()
    for line in sorted(repr(tuple(r)) for r in schema):
        digest.update(line.encode() + b"\n")
    entries = _entries(conn, s)
    for table in s.tables:
        if entries.get(table, ("",))[0] == "table":
            digest.update(f"{table}={_rows_hash(conn, table)} "
                          f"seq={_sequence(conn, table)}\n".encode())
    return digest.hexdigest()


def backup(conn: sqlite3.Connection, dest: Path, s: scope.Scope) -> dict[str, Any]:
    """Copy s's definitions (to the descriptor) and its tables' rows (to dest/db.sqlite)."""
    conn.execute(f"ATTACH DATABASE ? AS {_ALIAS}", (str(dest / COPY_FILE),))
    try:
        conn.execute("BEGIN IMMEDIATE")  # one consistent view, and nobody writes meanwhile
        try:
            entries = _entries(conn, s)
            rows: dict[str, Any] = {}
            for i, table in enumerate(s.tables):
                if entries.get(table, ("",))[0] != "table":
                    continue
                columns, rowid = _columns(conn, table)
                stored = (["rowid"] if rowid else []) + columns
                # Untyped columns: every value is kept exactly as stored.
                conn.execute(f"CREATE TABLE {_ALIAS}.r{i} ("
                             + ", ".join(f"c{k}" for k in range(len(stored))) + ")")
                conn.execute(f"INSERT INTO {_ALIAS}.r{i} SELECT "
                             + ", ".join(_q(c) if c != "rowid" else "rowid" for c in stored)
                             + f" FROM main.{_q(table)}")
                rows[table] = {"copy": f"r{i}", "columns": columns, "rowid": rowid,
                               "hash": _rows_hash(conn, table),
                               "sequence": _sequence(conn, table)}
            descriptor = {"kind": "sqlite", "file": COPY_FILE, "scope": s.to_json(),
                          "objects": sorted(entries.values()), "rows": rows,
                          "fingerprint": fingerprint(conn, s)}
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    finally:
        conn.execute(f"DETACH DATABASE {_ALIAS}")
    return descriptor


def restore(conn: sqlite3.Connection, src: Path, descriptor: dict[str, Any]) -> None:
    """Put back every object of the scope whose definition or rows differ from the copy."""
    s = scope.Scope.from_json(descriptor["scope"])
    assert s is not None
    archived: dict[str, Entry] = {e[1].lower(): (e[0], e[1], e[2], e[3])
                                  for e in descriptor["objects"]}
    rows: dict[str, Any] = descriptor["rows"]
    keys = conn.execute("PRAGMA foreign_keys").fetchone()[0]
    conn.execute("PRAGMA foreign_keys = OFF")  # a DROP TABLE must not cascade anywhere
    conn.execute(f"ATTACH DATABASE ? AS {_ALIAS}", (str(src / descriptor["file"]),))
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            _put_back(conn, s, archived, rows)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    finally:
        conn.execute(f"DETACH DATABASE {_ALIAS}")
        conn.execute(f"PRAGMA foreign_keys = {int(keys)}")


def _put_back(conn: sqlite3.Connection, s: scope.Scope, archived: dict[str, Entry],
              rows: dict[str, Any]) -> None:
    current = _entries(conn, s)
    rebuilt = {t for t in s.tables
               if current.get(t) != archived.get(t)
               or (t in rows and _rows_hash(conn, t) != rows[t]["hash"])}
    changed = {k for k in current.keys() | archived.keys()
               if current.get(k) != archived.get(k) or k in rebuilt
               or (current.get(k) or archived.get(k) or ("", "", "", None))[2].lower() in rebuilt}
    for key in sorted(changed & current.keys(), key=lambda k: _DROP_ORDER.get(current[k][0], 9)):
        kind, name, _tbl, sql = current[key]
        # IF EXISTS: what belongs to a table dropped before it is gone already. An
        # automatic index (no sql) goes and comes back with its table.
        if kind in _DROP_ORDER and sql is not None:
            conn.execute(f"DROP {kind.upper()} IF EXISTS main.{_q(name)}")
    for key in sorted(changed & archived.keys(),
                      key=lambda k: (_CREATE_ORDER.get(archived[k][0], 9), k)):
        kind, name, _tbl, sql = archived[key]
        if sql is not None:  # an automatic index comes back with its table
            conn.execute(sql)
        if kind == "table" and key in rows:
            _insert(conn, name, rows[key])
    for table in s.tables:
        _put_sequence(conn, table, rows[table]["sequence"] if table in rows else None)


def _insert(conn: sqlite3.Connection, table: str, copy: dict[str, Any]) -> None:
    stored = (["rowid"] if copy["rowid"] else []) + list(copy["columns"])
    conn.execute(f"INSERT INTO main.{_q(table)} ("
                 + ", ".join(c if c == "rowid" else _q(c) for c in stored) + ") SELECT "
                 + ", ".join(f"c{k}" for k in range(len(stored)))
                 + f" FROM {_ALIAS}.{copy['copy']}")


def _put_sequence(conn: sqlite3.Connection, table: str, seq: int | None) -> None:
    if _sequence(conn, table) == seq:
        return
    conn.execute("DELETE FROM sqlite_sequence WHERE lower(name) = ?", (table,))
    if seq is not None:
        conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (table, seq))


def tables_in(descriptor: dict[str, Any]) -> Iterable[str]:
    """The tables whose rows an archive holds (for people and tests)."""
    return list(descriptor.get("rows", {}))
