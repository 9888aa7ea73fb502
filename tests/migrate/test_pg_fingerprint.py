"""The PostgreSQL fingerprint sees what a schema dump sees, and nothing a dump leaves out.

CHANGES pairs a deploy statement with the revert that really undoes it. Against the real
server (see conftest.py): each deploy alone changes the fingerprint (and, where pg_dump is
found, the dump: the list is honest), deploy then revert leaves it unchanged (no false
alarm), and through the engine a deploy whose revert is `SELECT 1;` is escalated, never
reported "as before".
"""

from __future__ import annotations

import subprocess
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from engine_kit import make_env, quiet, stage
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_postgres import fingerprint

from dasct.migrate import database, engine, session

OTHER_ROLE = "dasct_fp_other"

BASE = """
CREATE TABLE users (id serial PRIMARY KEY, name varchar(50) NOT NULL,
                    score numeric(5,2) DEFAULT 0, nick text);
INSERT INTO users (name) VALUES ('ada'), ('bob');
CREATE TYPE colour AS ENUM ('red');
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER users_touch BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION touch();
CREATE VIEW user_ids AS SELECT id FROM users;
CREATE INDEX users_name ON users (name);
CREATE SEQUENCE counter;
CREATE TABLE events (at timestamptz, day date, span interval, price money);
INSERT INTO events VALUES ('2026-12-01 23:00+00', '2026-12-01', '1 day 2 hours', 12.5);
"""

