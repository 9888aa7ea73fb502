"""What a PostgreSQL enhancement's scripts reach, asked of the catalogue (scope.py finds
what they name).

From each touched relation the scope grows to what changing it can change: the tables its
triggers' functions write (a function in SQL is read like the scripts; one in PL/pgSQL is
scanned for INSERT/UPDATE/DELETE/MERGE/TRUNCATE/COPY targets and calls), the tables whose
foreign keys have an ON DELETE/UPDATE action on it, its inheritance children and
partitions, and the relations a view reads (an updatable view writes them). Functions the
scripts call are followed the same way. A rule on a touched table, a trigger or called
function in another language, or one that runs dynamic SQL (EXECUTE) makes the scope the
whole database. Functions that belong to an extension are the extension's business and
are not followed.
"""

from __future__ import annotations

import re
from typing import Any

from dasct.migrate import scope

_SYSTEM = ["pg_catalog", "information_schema"]
_WORD = r'(?:"(?:[^"]|"")+"|[A-Za-z_][\w$]*)'
_DML = re.compile(rf"(?i)\b(?:insert\s+into|update|delete\s+from|merge\s+into|"
                  rf"truncate(?:\s+table)?|copy)\s+(?:only\s+)?({_WORD}(?:\s*\.\s*{_WORD})?)")
_CALL = re.compile(r"(?i)\b([A-Za-z_][\w$]*)\s*\(")
_EXECUTE = re.compile(r"(?i)\bexecute\b(?!\s+(?:function|procedure)\b)")

_RELATION = """
SELECT c.oid, n.nspname, c.relname, c.relkind FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = {}"""
_REACHED = """
SELECT conrelid FROM pg_constraint WHERE contype = 'f' AND confrelid = %(oid)s
  AND (confdeltype IN ('c', 'n', 'd') OR confupdtype IN ('c', 'n', 'd'))
UNION SELECT inhrelid FROM pg_inherits WHERE inhparent = %(oid)s
UNION SELECT d.refobjid FROM pg_rewrite r JOIN pg_depend d
  ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
  AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> r.ev_class
  WHERE r.ev_class = %(oid)s AND r.rulename = '_RETURN'"""
_USER_FUNCTIONS = """
SELECT p.oid FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE p.proname = %s AND n.nspname <> ALL(%s) AND NOT EXISTS (
  SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
  AND d.deptype = 'e')"""


def quote(part: str) -> str:
    """An identifier as PostgreSQL reads it back (quoted unless plain lower case)."""
    return part if re.fullmatch(r"[a-z_][a-z0-9_$]*", part) else '"' + part.replace('"', '""') + '"'


def _text(name: scope.Name) -> str:
    return ".".join(quote(p) for p in name if p)


class _Walk:
    """One resolution: the relations reached so far, and the functions read."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.relations: dict[int, tuple[str, str, str]] = {}
        self.absent: set[str] = set()
        self.todo: list[int] = []
        self.functions: set[int] = set()

    def add(self, name: scope.Name) -> None:
        row = self.conn.execute(_RELATION.format("to_regclass(%s)"), (_text(name),)).fetchone()
        if row is None:  # created by the scripts: its absence is in the catalogue part
            self.absent.add(_text(name))
        else:
            self._add_row(row)

    def add_oid(self, oid: int) -> None:
        row = self.conn.execute(_RELATION.format("%s"), (oid,)).fetchone()
        if row is not None:
            self._add_row(row)

    def _add_row(self, row: tuple[int, str, str, str]) -> None:
        if row[0] not in self.relations:
            self.relations[row[0]] = (row[1], row[2], row[3])
            self.todo.append(row[0])

    def call(self, name: scope.Name) -> str | None:
        """Follow every user function called name; why not, if one cannot be read."""
        for (oid,) in self.conn.execute(_USER_FUNCTIONS, (name[1], _SYSTEM)).fetchall():
            why = self.function(oid)
            if why:
                return why
        return None

    def function(self, oid: int) -> str | None:
        """Add what function oid writes; why the whole database, if it cannot be read."""
        if oid in self.functions:
            return None
        self.functions.add(oid)
        row = self.conn.execute(
            "SELECT p.oid::regprocedure::text, l.lanname, p.prosrc FROM pg_proc p "
            "JOIN pg_language l ON l.oid = p.prolang WHERE p.oid = %s", (oid,)).fetchone()
        if row is None:
            return None
        label, language, body = row
        if language == "sql":
            found = scope.analyse([(f"function {label}", body)], "postgres")
            if found.whole:
                return found.whole
            written, calls = found.tables, {n[1] for n in found.functions}
        elif language == "plpgsql":
            if _EXECUTE.search(body):
                return f"function {label} runs dynamic SQL (EXECUTE)"
            written = {scope.parse_name(m, "postgres") for m in _DML.findall(body)}
            calls = {m.lower() for m in _CALL.findall(body)}
        else:
            return f"function {label} is written in {language}, which cannot be read"
        for name in written:
            self.add(name)
        for call in sorted(calls):
            why = self.call(("", call))
            if why:
                return why
        return None

    def reach(self, oid: int) -> str | None:
        """Add what changing relation oid can change; why the whole database, if unknown."""
        schema, name, _kind = self.relations[oid]
        if self.conn.execute("SELECT 1 FROM pg_rewrite WHERE ev_class = %s AND rulename <> "
                             "'_RETURN'", (oid,)).fetchone():
            return f"{schema}.{name} has a rule, which may write anywhere"
        for (function,) in self.conn.execute(
                "SELECT tgfoid FROM pg_trigger WHERE tgrelid = %s AND NOT tgisinternal",
                (oid,)).fetchall():
            why = self.function(function)
            if why:
                return why
        for (other,) in self.conn.execute(_REACHED, {"oid": oid}).fetchall():
            self.add_oid(other)
        return None


def resolve(conn: Any, found: scope.Analysis) -> scope.Scope | str:
    """The scope found reaches in this database, or why the whole database is needed.

    conn is an autocommit psycopg connection.
    """
    if found.whole:
        return found.whole
    walk = _Walk(conn)
    for name in sorted(found.tables):
        walk.add(name)
    for call in sorted(found.functions):
        why = walk.call(call)
        if why:
            return why
    while walk.todo:
        why = walk.reach(walk.todo.pop())
        if why:
            return why
    tables = {_text((s, n)) for s, n, _k in walk.relations.values()} | walk.absent
    return scope.Scope(tuple(sorted(tables)), tuple(sorted(_text(n) for n in found.names)))


def existing(conn: Any, tables: tuple[str, ...]) -> list[tuple[str, str]]:
    """(schema, name) of each of tables (scope form) that exists now, sorted."""
    pairs = [scope.parse_name(t, "postgres") for t in tables]
    rows = conn.execute(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n "
        "ON n.oid = c.relnamespace JOIN unnest(%s::text[], %s::text[]) AS w(s, r) "
        "ON n.nspname = w.s AND c.relname = w.r",
        ([p[0] for p in pairs], [p[1] for p in pairs])).fetchall()
    return sorted((str(a), str(b)) for a, b in rows)
