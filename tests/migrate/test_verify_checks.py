"""Remote testing as the seed describes it: `[[verify]]` commands fed predetermined input,
their exit status and output compared, their response time measured and recorded."""

from __future__ import annotations

import json
import re
import shutil
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from engine_kit import NOW, cli, seed, snapshot, stage
from engine_kit import quiet as run_quiet

from dasct.audit import verify as audit_verify
from dasct.migrate import archive, engine, inventory, revert
from dasct.migrate import trigger as trig
from dasct.migrate import trigger_write as trigw
from dasct.migrate.environment import Environment
from dasct.migrate.trigger import TriggerError
from gitrepo import GitRepo

# The "system": upper-cases its input after an optional delay.
PRICE = ("import sys, time\n"
         "time.sleep(float(sys.argv[1]) if len(sys.argv) > 1 else 0)\n"
         "data = sys.stdin.read()\n"
         "sys.stdout.write(data.upper())\n"
         "sys.exit(int(sys.argv[2]) if len(sys.argv) > 2 else 0)\n")


def verify(name: str, staging: Path, *, delay: float = 0, code: int = 0, expect: bytes | None,
           given: bytes = b"apple 3\npear 5\n", max_seconds: float | None = None,
           expect_exit: int = 0) -> trig.StepCommand:
    return trig.StepCommand(
        name, (sys.executable, "app/price.py", str(delay), str(code)), "verify", 30.0,
        input=trigw.write_payload(staging, given),
        expect_output=trigw.write_payload(staging, expect) if expect is not None else None,
        expect_exit=expect_exit, max_seconds=max_seconds)


def notifications(state: Path) -> list[dict[str, object]]:
    path = state / "notifications.jsonl"  # what the local transport delivered
    lines = path.read_text().splitlines() if path.exists() else []
    return [json.loads(line) for line in lines]


def audit_events(state: Path) -> list[dict[str, object]]:
    """Each audit record's fields, with its event."""
    records = [json.loads(line) for line in (state / "audit.jsonl").read_text().splitlines()]
    return [{"event": r["event"], **r["fields"]} for r in records]


def test_a_passing_verify_records_its_response_time(tmp_path: Path) -> None:
    env = seed(tmp_path)
    cmd = verify("price", env.staging, expect=b"APPLE 3\nPEAR 5\n", max_seconds=20)
    stage(env, "E1", files=[("add", "app/price.py", PRICE.encode(), None)], commands=[cmd])
    lines: list[str] = []
    result = engine.run(env, now=NOW, write=lines.append)
    assert result.stats.migrated == 1, lines
    assert any("verify price passed in" in line and "(max 20s)" in line for line in lines)
    done = inventory.outcome(env.state_dir, "E1")
    assert done is not None and done["outcome"] == "migrated"
    [check] = done["verify"]
    assert check["name"] == "price" and 0 < check["seconds"] < 20 and check["max_seconds"] == 20
    steps = [e for e in audit_events(env.state_dir) if e.get("event") == "step"
             and e.get("phase") == "done" and e.get("verify") == "price"]
    assert len(steps) == 1 and steps[0]["seconds"] == check["seconds"]
    migrated = [e for e in audit_events(env.state_dir) if e.get("event") == "migrated"]
    assert migrated[0]["verify"] == [check]
    assert audit_verify(env.state_dir) == []


def test_expected_exit_status_is_compared(tmp_path: Path) -> None:
    env = seed(tmp_path)
    cmd = verify("refuses", env.staging, code=3, expect_exit=3, expect=None)
    stage(env, "E1", files=[("add", "app/price.py", PRICE.encode(), None)], commands=[cmd])
    assert run_quiet(env).stats.migrated == 1
    env2 = seed(tmp_path / "b")
    cmd = verify("refuses", env2.staging, code=0, expect_exit=3, expect=None)
    stage(env2, "E1", files=[("add", "app/price.py", PRICE.encode(), None)], commands=[cmd])
    assert run_quiet(env2).stats.rolled_back == 1
    reason = str((inventory.outcome(env2.state_dir, "E1") or {})["reason"])
    assert reason.startswith("command refuses exited 0 (expected 3) after ")


