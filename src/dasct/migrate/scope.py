"""What an enhancement's SQL touches: the database objects its archive must cover.

The deploy and revert scripts of a trigger's SQL changes are read with sqlglot (SQLite or
PostgreSQL grammar): the tables they create, alter, rename, drop or write (INSERT, UPDATE,
DELETE, MERGE, TRUNCATE, COPY, REPLACE) are archived with their rows; the indexes, views,
triggers and other objects they create or drop with their definition (or absence). The
revert scripts count as much as the deploys: on SQLite a revert may run for a deploy that
never committed. What those tables' triggers and foreign keys reach is found by asking the
database (sqlitescope.py, pgscope.py). A change may declare more with `-- dasct-archive:`
comment lines (plan.declared_objects).

A script that cannot be read that way (a parse error, a DO block, a function or procedure
body, a CALL, dynamic SQL, a change of search_path, a statement the grammar does not know)
makes the whole database the archive's scope, and the reason is said in the plan and the
audit log. See docs/migration.md ("What the archive covers").
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dasct.migrate import plan, sqltext
from dasct.migrate import trigger as trig
from dasct.migrate import trigger_check as trigc

if TYPE_CHECKING:  # sqlglot costs ~250 ms to import: only a run that archives SQL pays it
    from sqlglot import exp

# (schema, name), lower case unless quoted; schema "" when the script does not qualify it
# (the database resolves it: SQLite's main, PostgreSQL's search_path).
Name = tuple[str, str]

DIALECTS = {"sqlite": "sqlite", "postgresql": "postgres"}

# Kinds of CREATE whose effect is the object itself (PostgreSQL's catalogue, SQLite's
# sqlite_master); any other kind (FUNCTION, PROCEDURE, RULE...) falls back.
_CREATE_NAMES = {"INDEX", "VIEW", "SEQUENCE", "TYPE", "SCHEMA", "TRIGGER"}

_SQLITE_TRIGGER = re.compile(
    r"(?is)^\s*create\s+(?:temp(?:orary)?\s+)?trigger\s+(?:if\s+not\s+exists\s+)?"
    r"(?P<name>\S+)\s.*?\bon\s+(?P<table>[^\s(]+)\s.*?\bbegin\b(?P<body>.*)\bend\s*;?\s*$")

_SQLITE_PART = r'(?:"(?:[^"]|"")*"|`[^`]*`|\[[^\]]*\]|[^\s;.]+)'
_SQLITE_NAME = rf"{_SQLITE_PART}(?:\s*\.\s*{_SQLITE_PART})?"
_SQLITE_ALTER = re.compile(
    rf"(?is)^\s*alter\s+table\s+(?P<name>{_SQLITE_NAME})\s+"
    rf"(?:rename\s+to\s+(?P<new>{_SQLITE_NAME})|add|drop|rename)\b")


@dataclass
class Analysis:
    """What a set of scripts touches, before the database is asked what that reaches."""

    tables: set[Name] = field(default_factory=set)  # definition and rows archived
    names: set[Name] = field(default_factory=set)  # definition (or absence) archived
    functions: set[Name] = field(default_factory=set)  # called (PostgreSQL follows them)
    whole: str | None = None  # why the whole database is archived instead

    def fall_back(self, why: str) -> None:
        """Archive the whole database; the first reason is the one reported."""
        if self.whole is None:
            self.whole = why


@dataclass(frozen=True)
class Scope:
    """The objects an archive covers, resolved against the database (manifest form)."""

    tables: tuple[str, ...]  # "schema.name" (PostgreSQL) or "name" (SQLite)
    names: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """The manifest's form."""
        return {"tables": list(self.tables), "names": list(self.names)}

    @staticmethod
    def from_json(doc: object) -> Scope | None:
        """The scope a manifest records; None for a whole-database archive (or an old one)."""
        if not isinstance(doc, dict):
            return None
        return Scope(tuple(doc.get("tables", ())), tuple(doc.get("names", ())))


@contextmanager
def _quiet() -> Iterator[None]:
    # sqlglot warns on every statement it keeps as a Command; the fallback says it once.
    logger = logging.getLogger("sqlglot")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _ident(node: exp.Expr | None, dialect: str) -> str:
    from sqlglot import exp

    if node is None:
        return ""
    if isinstance(node, exp.Identifier):
        name = str(node.this)
        return name if node.quoted and dialect == "postgres" else name.lower()
    return node.name.lower()


def table_name(node: exp.Expr, dialect: str) -> Name | None:
    """(schema, name) of a table reference (or of the table a Schema node wraps)."""
    from sqlglot import exp

    if isinstance(node, exp.Schema):
        node = node.this
    if not isinstance(node, exp.Table) or not node.name:
        return None
    return _ident(node.args.get("db"), dialect), _ident(node.this, dialect)


def parse_name(text: str, dialect: str) -> Name:
    """A written `schema.name` or `name`: quotes ("", and SQLite's `` and []) keep case on
    PostgreSQL; unquoted parts are lower case."""
    parts = re.findall(r'"(?:[^"]|"")*"|`[^`]*`|\[[^\]]*\]|[^."`\[\s]+', text.strip())
    fixed = []
    for p in parts:
        if p[0] in '"`[':
            inner = p[1:-1].replace('""', '"') if p[0] == '"' else p[1:-1]
            fixed.append(inner if dialect == "postgres" else inner.lower())
        else:
            fixed.append(p.lower())
    if not fixed:
        return "", ""
    return ("", fixed[0]) if len(fixed) == 1 else (fixed[-2], fixed[-1])


