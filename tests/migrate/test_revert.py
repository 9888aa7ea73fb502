"""`migrate revert`: one enhancement undone (files and SQL), later ones refused or
cascaded, hand edits and pruned archives refused; a revert runs the checks of the version
it restores (an enhancement whose health check tests its new behaviour reverts cleanly);
retention keeps what it must."""

from __future__ import annotations

import sqlite3
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from engine_kit import NOW, dump, make_env, quiet, snapshot, stage

from dasct.audit import verify as audit_verify
from dasct.migrate import archive, inventory, retention, revert
from dasct.migrate import trigger as trig
from dasct.migrate.environment import EngineError, Environment


def setup(tmp: Path) -> Environment:
    env = make_env(tmp)
    (env.root / "a.txt").write_text("a1\n")
    (env.root / "b.txt").write_text("b1\n")
    (env.root / "tool.sh").write_text("#!/bin/sh\n")
    (env.root / "tool.sh").chmod(0o755)
    sqlite3.connect(tmp / "db.sqlite").executescript("CREATE TABLE keep (x);")
    return env


def test_revert_restores_files_and_sql_of_one_enhancement(tmp_path: Path) -> None:
    env = setup(tmp_path)
    before, before_db = snapshot(env.root), dump(tmp_path / "db.sqlite")
    stage(env, "E1", sql=[("t1", "CREATE TABLE t1 (x); INSERT INTO t1 VALUES (1);",
                           "DROP TABLE t1;", "SELECT count(*) FROM t1;")],
          files=[("modify", "a.txt", b"a2\n", None), ("add", "new/x.txt", b"x\n", None),
                 ("delete", "tool.sh", None, None)])
    quiet(env)
    stage(env, "E2", files=[("modify", "b.txt", b"b2\n", None)], not_before=NOW)
    quiet(env, now=NOW + timedelta(minutes=1))
    result = revert.revert(env, "E1", write=lambda _: None)
    assert result.migrated == ["E1"]
    expected = dict(before)
    expected["./b.txt"] = snapshot(env.root)["./b.txt"]  # E2 stays
    assert snapshot(env.root) == expected
    assert dump(tmp_path / "db.sqlite") == before_db
    inv = inventory.load(env.state_dir)
    assert inv["deployments"]["E1"]["status"] == "reverted"
    assert inv["deployments"]["E2"]["status"] == "deployed"
    assert "file:a.txt" not in inv["items"] and "sql:t1" not in inv["items"]
    assert inv["items"]["file:b.txt"]["enhancement"] == "E2"
    assert audit_verify(env.state_dir) == []
    with pytest.raises(EngineError, match="not deployed"):
        revert.revert(env, "E1", write=lambda _: None)


def test_later_enhancement_on_same_items_refuses_or_cascades(tmp_path: Path) -> None:
    env = setup(tmp_path)
    before = snapshot(env.root)
    stage(env, "E1", files=[("modify", "a.txt", b"a2\n", None)])
    quiet(env)
    stage(env, "E2", files=[("modify", "a.txt", b"a3\n", None)], not_before=NOW)
    quiet(env, now=NOW + timedelta(minutes=1))
    with pytest.raises(EngineError, match="later enhancements changed the same items: E2"):
        revert.revert(env, "E1", write=lambda _: None)
    assert (env.root / "a.txt").read_text() == "a3\n"
    result = revert.revert(env, "E1", cascade=True, write=lambda _: None)
    assert result.migrated == ["E2", "E1"]
    assert snapshot(env.root) == before


def contains(text: str, *, log: Path | None = None) -> trig.StepCommand:
    """A health check passing when app/main.py contains text (like `grep text app/main.py`);
    with log, it appends its verdict there, so a test sees which checks ran."""
    script = (f"import sys\nok = {text!r} in open('app/main.py').read()\n"
              + (f"open({str(log)!r}, 'a').write(f'{text}:{{ok}}\\n')\n" if log else "")
              + "sys.exit(0 if ok else 1)\n")
    return trig.StepCommand(f"has-{text}", (sys.executable, "-c", script), "health", 30.0)


