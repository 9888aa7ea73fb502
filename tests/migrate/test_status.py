"""`dasct status`: the state of every enhancement in each environment, decided by
status.state_of from what real engine runs recorded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from engine_kit import AT, NOW, SRC, cli, quiet, stage
from inventory_kit import build, dasct

from dasct import config
from dasct.migrate import manual, revert, status, warranty
from dasct.migrate import trigger as trig
from dasct.migrate.environment import Environment, environment
from gitrepo import GitRepo

# model runs any time; production only 03:00-04:00 UTC, so at NOW (01:00) it waits.
# Production is ungated here (promote_from = "none"): these are the states the engine
# records; those of sign-off and promotion are test_signoff_and_warranty_states'.
TOML = ('[environments.model]\nroot = "target"\ndatabase = "sqlite:///db.sqlite"\n'
        'state_dir = "state"\nstaging = "staging"\n'
        '[environments.production]\nroot = "ptarget"\ndatabase = "sqlite:///pdb.sqlite"\n'
        'state_dir = "pstate"\nstaging = "staging"\nwindows = ["03:00-04:00"]\n'
        'promote_from = "none"\n')


def envs(tmp: Path) -> tuple[Environment, Environment]:
    subprocess.run(["git", "init", "-q", str(tmp)], check=True)
    (tmp / ".dasct.toml").write_text(TOML)
    for d in ("target", "ptarget"):
        (tmp / d).mkdir()
    (tmp / "target" / "a.txt").write_text("a1\n")
    cfg = config.load(tmp)
    return environment(cfg, "model", tmp), environment(cfg, "production", tmp)


def every_state(tmp: Path) -> tuple[Environment, Environment]:
    """One enhancement in (nearly) every state, each put there by the engine itself."""
    model, prod = envs(tmp)
    stage(model, "E-reverted", files=[("modify", "a.txt", b"a2\n", None)])
    stage(model, "E-rolled", sql=[("t2", "CREATE TABLE t2 (x);", "DROP TABLE t2;",
                                   "SELECT count(*) FROM t2;")])
    stage(model, "E-later", files=[("add", "later.txt", b"l\n", None)],
          not_before=NOW + timedelta(days=2))
    stage(model, "E-held", files=[("add", "held.txt", b"h\n", None)], depends_on=["NOPE"])
    stage(model, "E-withdrawn", files=[("add", "w.txt", b"w\n", None)])
    stage(model, "E-kept", files=[("add", "b.txt", b"b\n", None)])
    stage(model, "E-expired", files=[("add", "x.txt", b"x\n", None)],
          not_before=NOW - timedelta(days=3), expires=NOW - timedelta(hours=1))
    manual.withdraw(model, "E-withdrawn", reason="not wanted", write=lambda _: None)
    result = quiet(model)
    assert sorted(result.migrated) == ["E-kept", "E-reverted"], result
    assert result.rolled_back == ["E-rolled"] and "E-held" in result.held
    revert.revert(model, "E-reverted", write=lambda _: None)
    stage(prod, "E-kept", files=[("add", "b.txt", b"b\n", None)])
    assert quiet(prod).not_run is not None  # outside its window
    return model, prod


def test_each_state_comes_from_what_the_engine_recorded(tmp_path: Path) -> None:
    every_state(tmp_path)
    found = status.report(config.load(tmp_path), tmp_path, now=NOW)
    assert found.environments == ("model", "production")
    got = {(tid, env): found.state(tid, env).state
           for e in found.enhancements for tid in [e.id] for env in found.environments}
    assert {tid: s for (tid, env), s in got.items() if env == "model"} == {
        "E-reverted": "reverted", "E-rolled": "rolled-back", "E-later": "scheduled",
        "E-held": "held", "E-withdrawn": "withdrawn", "E-kept": "migrated",
        "E-expired": "expired"}
    assert got[("E-kept", "production")] == "waiting-for-window"
    assert got[("E-rolled", "production")] == "absent"
    assert "depends on NOPE" in found.state("E-held", "model").detail
    assert "t2" in found.state("E-rolled", "model").detail
    assert found.state("E-withdrawn", "model").detail == "not wanted"
    assert found.state("E-later", "model").date == status.iso(NOW + timedelta(days=2))
    assert "03:00-04:00" in found.state("E-kept", "production").detail
    assert not any(e.id.startswith("revert-") for e in found.enhancements)
    assert [e.defects for e in found.enhancements] == [("PROJ-1",)] * len(found.enhancements)


def test_warranty_is_the_recorded_one(tmp_path: Path) -> None:
    """WP from the run that migrated it, CP once `warranty check` recorded the end (an
    environment that gates none keeps warranties: model, here, with production ungated)."""
    model, _ = every_state(tmp_path)
    cfg = config.load(tmp_path)
    real = datetime.now(timezone.utc)
    kept = status.report(cfg, tmp_path, now=real).state("E-kept", "model")
    assert kept.warranty == "WP" and "warranty WP since" in kept.detail
    later = real + timedelta(days=31)
    # Time passing is not a transition: nothing changes until one is recorded.
    assert status.report(cfg, tmp_path, now=later).state("E-kept", "model").warranty == "WP"
    assert warranty.check_now(model, now=later, write=lambda _: None) == ["E-kept"]
    after = status.report(cfg, tmp_path, now=later)
    assert after.state("E-kept", "model").warranty == "CP"
    assert after.state("E-reverted", "model").warranty is None


def test_held_is_only_what_the_last_run_decided(tmp_path: Path) -> None:
    model, _ = every_state(tmp_path)
    # The dependency arrives: the next run lets E-held through, so it is held no more.
    stage(model, "NOPE", files=[("add", "nope.txt", b"n\n", None)])
    quiet(model)
    found = status.report(config.load(tmp_path), tmp_path, now=NOW)
    assert found.state("E-held", "model").state == "migrated"


def test_status_cli_text_and_json(tmp_path: Path) -> None:
    every_state(tmp_path)
    text = cli(tmp_path, "status", "--at", AT)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    header = lines[1]
    assert header.split() == ["ENHANCEMENT", "DEFECTS", "REVISION", "ENVIRONMENT", "STATE",
                              "DATE", "WARRANTY", "DETAIL"]
    column = header.index("STATE")
    rows = [line for line in lines[2:] if " model " in line or " production " in line]
    assert len(rows) == 14  # seven enhancements, two environments
    assert all(line[column - 1] == " " and line[column] != " " for line in rows)
    assert any("E-kept" in r and "waiting-for-window" in r for r in rows)
    doc = json.loads(cli(tmp_path, "status", "--format", "json", "--at", AT).stdout)
    assert doc["format"] == "dasct-status" and doc["version"] == 1
    assert doc["environments"] == ["model", "production"]
    kept = next(e for e in doc["enhancements"] if e["id"] == "E-kept")
    assert set(kept) == {"id", "defects", "commits", "revision", "environments"}
    assert kept["environments"]["model"]["state"] == "migrated"
    assert kept["environments"]["model"]["warranty"] == "WP"
    assert set(kept["environments"]["production"]) == {"state", "date", "detail", "warranty"}


def test_status_of_two_environments_built_from_git(repo: GitRepo) -> None:
    sample = build(repo)
    doc = json.loads(dasct(sample, "status", "--format", "json"))
    by_id = {e["id"]: e for e in doc["enhancements"]}
    assert by_id["fix-7"]["defects"] == ["PROJ-7"]
    assert by_id["fix-7"]["revision"] == sample.fix
    assert by_id["feat-8"]["revision"] == sample.feature
    assert {env: s["state"] for env, s in by_id["feat-8"]["environments"].items()} == {
        "model": "migrated", "production": "scheduled"}
    assert by_id["feat-8"]["environments"]["production"]["date"] == "2099-01-01T00:00:00Z"


def test_nothing_known_yet_is_one_line(repo: GitRepo) -> None:
    repo.commit("empty")
    out = dasct(repo, "status")
    assert out == "no enhancement is known in model, production\n"


def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    every_state(tmp_path)


    proc = subprocess.run(f"{sys.executable} -m dasct status --at {AT} | head -1",
                          shell=True, cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(SRC)}, check=False)
    assert proc.stdout.startswith("enhancements in model, production")
    assert proc.stderr == ""


def test_a_failed_restore_shows_escalated(tmp_path: Path) -> None:
    model, _ = envs(tmp_path)
    archived = model.state_dir / "archives" / "E-bad" / "files"
    # The health check fails and, on its way out, corrupts the archived pre-image, so the
    # restore cannot match the archive (as in test_engine).
    script = (f"import pathlib\nfor p in pathlib.Path({str(archived)!r}).iterdir():\n"
              "    p.write_bytes(b'corrupt')\nraise SystemExit(1)")
    cmd = trig.StepCommand("health", (sys.executable, "-c", script), "health", 30.0)
    stage(model, "E-bad", files=[("modify", "a.txt", b"a2\n", None)], commands=[cmd])
    assert quiet(model).stats.escalated == 1
    found = status.report(config.load(tmp_path), tmp_path, now=NOW).state("E-bad", "model")
    assert found.state == "escalated" and found.date is not None
    assert "health" in found.detail
