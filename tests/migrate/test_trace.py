"""The forensic trace (seed 004, example 3): a failing run leaves its detail from before the
failure, checked against the audit log; a clean run leaves none; the next run after a
failure keeps everything; the bound holds under a long run; no secret reaches the file."""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from engine_kit import NOW, cli, health, seed, stage
from engine_kit import quiet as run_quiet

from dasct import audit
from dasct.migrate import engine, trace
from dasct.migrate import trigger as trig
from dasct.migrate.environment import Environment
from gitrepo import GitRepo


def shout(text: str) -> trig.StepCommand:
    """A health check that prints text on stdout and on stderr, then fails."""
    script = f"import sys\nprint({text!r})\nprint('stderr: ' + {text!r}, file=sys.stderr)\n" \
             "sys.exit(3)\n"
    return trig.StepCommand("shout", (sys.executable, "-c", script), "health", 30.0)


def kept(env: Environment) -> list[dict[str, Any]]:
    return trace.find(env.state_dir)


def flat(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each trace record as its fields with its type as `type`."""
    return [{**r["fields"], "type": r["record"]} for r in rows]


def test_a_failing_run_keeps_the_steps_before_the_failure(tmp_path: Path) -> None:
    env = seed(tmp_path)
    stage(env, "E1", files=[("modify", "app/main.py", b"print('v2')\n", None)],
          commands=[shout("the disk is on fire")])
    lines: list[str] = []
    result = engine.run(env, now=NOW, write=lines.append)
    assert result.rolled_back == ["E1"]
    [entry] = kept(env)
    assert entry["triggers"] == ["E1"] and entry["full"] is False
    assert any(why.startswith("rolled-back: command shout exited 3")
               for why in entry["failures"])
    assert any(line.startswith("trace: ") and "dasct migrate trace E1 --env model" in line
               for line in lines)
    head, raw = trace.load(env.state_dir, entry)
    assert head["records"] == len(raw) == entry["records"]
    rows = flat(raw)
    kinds = [(r["type"], r.get("event"), r.get("step"), r.get("phase")) for r in rows]
    # The steps before the failure, in order, then the command's own detail, then the rollback.
    archive_done = kinds.index(("audit", "step", "archive", "done"))
    file_done = kinds.index(("audit", "step", "file:0", "done"))
    command = next(i for i, r in enumerate(rows) if r["type"] == "command")
    rolled = kinds.index(("audit", "rolled-back", None, None))
    assert archive_done < file_done < command < rolled
    cmd = rows[command]
    assert cmd["exit"] == 3 and cmd["name"] == "shout" and cmd["kind"] == "health"
    assert cmd["trigger"] == "E1"
    assert "the disk is on fire" in cmd["stdout"] and "stderr: the disk" in cmd["stderr"]
    assert rows[0]["type"] == "session" and rows[0]["environment"] == "model"
    assert any(r["type"] == "file" and r["path"] == "app/main.py" for r in rows)
    assert any(r["type"] == "output" and "rolled back E1" in r["line"] for r in rows)
    assert audit.verify(env.state_dir) == []
    assert (env.state_dir / trace.FULL_MARK).exists()


def test_a_clean_run_keeps_none_and_the_run_after_a_failure_keeps_everything(
        tmp_path: Path) -> None:
    env = seed(tmp_path)
    stage(env, "E1", files=[("modify", "app/main.py", b"print('v2')\n", None)])
    assert run_quiet(env).migrated == ["E1"]
    assert kept(env) == [] and not trace.traces_dir(env.state_dir).exists()
    stage(env, "E2", files=[("modify", "app/main.py", b"print('v3')\n", None)],
          commands=[health(1)], not_before=NOW)
    assert run_quiet(env, now=NOW + timedelta(minutes=1)).rolled_back == ["E2"]
    assert len(kept(env)) == 1
    stage(env, "E3", files=[("modify", "app/main.py", b"print('v4')\n", None)],
          not_before=NOW + timedelta(minutes=2))
    assert run_quiet(env, now=NOW + timedelta(minutes=3)).migrated == ["E3"]
    full = kept(env)[-1]
    assert full["full"] is True and full["failures"] == [] and full["triggers"] == ["run"]
    head, rows = trace.load(env.state_dir, full)
    assert head["limit"] is None and any(r["fields"].get("step") == "file:0" for r in rows)
    assert not (env.state_dir / trace.FULL_MARK).exists()
    assert run_quiet(env, now=NOW + timedelta(minutes=4)).stats.attempted == 0
    assert len(kept(env)) == 2  # the clean run after the full one keeps nothing


def test_the_bound_holds_under_a_long_run(tmp_path: Path) -> None:
    clock = [1000.0]
    ring = trace.Trace(records=50, minutes=1, clock=lambda: clock[0])
    for i in range(10_000):
        ring.add("audit", event="step", n=i)
    assert len(ring.records()) == 50 and ring.dropped == 9_950
    assert [r["fields"]["n"] for r in ring.records()] == list(range(9_950, 10_000))
    clock[0] += 61  # a minute later: the age bound drops everything older
    ring.add("audit", event="late")
    assert [r["fields"]["event"] for r in ring.records()] == ["late"]
    assert ring.dropped == 10_000  # of the 10,001 added, one is left
    # Through the engine: 40 file changes and a failing check, 25 records kept.
    env = seed(tmp_path, extra="trace_records = 25\n")
    many = [("add", f"app/f{i}.txt", b"x\n", None) for i in range(40)]
    stage(env, "E1", files=many, commands=[shout("late failure")])
    assert run_quiet(env).rolled_back == ["E1"]
    [entry] = kept(env)
    head, rows = trace.load(env.state_dir, entry)
    assert len(rows) == 25 and head["dropped"] > 100
    assert any(r["record"] == "command" for r in rows)  # the failure is within the bound


def test_a_changed_trace_is_refused(tmp_path: Path) -> None:
    env = seed(tmp_path)
    stage(env, "E1", files=[("modify", "app/main.py", b"print('v2')\n", None)],
          commands=[health(1)])
    run_quiet(env)
    [entry] = kept(env)
    path = env.state_dir / str(entry["path"])
    path.write_text(path.read_text().replace("rolled-back", "migrated"))
    with pytest.raises(trace.TraceError, match="the trace was changed after it was kept"):
        trace.load(env.state_dir, entry)


def test_a_secret_a_command_prints_never_reaches_the_trace(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    secret = "s3cr3t-trigger-key-4711"
    monkeypatch.setenv("DASCT_TRIGGER_KEY", secret)
    env = seed(tmp_path)
    stage(env, "E1", files=[("modify", "app/main.py", b"print('v2')\n", None)],
          commands=[shout(f"key={secret}")])
    run_quiet(env)
    [entry] = kept(env)
    text = (env.state_dir / str(entry["path"])).read_text()
    assert secret not in text and "key=" in text


def test_traces_are_pruned_like_archives(tmp_path: Path) -> None:
    env = seed(tmp_path, extra="retention_count = 1\nretention_days = 0\n"
                               "trace_full_after_failure = false\n")
    for n in range(3):
        stage(env, f"E{n}", files=[("modify", "app/main.py", f"v{n}\n".encode(), None)],
              commands=[health(1)], not_before=NOW + timedelta(minutes=n))
        run_quiet(env, now=NOW + timedelta(minutes=n, seconds=30))
    files = list(trace.traces_dir(env.state_dir).glob("*.jsonl"))
    assert len(files) == 1 and len(kept(env)) == 3
    pruned = [r for r in audit.records(env.state_dir) if r["event"] == "trace-pruned"]
    assert len(pruned) == 2
    with pytest.raises(trace.TraceError, match="pruned by retention or removed"):
        trace.load(env.state_dir, kept(env)[0])


def test_migrate_trace_shows_it_from_the_cli(repo: GitRepo) -> None:
    env = seed(repo.path)
    stage(env, "E1", files=[("modify", "app/main.py", b"print('v2')\n", None)],
          commands=[shout("cli check")])
    run = cli(repo.path, "migrate", "run", "--env", "model", "--at", trig.format_time(NOW))
    assert run.returncode == 1 and "trace: " in run.stdout
    listed = cli(repo.path, "migrate", "trace", "--env", "model")
    assert listed.returncode == 0 and "E1" in listed.stdout and "rolled-back" in listed.stdout
    shown = cli(repo.path, "migrate", "trace", "E1", "--env", "model")
    assert shown.returncode == 0, shown.stderr
    assert "matches the audit log" in shown.stdout
    assert "stdout: cli check" in shown.stdout and "step archive=" not in shown.stdout
    doc = json.loads(cli(repo.path, "migrate", "trace", "E1", "--env", "model",
                         "--format", "json").stdout)
    [one] = doc["traces"]
    assert one["head"]["triggers"] == ["E1"] and one["records"][0]["record"] == "session"
    missing = cli(repo.path, "migrate", "trace", "E9", "--env", "model")
    assert missing.returncode != 0
    assert missing.stderr.strip().splitlines()[-1].endswith(
        "no kept trace names E9 (a trace is kept when a run fails, and pruned like the "
        "archives)")
    # A changed audit log is not believed: one line, no trace shown.
    log = env.state_dir / audit.LOG
    log.write_text(log.read_text().replace('"rolled-back"', '"migrated"', 1))
    broken = cli(repo.path, "migrate", "trace", "E1", "--env", "model")
    assert broken.returncode != 0 and "the audit log does not verify" in broken.stderr
    assert "stdout: cli check" not in broken.stdout
