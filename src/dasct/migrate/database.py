"""The target database: SQLite (default) and PostgreSQL through psycopg 3.

Every deploy and revert script runs in its own transaction, so a failure or a SIGKILL
leaves either all of the script or none of it. A verify script runs in a transaction
that is always rolled back; it fails when it raises (Sqitch's rule), and also when its
last statement returns a first row whose first column is false, 0 or NULL (SQLite has no
way to raise from plain SQL). No row at all passes, as `SELECT ... WHERE 0` does in Sqitch.
A script that controls transactions itself is refused before any of it runs (sqltext.py).

The archive (`backup`) and the check of a restore (`fingerprint`; PostgreSQL's in
pgschema.py) differ per engine; see docs/migration.md ("PostgreSQL strategy"). Each covers
either the whole database or a scope: what the enhancement's scripts touch (scope.py,
sqlitescope.py, pgscope.py; docs/migration.md, "What the archive covers").
"""

from __future__ import annotations

import hashlib
import importlib
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any, Protocol

from dasct import redact
from dasct.errors import DasctError
from dasct.migrate import scope, sqlitescope, sqltext

# Not "dasct": a role of that name would put its unqualified tables there ($user first).
BOOKKEEPING_SCHEMA = "dasct_bookkeeping"


class DatabaseError(DasctError):
    """A script failed, or the database cannot be reached; the message names the script."""


class Database(Protocol):
    """What the engine needs from a target database."""

    kind: str
    url: str

    def run_script(self, sql: str, *, label: str, mark: tuple[str, str] | None = None,
                   unmark: tuple[str, str] | None = None) -> None: ...

    def verify_script(self, sql: str, *, label: str) -> None: ...

    def deployed_changes(self, trigger_id: str) -> list[str] | None: ...

    def scope_of(self, found: scope.Analysis) -> scope.Scope | str: ...

    def backup(self, dest: Path, within: scope.Scope | None = None) -> dict[str, Any]: ...

    def restore(self, src: Path, descriptor: dict[str, Any]) -> bool: ...

    def fingerprint(self, within: scope.Scope | None = None) -> str: ...

    def close(self) -> None: ...


def _refuse_transaction_control(sql: str, label: str) -> None:
    """Raise DatabaseError naming the script when sql opens or ends a transaction itself.

    Every run_script and verify_script starts here: such a script would end the
    transaction the engine wraps it in (and its bookkeeping) half-way.
    """
    problem = sqltext.refusal(sql)
    if problem:
        raise DatabaseError(f"{label}: {problem}")


def _falsy(value: object) -> bool:
    return value is None or value is False or value == 0 or value == "0" or value == "f"


# The splitter lives in sqltext (the scope analysis reads scripts with it too).
_sqlite_statements = sqltext.sqlite_statements


def sqlite_dump_hash(conn: sqlite3.Connection) -> str:
    """sha256 of the SQL dump: schema and every row, in a stable order."""
    digest = hashlib.sha256()
    for line in conn.iterdump():
        digest.update(line.encode() + b"\n")
    return digest.hexdigest()


