"""`dasct trigger withdraw ID --env ENV`: a pending trigger leaves staging without running.

It is settled as `withdrawn` (never run again), audited and notified, and it no longer
holds the triggers it conflicted with. A trigger that is settled, in flight or locked by a
run is refused, with one line.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from engine_kit import AT, cli, make_env, stage

from dasct import audit
from dasct.migrate import inventory, journal, lock


def repo_with_conflict(tmp: Path) -> Path:
    """A repository whose model environment has A and B, both changing a.txt from a1."""
    subprocess.run(["git", "init", "-q", str(tmp)], check=True)
    env = make_env(tmp)
    (env.root / "a.txt").write_text("a1\n")
    stage(env, "A", files=[("modify", "a.txt", b"from A\n", None)])
    stage(env, "B", files=[("modify", "a.txt", b"from B\n", None)])
    return tmp


def run(repo: Path) -> subprocess.CompletedProcess[str]:
    return cli(repo, "migrate", "run", "--env", "model", "--now", "--at", AT)


def withdraw(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return cli(repo, "trigger", "withdraw", *args, "--env", "model")


def test_withdrawing_a_trigger_lets_the_one_it_held_run(tmp_path: Path) -> None:
    repo = repo_with_conflict(tmp_path)
    first = run(repo)
    assert first.returncode == 1 and "held: A: conflicts with B (same file a.txt)" in first.stdout
    done = withdraw(repo, "A", "--reason", "superseded by B")
    assert done.returncode == 0, done.stderr
    moved = repo / "state/triggers/withdrawn/A.json"
    assert f"withdrew A from model: {moved}" in done.stdout
    assert moved.is_file() and not (repo / "staging/triggers/model/A.json").exists()
    outcome = inventory.outcome(repo / "state", "A")
    assert outcome is not None and outcome["outcome"] == "withdrawn"
    assert outcome["reason"] == "superseded by B"
    second = run(repo)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "migrated B" in second.stdout and "A" not in second.stdout.replace("attempted", "")
    assert (repo / "target/a.txt").read_text() == "from B\n"
    events = [(r["event"], r["fields"].get("trigger")) for r in audit.records(repo / "state")]
    assert ("withdrawn", "A") in events
    assert audit.verify(repo / "state") == []
    sent = [json.loads(line) for line in
            (repo / "state/notifications.jsonl").read_text().splitlines()]
    note = next(n for n in sent if n["kind"] == "withdrawn")
    assert note["subject"] == "[model] A withdrawn" and "superseded by B" in note["body"]
    status = cli(repo, "migrate", "status", "--env", "model")
    assert "pending triggers: none" in status.stdout


def test_a_refused_trigger_can_be_withdrawn(tmp_path: Path) -> None:
    repo = repo_with_conflict(tmp_path)
    path = repo / "staging/triggers/model/A.json"
    path.write_text(path.read_text().replace('"system": "app"', '"system": "forged"'))
    assert "digest mismatch" in run(repo).stdout  # refused on every run, until withdrawn
    done = withdraw(repo, "A")
    assert done.returncode == 0, done.stderr
    outcome = inventory.outcome(repo / "state", "A")
    assert outcome is not None and outcome["reason"] == "withdrawn on request"
    assert run(repo).returncode == 0


def test_withdraw_refuses_what_is_not_pending(tmp_path: Path) -> None:
    repo = repo_with_conflict(tmp_path)
    assert withdraw(repo, "A").returncode == 0
    assert run(repo).returncode == 0  # B migrates
    for tid, why in [("B", "B is already settled in model (migrated); there is nothing to "
                           "withdraw"),
                     ("A", "A is already settled in model (withdrawn)"),
                     ("C", "C is not pending in model (no "),
                     ("../x", "not a trigger id: '../x'")]:
        refused = withdraw(repo, tid)
        assert refused.returncode == 1, (tid, refused.stdout)
        assert len(refused.stderr.strip().splitlines()) == 1 and why in refused.stderr, (
            tid, refused.stderr)
    assert (repo / "state/triggers/migrated/B.json").is_file()


def test_withdraw_refuses_while_a_run_holds_the_lock_or_left_it_in_flight(
    tmp_path: Path
) -> None:
    repo = repo_with_conflict(tmp_path)
    lease = lock.acquire(repo / "state", owner="nightly run")
    refused = withdraw(repo, "A")
    assert refused.returncode == 1 and "locked by nightly run" in refused.stderr
    lock.release(repo / "state", lease)
    journal.Journal.begin(repo / "state", trigger="A", kind="migrate", reverts=None,
                          path=str(repo / "staging/triggers/model/A.json"), steps=["archive"])
    refused = withdraw(repo, "A")
    assert refused.returncode == 1
    assert "A was being migrated when a run died; `dasct migrate run --env model` settles " \
           "it first" in refused.stderr
    assert (repo / "staging/triggers/model/A.json").is_file()
