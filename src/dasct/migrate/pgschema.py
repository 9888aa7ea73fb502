"""The PostgreSQL fingerprint: what `pg_dump --schema-only` sees, read from the catalogue.

The fingerprint decides whether a rollback left the database "as before", so it must change
whenever a schema dump of the user's schemas would (and with every table's rows), and must
not change for what a dump leaves out: OIDs, statistics, physical storage, sequence
positions. It is read from the system catalogue rather than from pg_dump's output because
pg_dump is optional where the engine runs and refuses a server newer than itself.

Every object is named, never numbered (`format_type`, `pg_get_*def`, `pg_identify_object`,
role names), so a revert that drops and recreates an object gives the same fingerprint. All
queries run in one read-only REPEATABLE READ transaction with fixed settings, so the text
of names, defaults and rows does not depend on the connection's search_path or time zone.
See docs/migration.md ("What the PostgreSQL fingerprint covers").
"""

from __future__ import annotations

import hashlib
from typing import Any

# The catalogue columns read here (prokind, attgenerated, pg_sequence...) exist from 12 on.
MIN_SERVER_VERSION = 120000

# First OID the server hands to objects created after initdb (PostgreSQL's
# FirstNormalObjectId): everything below it is built in.
FIRST_USER_OID = 16384

# The user's schemas: everything but the system's, temporary ones, and the excluded ones
# (dasct's own bookkeeping), passed as %(skip)s.
_USER = "{n}.nspname <> ALL(%(skip)s) AND {n}.nspname !~ '^pg_(toast_)?temp_'"


def _acl(column: str, kind: str, owner: str) -> str:
    # NULL means the default privileges and a GRANT then REVOKE leaves them spelled out,
    # and the order of entries carries no meaning: compare the sorted effective list.
    default = f'acldefault(({kind})::"char", {owner})'
    return f"ARRAY(SELECT x::text FROM unnest(coalesce({column}, {default})) x ORDER BY 1)::text"


_SCHEMAS = f"""
SELECT n.nspname, pg_get_userbyid(n.nspowner), {_acl('n.nspacl', "'n'", 'n.nspowner')}
FROM pg_namespace n WHERE {_USER.format(n='n')}"""

_EXTENSIONS = """
SELECT e.extname, e.extversion, n.nspname, e.extconfig::regclass[]::text, e.extcondition::text
FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"""

_RELATIONS = f"""
SELECT n.nspname, c.relname, c.relkind, pg_get_userbyid(c.relowner), c.relpersistence,
       c.relrowsecurity, c.relforcerowsecurity, c.relispopulated, c.relreplident,
       c.reloptions::text, am.amname, ts.spcname, c.relispartition,
       pg_get_expr(c.relpartbound, c.oid),
       CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END,
       CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END,
       {_acl('c.relacl', "CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END", 'c.relowner')},
       ARRAY(SELECT i.inhparent::regclass::text FROM pg_inherits i
             WHERE i.inhrelid = c.oid ORDER BY i.inhseqno)::text,
       (SELECT f.ftoptions::text || s.srvname FROM pg_foreign_table f
        JOIN pg_foreign_server s ON s.oid = f.ftserver WHERE f.ftrelid = c.oid)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_am am ON am.oid = c.relam LEFT JOIN pg_tablespace ts ON ts.oid = c.reltablespace
WHERE {_USER.format(n='n')}"""

_COLUMNS = f"""
SELECT n.nspname, c.relname, a.attnum - (SELECT count(*) FROM pg_attribute g
           WHERE g.attrelid = a.attrelid AND g.attisdropped AND g.attnum BETWEEN 1 AND a.attnum),
       a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated, co.collname,
       cn.nspname, a.attstattarget, a.attstorage, {{compression}} a.attoptions::text,
       a.attfdwoptions::text, a.attislocal, a.attinhcount,
       ARRAY(SELECT x::text FROM unnest(a.attacl) x ORDER BY 1)::text
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
LEFT JOIN pg_collation co ON co.oid = a.attcollation
LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind <> 'S' AND {_USER.format(n='n')}"""