def analyse(scripts: Iterable[tuple[str, str]], dialect: str) -> Analysis:
    """What the (label, text) scripts touch, in the given sqlglot dialect."""
    found = Analysis()
    for label, text in scripts:
        for declared in plan.declared_objects(text):
            if declared == plan.WHOLE_DATABASE:
                found.fall_back(f"{label} declares `dasct-archive: {plan.WHOLE_DATABASE}`")
            else:
                found.tables.add(parse_name(declared, dialect))
        _script(text, label, dialect, found)
    return found


def _script(text: str, label: str, dialect: str, found: Analysis) -> None:
    import sqlglot

    if dialect == "sqlite":
        for piece in sqltext.sqlite_statements(text):
            _sqlite_statement(piece, label, found)
        return
    try:
        with _quiet():
            statements = sqlglot.parse(text, read=dialect)
    except sqlglot.errors.SqlglotError as exc:
        found.fall_back(f"{label}: cannot be parsed ({str(exc).splitlines()[0][:120]})")
        return
    for statement in statements:
        if statement is not None:
            _statement(statement, label, dialect, found)


def _sqlite_statement(text: str, label: str, found: Analysis) -> None:
    import sqlglot

    trigger = _SQLITE_TRIGGER.match(text)
    if trigger:
        # sqlglot does not read SQLite trigger bodies; the body is statements of its own.
        found.names.add(parse_name(trigger["name"], "sqlite"))
        _script(trigger["body"], label, "sqlite", found)
        return
    alter = _SQLITE_ALTER.match(text)
    if alter:
        # SQLite's ALTER TABLE has four forms, all on one table (sqlglot refuses some, such
        # as ADD COLUMN without a type).
        found.tables |= {parse_name(n, "sqlite") for n in alter.group("name", "new") if n}
        return
    if re.match(r"(?is)\s*replace\s+into\b", text):
        text = re.sub(r"(?is)^\s*replace", "INSERT OR REPLACE", text, count=1)
    try:
        with _quiet():
            statements = sqlglot.parse(text, read="sqlite")
    except sqlglot.errors.SqlglotError as exc:
        found.fall_back(f"{label}: cannot be parsed ({str(exc).splitlines()[0][:120]})")
        return
    for statement in statements:
        if statement is not None:
            _statement(statement, label, "sqlite", found)


def _head(statement: exp.Expr) -> str:
    return " ".join(statement.sql().split()[:3])[:60]


def _statement(statement: exp.Expr, label: str, dialect: str, found: Analysis) -> None:
    """Add what one parsed statement touches to found (or fall back)."""
    from sqlglot import exp

    # Statements with no effect on rows or definitions the scope misses.
    harmless = (exp.Select, exp.Pragma, exp.Comment, exp.Grant, exp.Analyze, exp.Union)
    if dialect == "postgres":
        for call in statement.find_all(exp.Anonymous):
            found.functions.add(("", call.name.lower()))
    if isinstance(statement, exp.Command):
        found.fall_back(f"{label}: cannot analyse `{_head(statement)}`")
        return
    for write in statement.find_all(exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Copy):
        name = table_name(write.this, dialect)
        if name:
            found.tables.add(name)
    if isinstance(statement, exp.TruncateTable):
        found.tables |= {n for t in statement.expressions if (n := table_name(t, dialect))}
    elif isinstance(statement, exp.Create | exp.Drop | exp.Alter):
        _ddl(statement, label, dialect, found)
    elif isinstance(statement, exp.Set):
        if "search_path" in statement.sql().lower():
            found.fall_back(f"{label}: changes search_path (`{_head(statement)}`)")
    elif not isinstance(statement, (exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Copy,
                                    *harmless)):
        found.fall_back(f"{label}: cannot analyse `{_head(statement)}`")


def _ddl(statement: exp.Create | exp.Drop | exp.Alter, label: str, dialect: str,
         found: Analysis) -> None:
    from sqlglot import exp

    kind = str(statement.args.get("kind") or "").upper()
    if isinstance(statement, exp.Create) and kind not in {"TABLE", *_CREATE_NAMES}:
        found.fall_back(f"{label}: cannot analyse `{_head(statement)}`")
        return
    # DROP names its objects in `tables` (DROP TABLE a, b), the others in `this`.
    for target in statement.args.get("tables") or [statement.this]:
        if isinstance(target, exp.Index):  # CREATE INDEX name ON table
            target = target.this
        name = table_name(target, dialect) if isinstance(target, exp.Table | exp.Schema) else (
            ("", _ident(target, dialect)) if isinstance(target, exp.Identifier) else None)
        if name is None:
            continue
        (found.tables if kind == "TABLE" else found.names).add(name)
        for action in statement.args.get("actions") or ():
            if isinstance(action, exp.AlterRename) and (new := table_name(action.this, dialect)):
                found.tables.add((new[0] or name[0], new[1]))


def analyse_trigger(t: trig.Trigger, kind: str) -> Analysis:
    """What the deploy and revert scripts of t's SQL changes touch (kind: a Database.kind)."""
    scripts = []
    for change in t.sql:
        for what, sha in (("deploy", change.deploy), ("revert", change.revert)):
            text = trigc.read_payload(t.staging, sha).decode(errors="replace")
            scripts.append((f"{what} script of {change.name}", text))
    return analyse(scripts, DIALECTS[kind])


def show(name: Name) -> str:
    """schema.name, or name when unqualified."""
    return f"{name[0]}.{name[1]}" if name[0] else name[1]


def describe(found: Analysis) -> str:
    """One line for the plan: what the archive will cover, or why the whole database."""
    if found.whole:
        return f"whole database ({found.whole})"
    tables = ", ".join(sorted(show(n) for n in found.tables)) or "none"
    names = ", ".join(sorted(show(n) for n in found.names))
    return (f"tables {tables}" + (f"; objects {names}" if names else "")
            + "; and what their triggers and foreign keys reach")
