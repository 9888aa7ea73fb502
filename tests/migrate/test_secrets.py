"""Secrets and the commands a migration runs, through the real CLI in a real repository.

A command never inherits dasct's secrets; what it prints is redacted at every sink (no
file under the repository, no output); a database URL's password is never shown; a
command's processes do not outlive it, nor a rollback.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from contextlib import suppress
from pathlib import Path

from engine_kit import AT, cli, make_env, quiet, seed, stage

from dasct.migrate import inventory
from dasct.migrate import trigger as trig

KEY = "SuperSecretKey123456"
PASSWORD = "hunter2pass"
URL = f"postgresql://bob:{PASSWORD}@127.0.0.1:9/app"
TOKEN = "Sh0wMeT0kenValue"


def sh(name: str, script: str, *, kind: str = "health", timeout: float = 30.0
       ) -> trig.StepCommand:
    return trig.StepCommand(name, ("sh", "-c", script), kind, timeout)  # type: ignore[arg-type]


def repo_with(tmp: Path, *commands: trig.StepCommand, extra: str = "") -> Path:
    """A git repository with one environment (database URL with a password) and one
    staged trigger changing a.txt and running commands."""
    subprocess.run(["git", "init", "-q", str(tmp)], check=True)
    env = make_env(tmp, database=URL, extra=extra)
    (env.root / "a.txt").write_text("a1\n")
    stage(env, "E1", files=[("modify", "a.txt", b"a2\n", None)], commands=commands)
    return tmp


def leaks(root: Path, secrets: tuple[str, ...]) -> list[str]:
    """file: secret for every file under root holding one of secrets (but the config that
    holds the database URL)."""
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name != ".dasct.toml"):
        data = path.read_bytes()
        found += [f"{path.relative_to(root)}: {s}" for s in secrets if s.encode() in data]
    return found


def test_a_secret_a_failing_command_prints_lands_nowhere(tmp_path: Path) -> None:
    # The reproduction, plus secrets the child knows by other ways than its
    # environment (a file outside the repository): the database password and the key.
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "leak.txt").write_text(f"key {KEY} via {URL} and bare {PASSWORD}\n")
    repo = repo_with(
        tmp_path / "repo",
        sh("health", "echo key is $DASCT_TRIGGER_KEY >&2; "
                     f"cat {outside / 'leak.txt'} >&2; exit 1"))
    env = {"DASCT_TRIGGER_KEY": KEY}
    dry = cli(repo, "migrate", "run", "--env", "model", "--dry-run", "--at", AT, env=env)
    run = cli(repo, "migrate", "run", "--env", "model", "--at", AT, env=env)
    status = cli(repo, "migrate", "status", "--env", "model", env=env)
    assert run.returncode == 1, run.stderr
    assert "rolled back E1" in run.stdout
    assert (repo / "target/a.txt").read_text() == "a1\n"
    outputs = {"dry-run": dry.stdout + dry.stderr, "run": run.stdout + run.stderr,
               "status": status.stdout + status.stderr}
    assert [(name, s) for name, out in outputs.items() for s in (KEY, PASSWORD) if s in out] \
        == []
    assert leaks(repo, (KEY, PASSWORD)) == []
    # Redacted, not dropped: the reason still says what the command printed.
    outcome = inventory.outcome(repo / "state", "E1")
    assert outcome is not None
    assert outcome["reason"] == "command health exited 1: key [redacted] via " \
        "postgresql://bob:***@127.0.0.1:9/app and bare [redacted]"
    assert "postgresql://bob:***@127.0.0.1:9/app" in dry.stdout
    assert "postgresql://bob:***@127.0.0.1:9/app" in status.stdout


def test_a_command_inherits_no_secret_variable(tmp_path: Path) -> None:
    dump = tmp_path / "env.txt"
    repo = repo_with(
        tmp_path / "repo", sh("health", f"env > {dump}"),
        extra='[migrate]\nsigning_key_env = "MY_HMAC"\n'
              '[security]\nsecret_env = ["DEPLOY_*"]\npass_env = ["HEALTH_TOKEN", "MY_HMAC"]\n')
    secret = {"DASCT_TRIGGER_KEY": "default-key-123456", "MY_HMAC": "configured-key-123456",
              "PGPASSWORD": "pg-password-123456", "JIRA_API_TOKEN": "jira-token-123456",
              "DEPLOY_CERT": "deploy-cert-123456"}
    run = cli(repo, "migrate", "run", "--env", "model", "--at", AT,
              env={**secret, "HEALTH_TOKEN": TOKEN, "PLAIN_SETTING": "visible"})
    assert run.returncode == 0, run.stdout + run.stderr
    seen = dict(line.split("=", 1) for line in dump.read_text().splitlines() if "=" in line)
    assert sorted(set(secret) & set(seen)) == []
    assert not [v for v in secret.values() if v in dump.read_text()]
    assert seen["HEALTH_TOKEN"] == TOKEN and seen["PLAIN_SETTING"] == "visible"
    assert seen["DASCT_ENVIRONMENT"] == "model"
    assert seen["DASCT_TARGET_ROOT"] == str(repo / "target")
    assert "PATH" in seen


def test_a_passed_variable_is_still_redacted(tmp_path: Path) -> None:
    repo = repo_with(tmp_path / "repo", sh("health", "echo token $HEALTH_TOKEN >&2; exit 3"),
                     extra='[security]\npass_env = ["HEALTH_TOKEN"]\n')
    run = cli(repo, "migrate", "run", "--env", "model", "--at", AT, env={"HEALTH_TOKEN": TOKEN})
    assert run.returncode == 1 and "rolled back E1" in run.stdout
    assert "command health exited 3: token [redacted]" in run.stdout
    assert TOKEN not in run.stdout + run.stderr
    assert leaks(repo, (TOKEN,)) == []


# ----------------------------------------------------------------------- process groups


def test_an_orphan_of_a_timed_out_command_dies_with_it(tmp_path: Path) -> None:
    env = seed(tmp_path)
    stage(env, "E1", files=[("modify", "app/main.py", b"print('v2')\n", None)],
          commands=[sh("health", "(sleep 2; echo LATE > app/main.py) & sleep 60", timeout=1)])
    started = time.monotonic()
    result = quiet(env)
    assert result.rolled_back == ["E1"]
    assert time.monotonic() - started < 20  # the run did not wait for the sleep 60
    time.sleep(3)  # past the orphan's delay
    assert (env.root / "app/main.py").read_text() == "print('v1')\n"


def test_a_passing_check_leaves_nothing_running(tmp_path: Path) -> None:
    env = seed(tmp_path)
    stage(env, "E1", files=[("modify", "app/main.py", b"print('v2')\n", None)],
          commands=[sh("health", "(sleep 1; echo LATE > app/main.py) & exit 0")])
    assert quiet(env).migrated == ["E1"]
    time.sleep(2)
    assert (env.root / "app/main.py").read_text() == "print('v2')\n"


def _daemon(log: Path, pids: Path) -> trig.StepCommand:
    # A restart command that leaves a daemon behind, as restarting a service does; the
    # daemon writes the version it was started on every 0.1 s.
    loop = f'echo $$ >> {pids}; while :; do echo "$v" >> {log}; sleep 0.1; done'
    return sh("restart", f"v=$(cat app/main.py); v=\"$v\" sh -c '{loop}' >/dev/null 2>&1 &",
              kind="restart")


def _end(pids: Path) -> None:
    # The test's own daemons, by the ids they wrote.
    for pid in pids.read_text().split() if pids.exists() else []:
        with suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)


def test_a_rollback_ends_what_the_trigger_started(tmp_path: Path) -> None:
    log, pids = tmp_path / "daemon.log", tmp_path / "daemon.pids"
    env = seed(tmp_path)
    stage(env, "E1", files=[("modify", "app/main.py", b"print('v2')\n", None)],
          commands=[_daemon(log, pids), sh("health", "sleep 0.5; exit 1")])
    try:
        assert quiet(env).rolled_back == ["E1"]
        assert (env.root / "app/main.py").read_text() == "print('v1')\n"
        time.sleep(0.5)
        seen = log.read_text().splitlines()
        assert "print('v2')" in seen  # the new version's daemon ran during the health check
        time.sleep(1)
        # Since the rollback only the restored version runs (its restart commands ran again).
        assert set(log.read_text().splitlines()[len(seen):]) == {"print('v1')"}
    finally:
        _end(pids)


def test_a_migrated_restart_keeps_its_daemon(tmp_path: Path) -> None:
    log, pids = tmp_path / "daemon.log", tmp_path / "daemon.pids"
    env = seed(tmp_path)
    stage(env, "E1", files=[("modify", "app/main.py", b"print('v2')\n", None)],
          commands=[_daemon(log, pids)])
    try:
        assert quiet(env).migrated == ["E1"]
        time.sleep(0.3)
        before = len(log.read_text().splitlines())
        time.sleep(0.5)
        assert len(log.read_text().splitlines()) > before  # still running
    finally:
        _end(pids)


def test_an_escalation_records_no_secret(tmp_path: Path) -> None:
    # The health check prints a secret it was passed, and corrupts the archive on its way
    # out so that the restore fails: the reason lands in needs-attention.json too.
    repo = tmp_path / "repo"
    archived = repo / "state" / "archives" / "E1" / "files"
    repo = repo_with(
        repo, sh("health", f"for f in {archived}/*; do echo corrupt > $f; done; "
                           "echo token $HEALTH_TOKEN >&2; exit 1"),
        extra='[security]\npass_env = ["HEALTH_TOKEN"]\n')
    env = {"HEALTH_TOKEN": TOKEN, "DASCT_TRIGGER_KEY": KEY}
    run = cli(repo, "migrate", "run", "--env", "model", "--at", AT, env=env)
    status = cli(repo, "migrate", "status", "--env", "model", env=env)
    assert run.returncode == 1 and "ESCALATED E1" in run.stdout
    marker = (repo / "state" / "needs-attention.json").read_text()
    assert "command health exited 1: token [redacted]" in marker
    assert leaks(repo, (TOKEN, KEY, PASSWORD)) == []
    shown = run.stdout + run.stderr + status.stdout + status.stderr
    assert [s for s in (TOKEN, KEY, PASSWORD) if s in shown] == []