_TYPES = f"""
SELECT n.nspname, t.typname, t.typtype, pg_get_userbyid(t.typowner),
       {_acl('t.typacl', "'T'", 't.typowner')}, format_type(t.typbasetype, t.typtypmod),
       t.typnotnull, t.typdefault, co.collname, t.typinput::regprocedure::text,
       t.typoutput::regprocedure::text, t.typreceive::regprocedure::text,
       t.typsend::regprocedure::text, t.typmodin::regprocedure::text,
       t.typmodout::regprocedure::text, t.typanalyze::regprocedure::text, t.typlen,
       t.typbyval, t.typalign, t.typstorage, t.typcategory, t.typispreferred, t.typdelim,
       format_type(t.typelem, NULL),
       ARRAY(SELECT e.enumlabel FROM pg_enum e WHERE e.enumtypid = t.oid
             ORDER BY e.enumsortorder)::text,
       (SELECT ROW(format_type(r.rngsubtype, NULL),
                   (SELECT l.collname FROM pg_collation l WHERE l.oid = r.rngcollation),
                   (SELECT o.opcname FROM pg_opclass o WHERE o.oid = r.rngsubopc),
                   r.rngcanonical::regprocedure::text,
               r.rngsubdiff::regprocedure::text)::text
        FROM pg_range r WHERE r.rngtypid = t.oid)
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
LEFT JOIN pg_collation co ON co.oid = t.typcollation
WHERE {_USER.format(n='n')}"""

_CONSTRAINTS = f"""
SELECT n.nspname, c.relname, format_type(k.contypid, NULL), k.conname, k.contype,
       pg_get_constraintdef(k.oid), k.conislocal, k.coninhcount
FROM pg_constraint k JOIN pg_namespace n ON n.oid = k.connamespace
LEFT JOIN pg_class c ON c.oid = k.conrelid
WHERE {_USER.format(n='n')}"""

_INDEXES = f"""
SELECT n.nspname, c.relname, pg_get_indexdef(i.indexrelid), i.indisclustered,
       i.indisreplident, i.indisvalid
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE {_USER.format(n='n')}"""

_SEQUENCES = f"""
SELECT n.nspname, c.relname, format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement,
       s.seqmax, s.seqmin, s.seqcache, s.seqcycle,
       ARRAY(SELECT d.refobjid::regclass::text || '.' || a.attname || ':' || d.deptype::text
             FROM pg_depend d JOIN pg_attribute a
             ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
             WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
             AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
             ORDER BY 1)::text
FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE {_USER.format(n='n')}"""

_POLICIES = f"""
SELECT n.nspname, c.relname, p.polname, p.polcmd, p.polpermissive,
       ARRAY(SELECT CASE WHEN r = 0 THEN 'public' ELSE pg_get_userbyid(r) END
             FROM unnest(p.polroles) r ORDER BY 1)::text,
       pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid)
FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE {_USER.format(n='n')}"""

_FUNCTIONS = f"""
SELECT n.nspname, p.proname, pg_get_function_identity_arguments(p.oid), p.prokind,
       pg_get_userbyid(p.proowner), {_acl('p.proacl', "'f'", 'p.proowner')},
       pg_get_function_result(p.oid),
       CASE WHEN p.prokind = 'a' THEN (
           SELECT ROW(a.aggkind, a.aggnumdirectargs, a.aggtransfn::regprocedure,
                      a.aggfinalfn::regprocedure, a.aggcombinefn::regprocedure,
                      a.aggserialfn::regprocedure, a.aggdeserialfn::regprocedure,
                      a.aggmtransfn::regprocedure, a.aggminvtransfn::regprocedure,
                      a.aggmfinalfn::regprocedure, a.aggfinalextra, a.aggmfinalextra,
                      a.aggfinalmodify, a.aggmfinalmodify, a.aggsortop::regoperator,
                      format_type(a.aggtranstype, NULL), a.aggtransspace,
                      format_type(a.aggmtranstype, NULL), a.aggmtransspace, a.agginitval,
                      a.aggminitval)::text
           FROM pg_aggregate a WHERE a.aggfnoid = p.oid)
       ELSE pg_get_functiondef(p.oid) END
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE {_USER.format(n='n')}"""