@pytest.mark.parametrize(("given", "expect", "why"), [
    (b"apple 3\npear 5\n", b"APPLE 3\nPEAR 6\n",
     "output differs from the expected output at line 2: got 'PEAR 5', expected 'PEAR 6'"),
    (b"apple 3\n", b"APPLE 3\nPEAR 5\n", "output ends early: 8 of the 15 expected bytes"),
    (b"apple 3\npear 5\nfig 1\n", b"APPLE 3\nPEAR 5\n",
     "output is longer than the expected output (15 bytes)"),
])
def test_a_wrong_answer_rolls_back(tmp_path: Path, given: bytes, expect: bytes, why: str
                                   ) -> None:
    env = seed(tmp_path)
    before = snapshot(env.root)
    cmd = verify("price", env.staging, given=given, expect=expect)
    stage(env, "E1", files=[("add", "app/price.py", PRICE.encode(), None)], commands=[cmd])
    result = run_quiet(env)
    assert result.stats.rolled_back == 1
    assert snapshot(env.root) == before
    reason = str((inventory.outcome(env.state_dir, "E1") or {})["reason"])
    assert reason.startswith(f"command price: {why} after ")
    sent = [n for n in notifications(env.state_dir) if n.get("kind") == "rolled-back"]
    assert sent and why in str(sent[0]["body"])


def test_a_slow_answer_fails_verification(tmp_path: Path) -> None:
    env = seed(tmp_path)
    before = snapshot(env.root)
    cmd = verify("price", env.staging, delay=0.6, expect=b"APPLE 3\nPEAR 5\n", max_seconds=0.3)
    stage(env, "E1", files=[("add", "app/price.py", PRICE.encode(), None)], commands=[cmd])
    assert run_quiet(env).stats.rolled_back == 1
    assert snapshot(env.root) == before
    reason = str((inventory.outcome(env.state_dir, "E1") or {})["reason"])
    assert reason.startswith("command price: answered in 0.")
    assert reason.endswith("s, more than its max_seconds 0.3")
    seconds = float(reason.split("answered in ")[1].split("s,")[0])
    assert 0.6 <= seconds < 10


def test_a_missing_input_payload_is_refused_before_any_step(tmp_path: Path) -> None:
    env = seed(tmp_path)
    before = snapshot(env.root)
    cmd = verify("price", env.staging, expect=None)
    t = stage(env, "E1", files=[("add", "app/price.py", PRICE.encode(), None)], commands=[cmd])
    assert cmd.input is not None
    trig.object_path(t.staging, cmd.input).unlink()
    result = run_quiet(env)
    assert result.stats.migrated == 0 and result.stats.refused == 1
    assert snapshot(env.root) == before


COMMANDS = """\
[[verify]]
name = "price"
argv = ["python3", "app/price.py"]
input = "tests/remote-data/prices.txt"
expect_output = "tests/remote-data/prices.expected"
max_seconds = 30
"""


def test_trigger_create_ships_the_input_and_the_expected_output(repo: GitRepo) -> None:
    repo.write(".dasct.toml", '[environments.model]\nroot = "../target"\n'
               'state_dir = "../state"\n')
    (repo.path.parent / "target").mkdir()
    a = repo.commit("base", {"README": "x\n"})
    b = repo.commit("PROJ-9: prices", {
        "app/price.py": PRICE, "deploy/commands.toml": COMMANDS,
        "tests/remote-data/prices.txt": "apple 3\n",
        "tests/remote-data/prices.expected": "APPLE 3\n",
    })
    made = cli(repo.path, "trigger", "create", "--range", f"{a}..{b}", "--env", "model",
               "--id", "E9")
    assert made.returncode == 0, made.stderr
    doc = json.loads((repo.path / ".dasct/staging/triggers/model/E9.json").read_text())
    [entry] = doc["steps"]["commands"]
    assert entry["kind"] == "verify" and entry["max_seconds"] == 30 and entry["expect_exit"] == 0
    objects = repo.path / ".dasct/staging/objects"
    assert (objects / entry["input"][:2] / entry["input"]).read_bytes() == b"apple 3\n"
    dry = cli(repo.path, "migrate", "run", "--env", "model", "--now", "--dry-run")
    assert f"command price: python3 app/price.py (input {entry['input'][:12]}, " \
           f"expects output {entry['expect_output'][:12]}, max 30s)" in dry.stdout, dry.stdout
    run = cli(repo.path, "migrate", "run", "--env", "model", "--now")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "E9: verify price passed in" in run.stdout
    done = json.loads((repo.path.parent / "state/outcomes/E9.json").read_text())
    assert done["verify"][0]["name"] == "price"


