"""`dasct migrate` through the command line, in a real git repository."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from engine_kit import AT, cli, make_env, stage

from dasct.migrate import lock


def repo_env(tmp: Path) -> Path:
    subprocess.run(["git", "init", "-q", str(tmp)], check=True)
    env = make_env(tmp)
    (env.root / "a.txt").write_text("a1\n")
    stage(env, "E1", files=[("modify", "a.txt", b"a2\n", None)])
    return tmp


def test_dry_run_then_run_then_status(tmp_path: Path) -> None:
    repo = repo_env(tmp_path)
    dry = cli(repo, "migrate", "run", "--env", "model", "--dry-run", "--at", AT)
    assert dry.returncode == 0, dry.stderr
    assert "file modify a.txt" in dry.stdout and "nothing changes" in dry.stdout
    assert (repo / "target/a.txt").read_text() == "a1\n"
    done = cli(repo, "migrate", "run", "--env", "model", "--now", "--at", AT)
    assert done.returncode == 0, done.stderr
    assert "migrated E1" in done.stdout and "success 100%" in done.stdout
    status = cli(repo, "migrate", "status", "--env", "model")
    assert "E1" in status.stdout and "deployed" in status.stdout and "WP" in status.stdout
    revert = cli(repo, "migrate", "revert", "E1", "--env", "model")
    assert revert.returncode == 0, revert.stderr
    assert (repo / "target/a.txt").read_text() == "a1\n"


def test_unknown_environment_is_a_clear_error(tmp_path: Path) -> None:
    repo = repo_env(tmp_path)
    proc = cli(repo, "migrate", "run", "--env", "prod")
    assert proc.returncode == 1
    assert "unknown environment 'prod' (configured: model)" in proc.stderr


def test_unlock_refuses_a_live_holder_and_breaks_a_dead_one(tmp_path: Path) -> None:
    repo = repo_env(tmp_path)
    lease = lock.acquire(repo / "state", owner="me")
    proc = cli(repo, "migrate", "unlock", "--env", "model", "--force")
    assert proc.returncode == 1 and "refusing to break" in proc.stderr
    live = cli(repo, "migrate", "unlock", "--env", "model")
    assert live.returncode == 1 and "it is alive" in live.stdout
    run = cli(repo, "migrate", "run", "--env", "model", "--now")
    assert run.returncode == 1 and "locked by me" in run.stderr
    lock.release(repo / "state", lease)
    code = ("from pathlib import Path; from dasct.migrate import lock; "
            "lock.acquire(Path('state'), owner='ghost')")
    subprocess.run([sys.executable, "-c", code], cwd=repo,
                   env={"PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")},
                   check=True)
    show = cli(repo, "migrate", "unlock", "--env", "model")
    assert show.returncode == 1  # still locked: a script must not take it for unlocked
    assert "stale" in show.stdout and "--force" in show.stdout
    proc = cli(repo, "migrate", "unlock", "--env", "model", "--force")
    assert proc.returncode == 0 and "broke the lock of ghost" in proc.stdout
    assert lock.read(repo / "state") is None
    free = cli(repo, "migrate", "unlock", "--env", "model")
    assert free.returncode == 0 and "model is not locked" in free.stdout


def test_run_exit_code_goes_red_when_something_needs_a_person(tmp_path: Path) -> None:
    repo = repo_env(tmp_path)
    (repo / "target/a.txt").write_text("changed by hand\n")
    refused = cli(repo, "migrate", "run", "--env", "model", "--now", "--at", AT)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "changed on the target by hand" in refused.stdout
    env = make_env(repo)
    stage(env, "E2", files=[("add", "b.txt", b"b\n", None)], depends_on=["ABSENT"])
    (repo / "target/a.txt").write_text("a1\n")
    held = cli(repo, "migrate", "run", "--env", "model", "--now", "--at", AT)
    assert held.returncode == 1, held.stdout + held.stderr
    assert "migrated E1" in held.stdout and "held: E2: depends on ABSENT" in held.stdout
    (repo / "staging/triggers/model/E2.json").unlink()
    nothing = cli(repo, "migrate", "run", "--env", "model", "--now", "--at", AT)
    assert nothing.returncode == 0, nothing.stdout + nothing.stderr
    assert "nothing to migrate" in nothing.stdout


def test_status_columns_line_up(tmp_path: Path) -> None:
    repo = repo_env(tmp_path)
    long_id = "PROJ-1234-an-enhancement-whose-id-is-longer-than-thirty-characters"
    env = make_env(repo)
    stage(env, long_id, files=[("add", "deeper/and/longer/path.txt", b"x\n", None)])
    done = cli(repo, "migrate", "run", "--env", "model", "--now", "--at", AT)
    assert done.returncode == 0, done.stdout + done.stderr
    out = cli(repo, "migrate", "status", "--env", "model").stdout.splitlines()

    def table(title: str) -> list[str]:
        start = next(i for i, line in enumerate(out) if line.startswith(title))
        rows = []
        for line in out[start + 1:]:
            if not line.startswith("  "):
                break
            rows.append(line)
        return rows

    deployments = table("deployments")
    assert len(deployments) == 3  # the header and E1 and the long one
    for word in ("STATUS", "WARRANTY", "DEPLOYED", "ITEMS"):
        col = deployments[0].index(word)
        assert all(row[col - 2:col] == "  " and row[col] != " " for row in deployments), (
            word, deployments)
    inv = table("inventory")
    assert len(inv) == 3
    for word in ("ENHANCEMENT", "SHA256"):
        col = inv[0].index(word)
        assert all(row[col - 2:col] == "  " and row[col] != " " for row in inv), (word, inv)
