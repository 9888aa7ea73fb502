"""`migrate run` in process on SQLite: the order of a run, rollback of any failure byte for
byte, expiry, windows, conflicts, hand-changed targets, escalation, dry run, locking."""

from __future__ import annotations

import sqlite3
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from engine_kit import NOW, SEED_FILES, dump, health, make_env, quiet, seed, snapshot, stage

from dasct.audit import verify as audit_verify
from dasct.migrate import engine, inventory, lock, manual, session
from dasct.migrate.environment import EngineError, Environment

CREATE = ("users", "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);\n"
          "INSERT INTO users (name) VALUES ('ada');",
          "DROP TABLE users;", "SELECT count(*) FROM users;")


def full_trigger(env: Environment, tid: str = "E1", **kw: object) -> None:
    stage(env, tid, sql=[CREATE], files=SEED_FILES, **kw)  # type: ignore[arg-type]


def run(env: Environment, **kw: object) -> engine.Result:
    lines: list[str] = []
    result = engine.run(env, now=NOW, write=lines.append, **kw)  # type: ignore[arg-type]
    result.lines = lines  # type: ignore[attr-defined]
    return result


def test_migrates_sql_then_files_and_records_everything(tmp_path: Path) -> None:
    env = seed(tmp_path)
    full_trigger(env)
    result = run(env)
    assert result.migrated == ["E1"] and result.exit_code == 0
    assert (env.root / "app/main.py").read_text() == "print('v2')\n"
    assert (env.root / "app/new/deep/feature.py").exists()
    assert not (env.root / "app/gone.py").exists()
    assert not (env.root / "app/old.py").exists()
    assert (env.root / "app/renamed.py").read_text() == "old\n"
    assert "INSERT INTO \"users\" VALUES(1,'ada');" in dump(tmp_path / "db.sqlite")
    inv = inventory.load(env.state_dir)
    assert inv["items"]["file:app/main.py"]["enhancement"] == "E1"
    assert inv["items"]["sql:users"]["enhancement"] == "E1"
    assert "file:app/gone.py" not in inv["items"]
    assert inventory.outcome(env.state_dir, "E1")["outcome"] == "migrated"  # type: ignore[index]
    assert not (env.staging / "triggers/model/E1.json").exists()
    assert (env.state_dir / "triggers/migrated/E1.json").exists()
    assert result.stats.success_percent == 100.0
    assert audit_verify(env.state_dir) == []
    assert lock.read(env.state_dir) is None
    # Never applied twice: the next run has nothing to do.
    again = run(env)
    assert again.stats.attempted == 0
    assert dump(tmp_path / "db.sqlite").count("INSERT INTO \"users\" VALUES(1,'ada');") == 1


@pytest.mark.parametrize("failure", ["health", "sql-verify", "sql-deploy", "env-verify"])
def test_any_failure_rolls_back_byte_identically(tmp_path: Path, failure: str) -> None:
    extra = ""
    if failure == "env-verify":
        extra = f'verify = ["{sys.executable} -c \\"raise SystemExit(4)\\""]\n'
    env = seed(tmp_path, extra=extra)
    (env.root / "app" / "main.py").chmod(0o755)
    conn = sqlite3.connect(tmp_path / "db.sqlite")
    conn.executescript("CREATE TABLE keep (x); INSERT INTO keep VALUES (1);")
    conn.close()
    before, before_db = snapshot(env.root), dump(tmp_path / "db.sqlite")
    sql = [CREATE]
    commands = []
    if failure == "health":
        commands = [health(3)]
    elif failure == "sql-verify":
        sql = [CREATE, ("v2", "CREATE TABLE t2 (x);", "DROP TABLE t2;", "SELECT count(*) FROM t2;")]
    elif failure == "sql-deploy":
        sql = [CREATE, ("bad", "CREATE TABLE t3 (x); INSERT INTO nowhere VALUES (1);",
                        "DROP TABLE t3;", None)]
    stage(env, "E1", sql=sql, commands=commands, files=SEED_FILES)
    result = run(env)
    assert result.rolled_back == ["E1"] and result.exit_code == 1
    assert snapshot(env.root) == before
    assert dump(tmp_path / "db.sqlite") == before_db
    assert inventory.outcome(env.state_dir, "E1")["outcome"] == "rolled-back"  # type: ignore[index]
    assert inventory.load(env.state_dir)["deployments"] == {}
    assert not (env.state_dir / "archives" / "E1").exists()
    assert audit_verify(env.state_dir) == []
    events = [line for line in result.lines if "rolled back" in line]  # type: ignore[attr-defined]
    assert events