class SQLite:
    """A SQLite target; the archive is a copy made with the backup API."""

    kind = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.url = f"sqlite:///{path}"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(path, isolation_level=None, timeout=30)

    def run_script(self, sql: str, *, label: str, mark: tuple[str, str] | None = None,
                   unmark: tuple[str, str] | None = None) -> None:
        """Run a script in one transaction (mark/unmark unused: the journal suffices)."""
        _refuse_transaction_control(sql, label)
        try:
            # executescript commits anything pending first, then runs our BEGIN..COMMIT.
            self.conn.executescript(f"BEGIN IMMEDIATE;\n{sql}\n;\nCOMMIT;")
        except sqlite3.Error as exc:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise DatabaseError(f"{label}: {exc}") from None

    def verify_script(self, sql: str, *, label: str) -> None:
        """Run a verify script; raise DatabaseError when it fails."""
        _refuse_transaction_control(sql, label)
        last: Any = ()
        try:
            self.conn.execute("BEGIN")
            for statement in sqltext.sqlite_statements(sql):
                cur = self.conn.execute(statement)
                if cur.description is not None:
                    last = cur.fetchone()
        except sqlite3.Error as exc:
            raise DatabaseError(f"{label}: {exc}") from None
        finally:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
        if last and _falsy(last[0]):
            raise DatabaseError(f"{label}: the verify query returned {last!r}")

    def deployed_changes(self, trigger_id: str) -> list[str] | None:
        """Unknown here: SQLite is restored from its backup, which covers every case."""
        return None

    def scope_of(self, found: scope.Analysis) -> scope.Scope | str:
        """What found reaches here (triggers, foreign keys), or why the whole database."""
        try:
            return sqlitescope.resolve(self.conn, found)
        except sqlite3.Error as exc:
            raise DatabaseError(f"archive scope: {exc}") from None

    def backup(self, dest: Path, within: scope.Scope | None = None) -> dict[str, Any]:
        """Copy the database (or only what within covers) into dest/db.sqlite."""
        if within is not None:
            try:
                return sqlitescope.backup(self.conn, dest, within)
            except sqlite3.Error as exc:
                raise DatabaseError(f"archive: {exc}") from None
        copy = sqlite3.connect(dest / "db.sqlite")
        try:
            self.conn.backup(copy)
            fingerprint = sqlite_dump_hash(copy)
        finally:
            copy.close()
        return {"kind": self.kind, "file": "db.sqlite", "fingerprint": fingerprint,
                "scope": None}

    def restore(self, src: Path, descriptor: dict[str, Any]) -> bool:
        """Copy the archived database back over the target (the backup API, page by page),
        or, for a scoped archive, put back what differs of the objects it covers."""
        if descriptor.get("scope") is not None:
            sqlitescope.restore(self.conn, src, descriptor)
            return True
        copy = sqlite3.connect(src / descriptor["file"])
        try:
            copy.backup(self.conn)
        finally:
            copy.close()
        return True

    def fingerprint(self, within: scope.Scope | None = None) -> str:
        """The hash the archive recorded, recomputed on the live database."""
        if within is not None:
            return sqlitescope.fingerprint(self.conn, within)
        return sqlite_dump_hash(self.conn)

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()


_SKIP = ("pg_catalog", "information_schema", "pg_toast", BOOKKEEPING_SCHEMA)


def find_pg_dump() -> str | None:
    """pg_dump on PATH, else the newest one under /usr/lib/postgresql."""
    found = shutil.which("pg_dump")
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_dump"),
                        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
    return str(candidates[-1]) if candidates else None


def require_driver(url: str) -> None:
    """DatabaseError naming the extra to install when url's database driver is missing."""
    if url.startswith(("postgresql://", "postgres://")):
        try:
            importlib.import_module("psycopg")
        except ImportError:
            raise DatabaseError("a PostgreSQL database needs psycopg, which is not installed: "
                                "pip install 'dasct[postgres]'") from None