_TRIGGERS = f"""
SELECT n.nspname, c.relname, t.tgname, pg_get_triggerdef(t.oid), t.tgenabled
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT t.tgisinternal AND {_USER.format(n='n')}"""

_RULES = f"""
SELECT n.nspname, c.relname, r.rulename, pg_get_ruledef(r.oid), r.ev_enabled
FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE r.rulename <> '_RETURN' AND {_USER.format(n='n')}"""

_EVENT_TRIGGERS = """
SELECT e.evtname, e.evtevent, pg_get_userbyid(e.evtowner), e.evtfoid::regprocedure::text,
       e.evtenabled, e.evttags::text
FROM pg_event_trigger e"""

# pg_user_mapping itself is readable by superusers only (its options hold passwords).
_USER_MAPPINGS = "SELECT srvname, usename FROM pg_user_mappings"

_DEFAULT_ACLS = """
SELECT pg_get_userbyid(d.defaclrole), n.nspname, d.defaclobjtype,
       ARRAY(SELECT x::text FROM unnest(d.defaclacl) x ORDER BY 1)::text
FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace"""

# Comments and security labels on any object of this database, named by its identity.
_LABELS = """
SELECT o.type, o.schema, o.identity, {text}
FROM {catalog} d, LATERAL pg_identify_object(d.classoid, d.objoid, d.objsubid) o
WHERE (d.objoid >= {first} OR d.classoid = 'pg_namespace'::regclass)
AND coalesce(o.schema, CASE WHEN o.type = 'schema' THEN o.identity END, '') <> ALL(%(skip)s)
AND coalesce(o.schema, '') !~ '^pg_(toast_)?temp_'"""

# Catalogues whose every user object is at least seen by its identity (its existence, with
# its name and its parent's), whatever kind it is: operators, casts, collations, text search
# objects, foreign data wrappers, servers, publications, statistics objects... The main
# kinds above are read in full besides. pg_trigger is left to _TRIGGERS: the names of
# internal triggers carry OIDs.
_IDENTIFIED = (
    "pg_namespace", "pg_class", "pg_type", "pg_proc", "pg_constraint", "pg_attrdef",
    "pg_rewrite", "pg_policy", "pg_extension", "pg_operator", "pg_opclass", "pg_opfamily",
    "pg_amop", "pg_amproc", "pg_cast", "pg_collation", "pg_conversion", "pg_ts_config",
    "pg_ts_dict", "pg_ts_parser", "pg_ts_template", "pg_foreign_data_wrapper",
    "pg_foreign_server", "pg_publication", "pg_publication_rel",
    "pg_publication_namespace", "pg_statistic_ext", "pg_am", "pg_transform", "pg_language",
    "pg_event_trigger", "pg_largeobject_metadata",
)
_IDENTITY = """
SELECT o.type, o.schema, o.identity
FROM ({objects}) d, LATERAL pg_identify_object(d.classid, d.objid, 0) o
WHERE coalesce(o.schema, CASE WHEN o.type = 'schema' THEN o.identity END, '') <> ALL(%(skip)s)
AND coalesce(o.schema, '') !~ '^pg_(toast_)?temp_'"""
# A large object's identity is kept under pg_largeobject, its data catalogue.
_OBJECTS = ("SELECT 'pg_catalog.{classid}'::regclass AS classid, oid AS objid "
            "FROM pg_catalog.{catalog} WHERE oid >= {first}")