def _e0_then_e1(env: Environment, log: Path) -> Environment:
    """E0 (v0 -> v1, checks v1) then E1 (v1 -> NEW, checks NEW) deployed in env."""
    (env.root / "app").mkdir()
    (env.root / "app" / "main.py").write_text("print('v0')\n")
    stage(env, "E0", files=[("modify", "app/main.py", b"print('v1')\n", None)],
          commands=[contains("v1", log=log)])
    quiet(env)
    # E1's own check tests its new behaviour: it can never pass on E0's code.
    stage(env, "E1", files=[("modify", "app/main.py", b"print('NEW')\n", None)],
          commands=[contains("NEW", log=log)], not_before=NOW)
    quiet(env, now=NOW + timedelta(minutes=1))
    return env


def test_revert_runs_the_checks_of_the_version_it_restores(tmp_path: Path) -> None:
    log = tmp_path / "checks.log"
    verify = f"{sys.executable} -c \"open('{log}', 'a').write('verify\\n')\""
    env = _e0_then_e1(make_env(tmp_path, extra=f"verify = [{_toml(verify)}]\n"), log)
    assert log.read_text() == "v1:True\nverify\nNEW:True\nverify\n"
    log.unlink()
    result = revert.revert(env, "E1", write=lambda _: None)
    assert result.migrated == ["E1"] and result.exit_code == 0
    assert (env.root / "app" / "main.py").read_text() == "print('v1')\n"
    assert log.read_text() == "v1:True\nverify\n"  # E0's check and the verify; not E1's
    log.unlink()
    # Reverting E0 restores what was there before any enhancement: no trigger's checks.
    result = revert.revert(env, "E0", write=lambda _: None)
    assert result.migrated == ["E0"]
    assert (env.root / "app" / "main.py").read_text() == "print('v0')\n"
    assert log.read_text() == "verify\n"


def test_revert_says_so_when_the_restored_version_s_commands_are_gone(tmp_path: Path
                                                                       ) -> None:
    log = tmp_path / "checks.log"
    env = _e0_then_e1(make_env(tmp_path), log)
    log.unlink()
    archive.remove(archive.load(env.state_dir, "E0"))
    out: list[str] = []
    result = revert.revert(env, "E1", write=out.append)
    assert result.migrated == ["E1"]
    assert ("note: the archive of E0, whose version reverting E1 restores, is gone: its "
            "restart, health and verify commands are not run") in out
    assert not log.exists()


def test_a_failed_revert_restarts_the_version_it_leaves_in_place(tmp_path: Path) -> None:
    log, broken = tmp_path / "checks.log", tmp_path / "verify-fails"
    verify = f"{sys.executable} -c \"import os, sys; sys.exit(os.path.exists('{broken}'))\""
    env = make_env(tmp_path, extra=f"verify = [{_toml(verify)}]\n")
    (env.root / "app").mkdir()
    (env.root / "app" / "main.py").write_text("print('v0')\n")
    restart = (f"open({str(log)!r}, 'a').write("
               "'restart:' + open('app/main.py').read().strip() + '\\n')")
    stage(env, "E1", files=[("modify", "app/main.py", b"print('NEW')\n", None)],
          commands=[trig.StepCommand("restart", (sys.executable, "-c", restart), "restart",
                                     30.0)])
    quiet(env)
    log.unlink()
    broken.touch()
    result = revert.revert(env, "E1", write=lambda _: None)
    assert result.stats.rolled_back == 1
    assert (env.root / "app" / "main.py").read_text() == "print('NEW')\n"
    # The revert ran no restart (v0 came before any enhancement); its rollback put E1's
    # files back, so E1's restart ran on them.
    assert log.read_text() == "restart:print('NEW')\n"