class PostgreSQL:
    """A PostgreSQL target: transactional scripts, bookkeeping, pg_dump for people."""

    kind = "postgresql"

    def __init__(self, url: str) -> None:
        require_driver(url)
        import psycopg  # imported here: only PostgreSQL targets pay for it

        self.url = url
        try:
            self.conn = psycopg.connect(url, autocommit=True)
        except psycopg.Error as exc:
            raise DatabaseError(f"cannot connect to {_redact(url)}: {exc}") from None
        self._psycopg = psycopg
        self.conn.execute(f"CREATE SCHEMA IF NOT EXISTS {BOOKKEEPING_SCHEMA}")
        self.conn.execute(
            f"CREATE TABLE IF NOT EXISTS {BOOKKEEPING_SCHEMA}.deployed_change ("
            "trigger_id text NOT NULL, change text NOT NULL, "
            "deployed_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (trigger_id, change))"
        )

    def run_script(self, sql: str, *, label: str, mark: tuple[str, str] | None = None,
                   unmark: tuple[str, str] | None = None) -> None:
        """Run a script in one transaction, with its bookkeeping row in the same one."""
        _refuse_transaction_control(sql, label)
        table = f"{BOOKKEEPING_SCHEMA}.deployed_change"
        try:
            with self.conn.transaction(), self.conn.cursor() as cur:
                cur.execute(sql.encode())
                if mark:
                    cur.execute(f"INSERT INTO {table} (trigger_id, change) VALUES (%s, %s)", mark)
                if unmark:
                    cur.execute(f"DELETE FROM {table} WHERE trigger_id = %s AND change = %s",
                                unmark)
        except self._psycopg.Error as exc:
            raise DatabaseError(f"{label}: {str(exc).strip()}") from None

    def verify_script(self, sql: str, *, label: str) -> None:
        """Run a verify script in a transaction that is always rolled back."""
        _refuse_transaction_control(sql, label)
        last: Any = ()
        try:
            with self.conn.transaction(force_rollback=True), self.conn.cursor() as cur:
                cur.execute(sql.encode())
                while True:
                    if cur.description is not None:
                        last = cur.fetchone()
                    if not cur.nextset():
                        break
        except self._psycopg.Error as exc:
            raise DatabaseError(f"{label}: {str(exc).strip()}") from None
        if last and _falsy(last[0]):
            raise DatabaseError(f"{label}: the verify query returned {last!r}")

    def deployed_changes(self, trigger_id: str) -> list[str] | None:
        """The changes of trigger_id whose deploy committed, in deploy order."""
        rows = self.conn.execute(
            f"SELECT change FROM {BOOKKEEPING_SCHEMA}.deployed_change WHERE trigger_id = %s "
            "ORDER BY deployed_at, change", (trigger_id,)).fetchall()
        return [r[0] for r in rows]

    def scope_of(self, found: scope.Analysis) -> scope.Scope | str:
        """What found reaches here (triggers, foreign keys, children), or why the whole
        database."""
        from dasct.migrate import pgscope

        try:
            return pgscope.resolve(self.conn, found)
        except self._psycopg.Error as exc:
            raise DatabaseError(f"archive scope: {str(exc).strip()}") from None

    def backup(self, dest: Path, within: scope.Scope | None = None) -> dict[str, Any]:
        """Fingerprint the database (or what within covers) and, when pg_dump is available,
        dump it (or within's tables) for a DBA."""
        descriptor: dict[str, Any] = {"kind": self.kind, "fingerprint": self.fingerprint(within),
                                      "file": None, "dump_error": None,
                                      "scope": within.to_json() if within else None}
        pg_dump = find_pg_dump()
        if pg_dump is None:
            descriptor["dump_error"] = "pg_dump not found"
            return descriptor
        # pg_dump is a child like any other: no secret of dasct's environment, and the
        # password through PGPASSWORD, not on a command line every local user can read.
        url, password = _split_password(self.url)
        if within is None:
            what = [f"--exclude-schema={BOOKKEEPING_SCHEMA}"]
        else:  # the existing tables only (a pattern matching nothing is an error)
            existing = self._existing(within.tables)
            what = [f"--table={t}" for t in existing] if existing else ["--schema-only"]
        proc = subprocess.run(
            (pg_dump, "--no-owner", "--format=custom", *what,
             "--file", str(dest / "db.pgdump"), "--dbname", url),
            capture_output=True, check=False, stdin=subprocess.DEVNULL,
            env=redact.child_env({"PGPASSWORD": password} if password else {}),
        )
        if proc.returncode == 0:
            descriptor["file"] = "db.pgdump"
        else:
            descriptor["dump_error"] = proc.stderr.decode(errors="replace").strip()[:500]
        return descriptor

    def restore(self, src: Path, descriptor: dict[str, Any]) -> bool:
        """Nothing to copy: the revert scripts undid the changes; the fingerprint decides."""
        return False

    def _existing(self, tables: tuple[str, ...]) -> list[str]:
        # Quoted as pg_dump's patterns want them: "schema"."name".
        from dasct.migrate import pgscope

        return [".".join('"' + p.replace('"', '""') + '"' for p in pair)
                for pair in pgscope.existing(self.conn, tables)]

    def fingerprint(self, within: scope.Scope | None = None) -> str:
        """sha256 over what a schema dump of the user's schemas shows, and every table's rows
        (or only the rows of within's tables)."""
        from dasct.migrate import pgschema, pgscope

        try:
            rows = None if within is None else pgscope.existing(self.conn, within.tables)
            return pgschema.fingerprint(self.conn, _SKIP, tables=rows)
        except (self._psycopg.Error, ValueError) as exc:
            raise DatabaseError(f"fingerprint: {str(exc).strip()}") from None

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()


def _redact(url: str) -> str:
    # Never print a password that came in the URL.
    return redact.mask_urls(url)


def _split_password(url: str) -> tuple[str, str | None]:
    """url without its password, and the password (URL-decoded), if it had one."""
    from urllib.parse import unquote, urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url, None
    host = parts.netloc.rpartition("@")[2]
    user = parts.netloc.rpartition("@")[0].partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}")), unquote(parts.password)


def kind_of(url: str) -> str:
    """The Database.kind a resolved URL opens (sqlite for anything else: connect refuses it)."""
    return "postgresql" if url.startswith(("postgresql://", "postgres://")) else "sqlite"


def connect(url: str) -> Database:
    """Open the database named by a resolved URL."""
    if url.startswith(("postgresql://", "postgres://")):
        return PostgreSQL(url)
    if url.startswith("sqlite:///"):
        return SQLite(Path(url[len("sqlite:///"):]))
    raise DatabaseError(f"unsupported database URL {_redact(url)!r} (sqlite:/// or postgresql://)")
