"""Benchmark: a migration touching one small table, in a small and a large database.

The archive covers what the enhancement's SQL touches (src/dasct/migrate/scope.py), so the
cost of one migration must follow that small table, not the database around it. Each
database holds `small` (100 rows) and one wide table `wide` of ~1 KiB rows up to the size
asked. The enhancement adds a column to `small` and fills it; its verify fails on the timed
runs, so every run is archive + deploy + verify + rollback (revert, restore, fingerprint
check) through `engine.run`, and leaves the database as it was. A last run succeeds and
keeps its archive, whose size is reported.

    python bench/archive_scope.py [--runs N] [--small-mb 4] [--large-mb 4096]
                                  [--engines sqlite,postgresql]

PostgreSQL needs a server: DASCT_TEST_PG_URL (`. ci/services.sh && start_services`).
The databases are made in a temporary directory (SQLite) or as new databases on that
server (PostgreSQL), and deleted afterwards.
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from dasct import config
from dasct.migrate import engine
from dasct.migrate import trigger as trig
from dasct.migrate import trigger_write as trigw
from dasct.migrate.environment import Environment, environment

ROW = 1000  # bytes of payload per row of the wide table
DEPLOY = "ALTER TABLE small ADD COLUMN w INT;\nUPDATE small SET w = id;"
REVERT = "ALTER TABLE small DROP COLUMN w;"


def fill_sqlite(path: Path, mb: int) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(
        "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;\n"
        "CREATE TABLE small (id INTEGER PRIMARY KEY, v TEXT);\n"
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100) "
        "INSERT INTO small SELECT i, 'v' || i FROM n;\n"
        "CREATE TABLE wide (id INTEGER PRIMARY KEY, pad BLOB);\n"
        f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < "
        f"{mb * 1024 * 1024 // (ROW + 40)}) INSERT INTO wide SELECT i, randomblob({ROW}) FROM n;")
    conn.close()


def fill_postgres(url: str, mb: int) -> None:
    import psycopg

    rows = mb * 1024 * 1024 // (ROW + 60)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE small (id int PRIMARY KEY, v text);"
                     "INSERT INTO small SELECT g, 'v' || g FROM generate_series(1, 100) g;"
                     "CREATE TABLE wide (id int PRIMARY KEY, pad text)")
        conn.execute(f"INSERT INTO wide SELECT g, repeat(md5(g::text), {ROW // 32}) "
                     f"FROM generate_series(1, {rows}) g")


def make_env(base: Path, database: str) -> Environment:
    (base / "target").mkdir(parents=True, exist_ok=True)
    (base / ".dasct.toml").write_text(
        f'[environments.bench]\nroot = "target"\ndatabase = "{database}"\n'
        'state_dir = "state"\nstaging = "staging"\n')
    return environment(config.load(base), "bench", base)


def stage(env: Environment, tid: str, *, verify: str) -> None:
    s = env.staging
    change = trig.SqlChange("small_w", trigw.write_payload(s, DEPLOY.encode()),
                            trigw.write_payload(s, REVERT.encode()),
                            trigw.write_payload(s, verify.encode()))
    now = datetime.now(timezone.utc)
    doc = trigw.document(id=tid, system="app", environment=env.name,
                         not_before=now - timedelta(hours=1), expires=now + timedelta(days=1),
                         defects=[], commits=[], sql=[change], files=[], commands=[])
    trigw.write(s, doc, key=None)


def run_once(env: Environment, tid: str, *, fail: bool) -> float:
    stage(env, tid, verify="SELECT 0;" if fail else "SELECT 1;")
    start = time.perf_counter()
    result = engine.run(env, ignore_window=True, write=lambda _: None)
    took = time.perf_counter() - start
    want = result.stats.rolled_back if fail else result.stats.migrated
    assert want == 1, result.line()
    return took


def archive_bytes(env: Environment, tid: str) -> int:
    folder = env.state_dir / "archives" / tid
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def measure(label: str, envs: dict[str, Environment], sizes: dict[str, int], runs: int,
            write: Callable[[str], None]) -> dict[str, float]:
    """Median rollback-run seconds per size (sizes take turns), then one kept migration."""
    times: dict[str, list[float]] = {k: [] for k in envs}
    for n in range(runs):
        for key, env in envs.items():
            times[key].append(run_once(env, f"R{n}", fail=True))
    medians = {k: statistics.median(v) for k, v in times.items()}
    for key, env in envs.items():
        ok = run_once(env, "KEEP", fail=False)
        write(f"{label:<10} {key:<6} database {sizes[key] / 2**20:>9,.1f} MiB  "
              f"migration+rollback {medians[key] * 1000:>8.1f} ms (median of {runs}, "
              f"min {min(times[key]) * 1000:.1f})  "
              f"successful migration {ok * 1000:>8.1f} ms  "
              f"archive {archive_bytes(env, 'KEEP') / 1024:>8.1f} KiB")
    return medians


def sqlite_bench(tmp: Path, mbs: dict[str, int], runs: int, write: Callable[[str], None]
                 ) -> dict[str, float]:
    envs, sizes = {}, {}
    for key, mb in mbs.items():
        base = tmp / f"sqlite-{key}"
        base.mkdir()
        start = time.perf_counter()
        fill_sqlite(base / "db.sqlite", mb)
        sizes[key] = (base / "db.sqlite").stat().st_size
        write(f"generated SQLite {key} ({sizes[key] / 2**20:,.0f} MiB) in "
              f"{time.perf_counter() - start:.0f} s")
        envs[key] = make_env(base, "sqlite:///db.sqlite")
    return measure("sqlite", envs, sizes, runs, write)


def postgres_bench(tmp: Path, server: str, mbs: dict[str, int], runs: int,
                   write: Callable[[str], None]) -> dict[str, float]:
    import psycopg

    envs, sizes, names = {}, {}, []
    try:
        for key, mb in mbs.items():
            name = f"dasct_bench_{key}_{os.getpid()}"
            with psycopg.connect(server, autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {name}")
            names.append(name)
            url = server.rsplit("/", 1)[0] + f"/{name}"
            start = time.perf_counter()
            fill_postgres(url, mb)
            with psycopg.connect(url) as conn:
                found = conn.execute("SELECT pg_database_size(current_database())").fetchone()
            sizes[key] = int(found[0]) if found else 0
            write(f"generated PostgreSQL {key} ({sizes[key] / 2**20:,.0f} MiB) in "
                  f"{time.perf_counter() - start:.0f} s")
            base = tmp / f"pg-{key}"
            base.mkdir()
            envs[key] = make_env(base, url)
        return measure("postgresql", envs, sizes, runs, write)
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            for name in names:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def machine() -> str:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True, check=False, cwd=Path(__file__).parent).stdout.strip()
    return (f"{datetime.now(timezone.utc):%Y-%m-%d}, {os.cpu_count()} CPUs ({cpu}), "
            f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
            f"{platform.system()} {platform.release()}, HEAD {head or 'unknown'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--small-mb", type=int, default=4)
    parser.add_argument("--large-mb", type=int, default=4096)
    parser.add_argument("--engines", default="sqlite,postgresql")
    args = parser.parse_args()
    write = print
    write(f"machine: {machine()}")
    mbs = {"small": args.small_mb, "large": args.large_mb}
    with tempfile.TemporaryDirectory(prefix="dasct-bench-scope.") as tmp:
        for name in args.engines.split(","):
            if name == "sqlite":
                got = sqlite_bench(Path(tmp), mbs, args.runs, write)
            else:
                server = os.environ.get("DASCT_TEST_PG_URL")
                if not server:
                    write("postgresql: skipped (DASCT_TEST_PG_URL is not set)")
                    continue
                got = postgres_bench(Path(tmp), server, mbs, args.runs, write)
            write(f"{name}: ratio large/small {got['large'] / got['small']:.2f} (goal <= 1.5)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