# (deploy, the revert that undoes it, whether `pg_dump --schema-only` shows the change)
CHANGES: list[tuple[str, str, bool]] = [
    # The six of the issue.
    ("CREATE TYPE mood AS ENUM ('happy')", "DROP TYPE mood", True),
    ("CREATE SEQUENCE s_orphan", "DROP SEQUENCE s_orphan", True),
    ("CREATE MATERIALIZED VIEW mv AS SELECT 1 AS x", "DROP MATERIALIZED VIEW mv", True),
    ("ALTER TABLE users ALTER COLUMN name TYPE varchar(200)",
     "ALTER TABLE users ALTER COLUMN name TYPE varchar(50)", True),
    ("CREATE POLICY p1 ON users USING (true)", "DROP POLICY p1 ON users", True),
    ("COMMENT ON TABLE users IS 'changed'", "COMMENT ON TABLE users IS NULL", True),
    # Relations, columns, defaults, constraints, indexes.
    ("CREATE TABLE t2 (x int)", "DROP TABLE t2", True),
    ("CREATE TABLE parted (k int) PARTITION BY RANGE (k)", "DROP TABLE parted", True),
    ("CREATE VIEW v2 AS SELECT 2 AS y", "DROP VIEW v2", True),
    ("CREATE OR REPLACE VIEW user_ids AS SELECT id, 1 AS one FROM users",
     "DROP VIEW user_ids; CREATE VIEW user_ids AS SELECT id FROM users", True),
    ("ALTER VIEW user_ids SET (security_barrier = true)",
     "ALTER VIEW user_ids RESET (security_barrier)", True),
    ("ALTER TABLE users ADD COLUMN age int", "ALTER TABLE users DROP COLUMN age", True),
    ("ALTER TABLE users ADD COLUMN g int GENERATED ALWAYS AS (id * 2) STORED",
     "ALTER TABLE users DROP COLUMN g", True),
    ("ALTER TABLE users RENAME COLUMN nick TO alias",
     "ALTER TABLE users RENAME COLUMN alias TO nick", True),
    ("ALTER TABLE users ALTER COLUMN score TYPE numeric(6,2)",
     "ALTER TABLE users ALTER COLUMN score TYPE numeric(5,2)", True),
    ("ALTER TABLE users ALTER COLUMN score SET DEFAULT 1",
     "ALTER TABLE users ALTER COLUMN score SET DEFAULT 0", True),
    ("ALTER TABLE users ALTER COLUMN name DROP NOT NULL",
     "ALTER TABLE users ALTER COLUMN name SET NOT NULL", True),
    ("ALTER TABLE users ALTER COLUMN name SET STATISTICS 500",
     "ALTER TABLE users ALTER COLUMN name SET STATISTICS -1", True),
    ("ALTER TABLE users ALTER COLUMN nick SET STORAGE EXTERNAL",
     "ALTER TABLE users ALTER COLUMN nick SET STORAGE EXTENDED", True),
    ("ALTER TABLE users ALTER COLUMN nick SET COMPRESSION pglz",
     "ALTER TABLE users ALTER COLUMN nick SET COMPRESSION default", True),
    ("ALTER TABLE users ADD CONSTRAINT name_len CHECK (length(name) > 0)",
     "ALTER TABLE users DROP CONSTRAINT name_len", True),
    ("ALTER TABLE users ADD CONSTRAINT one_name UNIQUE (name)",
     "ALTER TABLE users DROP CONSTRAINT one_name", True),
    ("CREATE INDEX users_score ON users (score)", "DROP INDEX users_score", True),
    ("DROP INDEX users_name", "CREATE INDEX users_name ON users (name)", True),
    ("ALTER TABLE users SET (fillfactor = 50)", "ALTER TABLE users RESET (fillfactor)", True),
    ("ALTER TABLE users SET UNLOGGED", "ALTER TABLE users SET LOGGED", True),
    ("ALTER TABLE users CLUSTER ON users_pkey", "ALTER TABLE users SET WITHOUT CLUSTER", True),
    ("ALTER TABLE users REPLICA IDENTITY FULL", "ALTER TABLE users REPLICA IDENTITY DEFAULT",
     True),
    ("ALTER TABLE users ENABLE ROW LEVEL SECURITY",
     "ALTER TABLE users DISABLE ROW LEVEL SECURITY", True),
    ("CREATE RULE r1 AS ON INSERT TO users WHERE NEW.name = 'nobody' DO INSTEAD NOTHING",
     "DROP RULE r1 ON users", True),
    ("CREATE STATISTICS st1 ON id, name FROM users", "DROP STATISTICS st1", True),
    # Types, sequences, functions, triggers.
    ("ALTER TYPE colour ADD VALUE 'blue'",
     "DROP TYPE colour; CREATE TYPE colour AS ENUM ('red')", True),
    ("CREATE TYPE pair AS (a int, b text)", "DROP TYPE pair", True),
    ("CREATE DOMAIN positive AS int CHECK (VALUE > 0)", "DROP DOMAIN positive", True),
    ("CREATE TYPE floats AS RANGE (subtype = float8)", "DROP TYPE floats", True),
    ("ALTER SEQUENCE counter INCREMENT BY 5", "ALTER SEQUENCE counter INCREMENT BY 1", True),
    ("CREATE FUNCTION add1(i int) RETURNS int LANGUAGE sql AS 'SELECT i + 1'",
     "DROP FUNCTION add1(int)", True),
    ("CREATE OR REPLACE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS "
     "$$ BEGIN NEW.name := NEW.name; RETURN NEW; END $$",
     "CREATE OR REPLACE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS "
     "$$ BEGIN RETURN NEW; END $$", True),
    ("ALTER FUNCTION touch() SECURITY DEFINER", "ALTER FUNCTION touch() SECURITY INVOKER", True),
    ("CREATE AGGREGATE my_sum(int) (SFUNC = int4pl, STYPE = int)",
     "DROP AGGREGATE my_sum(int)", True),
    ("CREATE TRIGGER users_touch2 BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION touch()",
     "DROP TRIGGER users_touch2 ON users", True),
    ("ALTER TABLE users DISABLE TRIGGER users_touch",
     "ALTER TABLE users ENABLE TRIGGER users_touch", True),
    ("CREATE FUNCTION et() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN END $$; "
     "CREATE EVENT TRIGGER et1 ON ddl_command_end EXECUTE FUNCTION et()",
     "DROP EVENT TRIGGER et1; DROP FUNCTION et()", True),
    # Grants, owners, comments, schemas.
    ("GRANT SELECT ON users TO PUBLIC", "REVOKE SELECT ON users FROM PUBLIC", True),
    (f"GRANT UPDATE (name) ON users TO {OTHER_ROLE}",
     f"REVOKE UPDATE (name) ON users FROM {OTHER_ROLE}", True),
    ("REVOKE EXECUTE ON FUNCTION touch() FROM PUBLIC",
     "GRANT EXECUTE ON FUNCTION touch() TO PUBLIC", True),
    (f"ALTER TABLE users OWNER TO {OTHER_ROLE}", "ALTER TABLE users OWNER TO CURRENT_USER", True),
    ("ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO PUBLIC",
     "ALTER DEFAULT PRIVILEGES REVOKE SELECT ON TABLES FROM PUBLIC", True),
    ("COMMENT ON COLUMN users.name IS 'who'", "COMMENT ON COLUMN users.name IS NULL", True),
    ("COMMENT ON SCHEMA public IS 'changed'",
     "COMMENT ON SCHEMA public IS 'standard public schema'", True),
    ("CREATE SCHEMA extra", "DROP SCHEMA extra", True),
    # The long tail: seen by identity.
    ("CREATE OPERATOR === (LEFTARG = int, RIGHTARG = int, FUNCTION = int4eq)",
     "DROP OPERATOR === (int, int)", True),
    ('CREATE COLLATION c2 FROM "C"', "DROP COLLATION c2", True),
    ("CREATE TEXT SEARCH CONFIGURATION ts2 (COPY = simple)",
     "DROP TEXT SEARCH CONFIGURATION ts2", True),
    ("CREATE FOREIGN DATA WRAPPER fdw1", "DROP FOREIGN DATA WRAPPER fdw1", True),
    ("CREATE PUBLICATION pub1", "DROP PUBLICATION pub1", True),
    # Data: rows, as before this change, and large objects.
    ("UPDATE users SET name = 'eve' WHERE name = 'bob'",
     "UPDATE users SET name = 'bob' WHERE name = 'eve'", False),
    ("INSERT INTO users (name) VALUES ('cy')", "DELETE FROM users WHERE name = 'cy'", False),
    ("SELECT lo_create(424242)", "SELECT lo_unlink(424242)", False),
]