@pytest.mark.parametrize(("text", "message"), [
    (COMMANDS.replace("prices.txt", "absent.txt"),
     r"`verify\[0\]\.input` names 'tests/remote-data/absent.txt', which is not a file"),
    (COMMANDS + 'expect_status = 1\n', r"`verify\[0\]\.expect_status` is not a key of"),
    (COMMANDS.replace("max_seconds = 30", "max_seconds = 90"),
     r"`verify\[0\]\.max_seconds` is above its timeout \(60s\)"),
    (COMMANDS.replace("input = ", "expect_exit = 256\ninput = "),
     r"`verify\[0\]\.expect_exit` must be an exit status 0..255"),
    (COMMANDS.replace("tests/remote-data/prices.txt", "../etc/passwd"),
     r"`verify\[0\]\.input` has a \. or \.\. component"),
])
def test_a_bad_verify_entry_is_one_line(repo: GitRepo, text: str, message: str) -> None:
    from dasct.config import MigrateConfig
    from dasct.migrate import create
    a = repo.commit("base", {"README": "x\n"})
    b = repo.commit("PROJ-9: prices", {
        "app/price.py": PRICE, "deploy/commands.toml": text,
        "tests/remote-data/prices.txt": "apple 3\n",
        "tests/remote-data/prices.expected": "APPLE 3\n",
    })
    with pytest.raises(TriggerError, match=r"deploy/commands.toml at [0-9a-f]+: " + message):
        create.create(repo_root=repo.path, rev_range=f"{a}..{b}", environment="model",
                      staging=repo.path.parent / "s", migrate=MigrateConfig(),
                      defect_patterns=[re.compile(r"PROJ-\d+")])


def _price_then_change(tmp: Path) -> Environment:
    """E0 adds the system with a verify fed its input; E1 changes the system."""
    env = seed(tmp)
    cmd = verify("price", env.staging, expect=b"APPLE 3\nPEAR 5\n")
    stage(env, "E0", files=[("add", "app/price.py", PRICE.encode(), None)], commands=[cmd])
    assert run_quiet(env).stats.migrated == 1
    stage(env, "E1", files=[("modify", "app/price.py", PRICE.encode() + b"# v2\n", None)],
          not_before=NOW)
    assert run_quiet(env, now=NOW + timedelta(minutes=1)).stats.migrated == 1
    # The staging area of the original triggers is gone by the time anyone reverts.
    shutil.rmtree(env.staging)
    return env


def test_a_revert_runs_the_restored_version_s_verify_with_its_archived_input(
        tmp_path: Path) -> None:
    env = _price_then_change(tmp_path)
    state = env.state_dir
    out: list[str] = []
    result = revert.revert(env, "E1", write=out.append)
    assert result.migrated == ["E1"], out
    assert any(line.startswith("  revert-E1-") and "verify price passed in" in line
               for line in out), out
    assert not any(line.startswith("note:") for line in out)
    assert audit_verify(state) == []


def test_a_revert_says_so_when_an_archive_lacks_the_verify_payloads(tmp_path: Path) -> None:
    env = _price_then_change(tmp_path)
    state = env.state_dir
    shutil.rmtree(archive.load(state, "E0").path / "commands")  # as archives made before
    out: list[str] = []
    result = revert.revert(env, "E1", write=out.append)
    assert result.migrated == ["E1"], out
    notes = [line for line in out if line.startswith("note: verify price of E0 is not run: ")]
    assert len(notes) == 1 and "no intact copy of command payload" in notes[0], out
    assert not any("verify price passed" in line for line in out)