def test_nothing_to_migrate(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    result = run(env)
    assert result.stats.attempted == 0 and result.exit_code == 0
    assert any("nothing to migrate" in x for x in result.lines)  # type: ignore[attr-defined]


def test_expired_is_reported_not_run_and_future_waits(tmp_path: Path) -> None:
    env = seed(tmp_path)
    stage(env, "OLD", files=[("add", "x.txt", b"x", None)],
          not_before=NOW - timedelta(days=5), expires=NOW - timedelta(days=1))
    stage(env, "LATER", files=[("add", "y.txt", b"y", None)], not_before=NOW + timedelta(hours=3))
    result = run(env)
    assert result.stats.expired == 1 and result.stats.waiting == 1
    assert not (env.root / "x.txt").exists() and not (env.root / "y.txt").exists()
    assert inventory.outcome(env.state_dir, "OLD")["outcome"] == "expired"  # type: ignore[index]
    assert inventory.outcome(env.state_dir, "LATER") is None


def test_window_and_freeze(tmp_path: Path) -> None:
    env = make_env(tmp_path, extra='windows = ["02:00-04:00"]\nfreeze = ["2026-12-24"]\n')
    stage(env, "E1", files=[("add", "x.txt", b"x", None)])
    result = run(env)  # 01:00 UTC: outside the window
    assert result.not_run and "outside" in result.not_run and not (env.root / "x.txt").exists()
    result = run(env, ignore_window=True)
    assert result.migrated == ["E1"]
    xmas = NOW.replace(month=12, day=24, hour=3)
    stage(env, "E2", files=[("add", "y.txt", b"y", None)], not_before=xmas - timedelta(hours=5))
    frozen = quiet(env, now=xmas, ignore_window=True)
    assert frozen.not_run and "freeze" in frozen.not_run


def test_conflicts_are_held_and_the_rest_go_on(tmp_path: Path) -> None:
    env = seed(tmp_path)
    stage(env, "A", files=[("modify", "app/main.py", b"a\n", None)])
    stage(env, "B", files=[("modify", "app/main.py", b"b\n", None)])
    stage(env, "C", sql=[("t1", "CREATE TABLE t1 (x);", "DROP TABLE t1;", None)])
    stage(env, "D", sql=[("t1b", "CREATE TABLE IF NOT EXISTS T1 (y);", "DROP TABLE t1;", None)])
    stage(env, "E", files=[("add", "e.txt", b"e", None)], conflicts_with=["F"])
    stage(env, "F", files=[("add", "f.txt", b"f", None)])
    stage(env, "G", files=[("add", "g.txt", b"g", None)], depends_on=["MISSING"])
    stage(env, "H", files=[("add", "h.txt", b"h", None)], depends_on=["I"])
    stage(env, "I", files=[("add", "i.txt", b"i", None)])
    stage(env, "J", files=[("add", "j.txt", b"j", None)], depends_on=["G"])
    result = run(env)
    assert set(result.held) == {"A", "B", "C", "D", "E", "F", "G", "J"}
    assert "same file app/main.py" in result.held["A"]
    assert "object t1" in result.held["C"]
    assert "declared conflict" in result.held["E"]
    assert "MISSING" in result.held["G"]
    assert result.migrated == ["I", "H"]  # the dependency first
    assert (env.root / "app/main.py").read_text() == "print('v1')\n"
    assert result.stats.held == 8


def test_hand_changed_target_is_refused_before_anything(tmp_path: Path) -> None:
    env = seed(tmp_path)
    stage(env, "E1", sql=[CREATE], files=[("modify", "app/main.py", b"v2\n", None)])
    (env.root / "app/main.py").write_text("hotfix\n")
    result = run(env)
    assert result.stats.refused == 1 and result.stats.attempted == 0
    assert dump(tmp_path / "db.sqlite") == []
    assert any("changed on the target by hand" in x for x in result.lines)  # type: ignore[attr-defined]


def test_failed_restore_escalates_and_blocks_until_resolve(tmp_path: Path) -> None:
    env = seed(tmp_path)
    archived = env.state_dir / "archives" / "E1" / "files"
    # The health check fails and, on its way out, corrupts the archived pre-image.
    script = (f"import pathlib\nfor p in pathlib.Path({str(archived)!r}).iterdir():\n"
              "    p.write_bytes(b'corrupt')\nraise SystemExit(1)")
    from dasct.migrate import trigger as trig
    cmd = trig.StepCommand("health", (sys.executable, "-c", script), "health", 30.0)
    stage(env, "E1", files=[("modify", "app/main.py", b"v2\n", None)], commands=[cmd])
    result = run(env)
    assert result.stats.escalated == 1 and result.exit_code == 1
    assert session.needs_attention(env.state_dir) is not None
    stage(env, "E2", files=[("add", "x.txt", b"x", None)])
    with pytest.raises(EngineError, match="needs attention"):
        run(env)
    assert lock.read(env.state_dir) is None
    assert manual.resolve(env, note="restored by hand", write=lambda _: None)
    assert run(env).migrated == ["E2"]


def test_dry_run_changes_nothing(tmp_path: Path) -> None:
    env = seed(tmp_path)
    full_trigger(env)
    before = snapshot(tmp_path)
    result = run(env, dry_run=True)
    assert snapshot(tmp_path) == before
    text = "\n".join(result.lines)  # type: ignore[attr-defined]
    assert "sql deploy users then verify" in text
    assert "file rename app/old.py -> app/renamed.py" in text


def test_locked_environment_refuses(tmp_path: Path) -> None:
    env = seed(tmp_path)
    lease = lock.acquire(env.state_dir, owner="someone")
    with pytest.raises(lock.LockError, match="locked by someone"):
        run(env)
    lock.release(env.state_dir, lease)


def test_verify_script_statements_may_share_a_line(tmp_path: Path) -> None:
    from dasct.migrate.database import SQLite, _sqlite_statements

    assert len(_sqlite_statements("SELECT 1; SELECT ';'; SELECT 2")) == 3
    db = SQLite(tmp_path / "x.sqlite")
    db.run_script("CREATE TABLE t (x); INSERT INTO t VALUES (1);", label="deploy")
    db.verify_script("SELECT count(*) FROM t; SELECT x = 1 FROM t;", label="verify")
    with pytest.raises(Exception, match="returned"):
        db.verify_script("SELECT 1; SELECT x = 2 FROM t;", label="verify")
    db.verify_script("SELECT x FROM t WHERE 0;", label="verify")  # Sqitch's idiom passes
    with pytest.raises(Exception, match="no such column"):
        db.verify_script("SELECT nope FROM t WHERE 0;", label="verify")
    db.close()


def test_crash_between_archive_rename_and_its_journal_record(tmp_path: Path) -> None:
    from dasct.migrate import archive, journal
    from dasct.migrate import trigger_read as trigr

    env = seed(tmp_path)
    full_trigger(env)
    before = snapshot(env.root)
    t = trigr.load(env.staging / "triggers/model/E1.json", environments=["model"], key=None,
                   require_signature=False)
    j = journal.Journal.begin(env.state_dir, trigger="E1", kind="migrate", reverts=None,
                              path=str(t.path), steps=["archive", "file:0"])
    j.record("archive", "intent")
    from dasct.migrate.database import connect
    db = connect(env.database)
    archive.create(env.state_dir, t, root=env.root, db=db)
    db.close()
    # The process died here: the archive is complete, its `done` record never written.
    assert snapshot(env.root) == before
    result = run(env)
    assert result.recovered and "rolled back the interrupted migration" in result.recovered
    assert result.migrated == ["E1"]


def _tamper(env: Environment, tid: str, **fields: object) -> None:
    import json

    path = env.staging / "triggers" / env.name / f"{tid}.json"
    doc = json.loads(path.read_text())
    doc.update(fields)
    path.write_text(json.dumps(doc))


@pytest.mark.parametrize("case", [
    "nothing", "migrated", "waiting", "outside-window", "bad-digest", "bad-signature",
    "hand-changed", "held", "expired", "rolled-back",
])
def test_exit_code_is_1_exactly_when_a_trigger_needs_a_person(
    tmp_path: Path, case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DASCT_TRIGGER_KEY", raising=False)
    if case == "bad-signature":
        monkeypatch.setenv("DASCT_TRIGGER_KEY", "the-real-signing-key")
    env = seed(tmp_path, extra='windows = ["02:00-04:00"]\n' if case == "outside-window" else "")
    add = [("add", "x.txt", b"x", None)]
    if case == "migrated" or case == "outside-window":
        stage(env, "E1", files=add)
    elif case == "waiting":
        stage(env, "E1", files=add, not_before=NOW + timedelta(hours=3))
    elif case == "bad-digest":
        stage(env, "E1", files=add)
        _tamper(env, "E1", defects=["PROJ-666"])
    elif case == "bad-signature":
        stage(env, "E1", files=add)
        _tamper(env, "E1", signature="0" * 64)  # the signature is outside the digest
    elif case == "hand-changed":
        stage(env, "E1", files=[("modify", "app/main.py", b"v2\n", None)])
        (env.root / "app/main.py").write_text("hotfix\n")
    elif case == "held":
        stage(env, "E1", files=add, depends_on=["NOT-DEPLOYED"])
    elif case == "expired":
        stage(env, "E1", files=add, not_before=NOW - timedelta(days=5),
              expires=NOW - timedelta(days=1))
    elif case == "rolled-back":
        stage(env, "E1", files=add, commands=[health(3)])
    result = run(env)
    needs_a_person = case not in ("nothing", "migrated", "waiting", "outside-window")
    assert result.exit_code == (1 if needs_a_person else 0), result.lines  # type: ignore[attr-defined]
    assert (result.migrated == ["E1"]) is (case == "migrated")
    if case == "outside-window":
        assert result.not_run and "outside" in result.not_run
    if case.startswith("bad-") or case == "hand-changed":
        assert result.stats.refused == 1
        reason = {"bad-digest": "digest mismatch", "bad-signature": "bad signature",
                  "hand-changed": "changed on the target by hand"}[case]
        assert any(reason in x for x in result.lines)  # type: ignore[attr-defined]