def _composable(picked: list[tuple[str, str, bool]]) -> bool:
    """Whether the reverts, run newest first, undo the deploys together as they do alone.
    Not so for a grant to OTHER_ROLE with the owner changed to OTHER_ROLE: PostgreSQL's
    ALTER OWNER rewrites the new owner's entries as the owner's own, so giving the table
    back turns the grant into one to the original owner, which the REVOKE no longer
    finds. The database really differs from before, and the engine rightly escalates."""
    deploys = " ".join(deploy for deploy, _, _ in picked)
    return not (f"OWNER TO {OTHER_ROLE}" in deploys and f"TO {OTHER_ROLE}" in
                deploys.replace(f"OWNER TO {OTHER_ROLE}", ""))


changes = st.lists(st.sampled_from(CHANGES), min_size=1, max_size=4, unique=True)
composable = changes.filter(_composable)


@pytest.fixture(scope="module")
def template(pg_server_url: str) -> Iterator[str]:
    """A database holding BASE, to copy for each example; the other role exists."""
    name = f"dasct_fp_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f"DO $$ BEGIN CREATE ROLE {OTHER_ROLE}; "
                     "EXCEPTION WHEN duplicate_object THEN NULL; END $$")
        conn.execute(f"CREATE DATABASE {name}")
    url = f"{pg_server_url.rsplit('/', 1)[0]}/{name}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(BASE)
    yield url
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextmanager
def copy_of(template_url: str) -> Iterator[str]:
    """A fresh database made from template_url, dropped afterwards."""
    server = template_url.rsplit("/", 1)[0]
    name = f"dasct_fp_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server + "/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {template_url.rsplit('/', 1)[1]}")
    try:
        yield f"{server}/{name}"
    finally:
        with psycopg.connect(server + "/postgres", autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def execute(url: str, *statements: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement.encode())


def schema_dump(url: str) -> str | None:
    """pg_dump --schema-only of the user's schemas (None without pg_dump)."""
    pg_dump = database.find_pg_dump()
    if pg_dump is None:
        return None
    out = subprocess.run(
        (pg_dump, "--schema-only", f"--exclude-schema={database.BOOKKEEPING_SCHEMA}",
         "--dbname", url), capture_output=True, text=True, check=True).stdout
    # Newer pg_dump releases fence the script with a random \restrict key.
    return "\n".join(line for line in out.splitlines()
                     if not line.startswith(("\\restrict", "\\unrestrict")))


def test_each_change_is_seen_and_its_revert_restores_the_fingerprint(template: str) -> None:
    with copy_of(template) as url, psycopg.connect(url, autocommit=True) as conn:
        db = database.connect(url)
        try:
            before = db.fingerprint()
            for deploy, revert, _ in CHANGES:  # each revert undoes its deploy: one database
                conn.execute(deploy.encode())
                assert db.fingerprint() != before, deploy
                conn.execute(revert.encode())
                assert db.fingerprint() == before, revert
        finally:
            db.close()


@pytest.mark.slow
@pytest.mark.parametrize(("deploy", "revert", "in_dump"), CHANGES,
                         ids=[c[0][:50] for c in CHANGES])
def test_pg_dump_agrees_on_each_change(template: str, deploy: str, revert: str,
                                       in_dump: bool) -> None:
    # The oracle: the list above holds changes a schema dump shows, and reverts that undo
    # them as a schema dump sees it.
    with copy_of(template) as url:
        before = schema_dump(url)
        if before is None:
            pytest.skip("pg_dump not found")
        execute(url, deploy)
        assert (schema_dump(url) != before) is in_dump, deploy
        execute(url, revert)
        assert schema_dump(url) == before, f"{revert!r} does not undo {deploy!r}"


def test_the_fingerprint_ignores_what_a_dump_leaves_out(template: str) -> None:
    with copy_of(template) as url, copy_of(template) as twin:
        before = fingerprint(url)
        # Same definitions and rows with other OIDs: built again in another database.
        execute(twin, "DROP VIEW user_ids; DROP TABLE users, events; DROP FUNCTION touch(); "
                "DROP TYPE colour; DROP SEQUENCE counter", BASE.replace(
                    "INSERT INTO users (name) VALUES ('ada'), ('bob');",
                    "INSERT INTO users (name) VALUES ('x'), ('y');"
                    "DELETE FROM users; SELECT setval('users_id_seq', 1, false);"
                    "INSERT INTO users (name) VALUES ('bob'), ('ada');"
                    "UPDATE users SET name = CASE name WHEN 'bob' THEN 'ada' ELSE 'bob' END;"))
        assert fingerprint(twin) == before
        # Statistics, physical storage, sequence positions, the connection's settings.
        execute(url, "ANALYZE", "VACUUM FULL users", "REINDEX TABLE users",
                "CLUSTER users USING users_pkey", "ALTER TABLE users SET WITHOUT CLUSTER",
                "SELECT nextval('counter')", "SELECT nextval('users_id_seq')")
        assert fingerprint(url) == before
        db = database.connect(url)
        try:
            db.conn.execute("SET search_path = pg_catalog")
            db.conn.execute("SET TimeZone = 'Pacific/Chatham'")
            db.conn.execute("SET DateStyle = 'German'")
            db.conn.execute("SET IntervalStyle = 'sql_standard'")
            assert db.fingerprint() == before
        finally:
            db.close()


def test_the_fingerprint_sees_row_contents_in_every_user_schema(template: str) -> None:
    with copy_of(template) as url:
        execute(url, "CREATE SCHEMA app", "CREATE TABLE app.t (at timestamptz)",
                "CREATE MATERIALIZED VIEW app.mv AS SELECT count(*) AS n FROM users")
        before = fingerprint(url)
        execute(url, "INSERT INTO app.t VALUES (now())")
        assert fingerprint(url) != before
        execute(url, "DELETE FROM app.t", "INSERT INTO users (name) VALUES ('cy')",
                "REFRESH MATERIALIZED VIEW app.mv", "DELETE FROM users WHERE name = 'cy'")
        assert fingerprint(url) != before  # the materialized view still counts three
        execute(url, "REFRESH MATERIALIZED VIEW app.mv")
        assert fingerprint(url) == before
        execute(url, f"INSERT INTO {database.BOOKKEEPING_SCHEMA}.deployed_change "
                "(trigger_id, change) VALUES ('E9', 'x')")
        assert fingerprint(url) == before  # dasct's own bookkeeping is not the user's


def run_engine(url: str, picked: Sequence[tuple[str, str, bool]], *, undo: bool) -> engine.Result:
    """Deploy each picked change as one SQL change, the last with a failing verify."""
    with tempfile.TemporaryDirectory() as tmp:
        env = make_env(Path(tmp), database=url)
        sql = [(f"c{i}", f"{deploy};", f"{revert};" if undo else "SELECT 1;", None)
               for i, (deploy, revert, _) in enumerate(picked)]
        name, deploy, revert, _ = sql[-1]
        sql[-1] = (name, deploy, revert, "SELECT false;")
        stage(env, "E1", sql=sql)
        result = quiet(env)
        if result.stats.escalated:
            marker = session.needs_attention(env.state_dir)
            assert marker is not None and any("database" in p for p in marker["problems"])
        return result


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(picked=changes)
def test_a_revert_that_undoes_nothing_is_escalated(template: str,
                                                    picked: list[tuple[str, str, bool]]) -> None:
    with copy_of(template) as url:
        result = run_engine(url, picked, undo=False)
        assert result.stats.escalated == 1 and not result.rolled_back, (picked, result)


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(picked=composable)
def test_a_revert_that_undoes_its_deploy_ends_as_before(template: str,
                                                        picked: list[tuple[str, str, bool]]
                                                        ) -> None:
    with copy_of(template) as url:
        before = fingerprint(url)
        result = run_engine(url, picked, undo=True)
        assert result.rolled_back == ["E1"] and not result.stats.escalated, (picked, result)
        assert fingerprint(url) == before


@pytest.mark.slow
def test_reverts_that_do_not_compose_are_escalated(template: str) -> None:
    """The pair _composable leaves out: each revert undoes its deploy alone, together they
    leave a grant behind; the engine sees it and escalates instead of saying "as before"."""
    picked = [c for c in CHANGES if c[0].startswith(("GRANT UPDATE (name) ON users TO",
                                                      "ALTER TABLE users OWNER TO"))]
    assert len(picked) == 2 and not _composable(picked)
    with copy_of(template) as url:
        result = run_engine(url, picked, undo=True)
        assert result.stats.escalated == 1 and not result.rolled_back, result


@pytest.mark.parametrize("index", range(6))
def test_the_issues_statements_are_escalated(template: str, index: int) -> None:
    with copy_of(template) as url:
        result = run_engine(url, [CHANGES[index]], undo=False)
        assert result.stats.escalated == 1 and not result.rolled_back