# Rows are read from ordinary tables and populated materialized views (a partitioned
# table's rows are its partitions'); foreign tables live elsewhere.
_CONTENT = f"""
SELECT n.nspname, c.relname, has_table_privilege(c.oid, 'SELECT')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE (c.relkind = 'r' OR (c.relkind = 'm' AND c.relispopulated)) AND {_USER.format(n='n')}"""

# The text of names, defaults and rows must not depend on the connection.
_SETTINGS = {
    "search_path": "pg_catalog, pg_temp", "TimeZone": "UTC", "DateStyle": "ISO, YMD",
    "IntervalStyle": "postgres", "extra_float_digits": "3", "bytea_output": "hex",
    "lc_monetary": "C",
}


def _queries(server_version: int, catalogs: set[str]) -> list[str]:
    compression = "a.attcompression," if server_version >= 140000 else ""
    queries = [_SCHEMAS, _EXTENSIONS, _RELATIONS, _COLUMNS.format(compression=compression),
               _TYPES, _CONSTRAINTS, _INDEXES, _SEQUENCES, _POLICIES, _FUNCTIONS, _TRIGGERS,
               _RULES, _EVENT_TRIGGERS, _USER_MAPPINGS, _DEFAULT_ACLS,
               _LABELS.format(text="d.description", catalog="pg_description",
                              first=FIRST_USER_OID),
               _LABELS.format(text="d.provider || ':' || d.label", catalog="pg_seclabel",
                              first=FIRST_USER_OID)]
    objects = " UNION ALL ".join(
        _OBJECTS.format(catalog=c, classid=c.replace("_metadata", ""), first=FIRST_USER_OID)
        for c in _IDENTIFIED if c in catalogs)
    return [*queries, _IDENTITY.format(objects=objects)]


def fingerprint(conn: Any, skip: tuple[str, ...],
                tables: list[tuple[str, str]] | None = None) -> str:
    """sha256 over the definitions of the user's schemas and every table's rows.

    conn is an autocommit psycopg connection; skip names schemas to leave out; tables, when
    given, are the only (schema, name) whose rows are read (an archive's scope: the
    definitions stay whole, their cost follows the number of objects, not of rows).
    Raises ValueError on a server older than MIN_SERVER_VERSION.
    """
    from psycopg import ClientCursor, sql

    if conn.info.server_version < MIN_SERVER_VERSION:
        raise ValueError(f"PostgreSQL 12 or newer is needed (the server is "
                         f"{conn.info.server_version})")
    digest = hashlib.sha256(b"pg-fingerprint 2\n" if tables is None else b"pg-scope 1\n")
    only = None if tables is None else set(tables)
    params = {"skip": list(skip)}
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        cur.execute("SELECT " + ", ".join(["set_config(%s, %s, true)"] * len(_SETTINGS)),
                    [v for item in _SETTINGS.items() for v in item])
        cur.execute("SELECT relname FROM pg_class WHERE relnamespace = 'pg_catalog'::regnamespace"
                    " AND relname = ANY(%s)", (list(_IDENTIFIED),))
        catalogs = {row[0] for row in cur.fetchall()}
        # All in one round trip (client-side binding allows several statements).
        with ClientCursor(conn) as many:
            many.execute(";\n".join(_queries(conn.info.server_version, catalogs)).encode(),
                         params)
            while True:
                # Sorted here, not in SQL: rows may tie on every column ORDER BY could name.
                for line in sorted(repr(tuple(row)) for row in many.fetchall()):
                    digest.update(line.encode() + b"\n")
                digest.update(b"--\n")
                if not many.nextset():
                    break
        cur.execute(_CONTENT.encode(), params)
        for schema, table, readable in sorted(cur.fetchall()):
            if only is not None and (schema, table) not in only:
                continue
            if not readable:
                digest.update(f"{schema}.{table}=unreadable\n".encode())
                continue
            cur.execute(sql.SQL(
                "SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) "
                "FROM {} t").format(sql.Identifier(schema, table)))
            found = cur.fetchone()
            digest.update(f"{schema}.{table}={found[0] if found else ''}\n".encode())
    return digest.hexdigest()