def _toml(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def test_hand_edit_after_deploy_refuses_revert(tmp_path: Path) -> None:
    env = setup(tmp_path)
    stage(env, "E1", files=[("modify", "a.txt", b"a2\n", None)])
    quiet(env)
    (env.root / "a.txt").write_text("hand edit\n")
    with pytest.raises(Exception, match="changed on the target by hand"):
        revert.revert(env, "E1", write=lambda _: None)
    assert (env.root / "a.txt").read_text() == "hand edit\n"


def test_pruned_archive_refuses_revert(tmp_path: Path) -> None:
    env = setup(tmp_path)
    stage(env, "E1", files=[("modify", "a.txt", b"a2\n", None)])
    quiet(env)
    archive.remove(archive.load(env.state_dir, "E1"))
    with pytest.raises(archive.ArchiveError, match="pruned by retention"):
        revert.revert(env, "E1", write=lambda _: None)


def test_retention_keeps_last_n_young_and_under_warranty(tmp_path: Path) -> None:
    env = setup(tmp_path)
    for i in range(5):
        stage(env, f"E{i}", files=[("add", f"f{i}.txt", b"x", None)],
              not_before=NOW + timedelta(minutes=i))
        quiet(env, now=NOW + timedelta(minutes=i, seconds=30))
    revert.revert(env, "E0", write=lambda _: None)
    ids = [a.id for a in archive.all_archives(env.state_dir)]
    assert {"E0", "E1", "E2", "E3", "E4"} <= set(ids)
    later = time.time() + 40 * 86400
    # 40 days on: older than retention_days; E1..E4 are out of a 30-day warranty too.
    removed = retention.prune(env.state_dir, keep_count=2, keep_days=30, warranty_days=30,
                              now=later)
    kept = {a.id for a in archive.all_archives(env.state_dir)}
    assert len(kept) == 2 and set(removed).isdisjoint(kept)
    # Under a long warranty nothing deployed is pruned, whatever its age or rank.
    env2 = setup(tmp_path / "w")
    for i in range(4):
        stage(env2, f"W{i}", files=[("add", f"w{i}.txt", b"x", None)],
              not_before=NOW + timedelta(minutes=i))
        quiet(env2, now=NOW + timedelta(minutes=i, seconds=30))
    removed = retention.prune(env2.state_dir, keep_count=1, keep_days=1, warranty_days=365,
                              now=later)
    assert removed == []


def test_revert_archives_never_displace_what_is_deployed(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    env = make_env(tmp_path, extra="retention_count = 1\n")
    (env.root / "a.txt").write_text("a1\n")
    (env.root / "c.txt").write_text("c1\n")
    stage(env, "A", files=[("modify", "a.txt", b"a2\n", None)])
    quiet(env)
    stage(env, "B", files=[("modify", "a.txt", b"a3\n", None)], not_before=NOW)
    quiet(env, now=NOW + timedelta(minutes=1))
    stage(env, "C", files=[("modify", "c.txt", b"c2\n", None)], not_before=NOW)
    quiet(env, now=NOW + timedelta(minutes=2))
    assert revert.revert(env, "A", cascade=True, write=lambda _: None).migrated == ["B", "A"]
    # The next run, once every archive is past retention_days and the warranty: only the
    # newest archive of what is deployed survives the count of 1 (the revert's own do not
    # count), so C, the one enhancement still deployed, can still be reverted.
    later = time.time() + 40 * 86400
    monkeypatch.setattr(time, "time", lambda: later)
    quiet(env, now=NOW + timedelta(minutes=3))
    assert [a.id for a in archive.all_archives(env.state_dir)] == ["C"]
    monkeypatch.undo()
    assert revert.revert(env, "C", write=lambda _: None).migrated == ["C"]
    assert (env.root / "c.txt").read_text() == "c1\n"
