"""Ordering in one run: a trigger whose pre-images are another's post-images runs after it.

A baseline and the ranges built on it, staged together, run in one run in their order
(declared with --depends-on or implied by the pre-images) instead of being held as
conflicting; a trigger whose pre-images are not what the one before leaves is held
alone, with the reason; a trigger that needs one refused in this run is held, not tried.
"""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from engine_kit import AT, NOW, cli, make_env, quiet
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dasct.migrate import trigger as trig
from dasct.migrate import trigger_write as trigw
from gitrepo import GitRepo

PLAN = "%project=app\n\nusers 2026-11-01T00:00:00Z a <a@b>\n"
FIRST = {
    "app/main.py": "print('v1')\n",
    "app/util.py": "X = 1\n",
    "db/sqitch.plan": PLAN,
    "db/deploy/users.sql": "CREATE TABLE users (id INTEGER PRIMARY KEY);\n",
    "db/revert/users.sql": "DROP TABLE users;\n",
}
SECOND = {
    "app/main.py": "print('v2')\n",
    "db/sqitch.plan": PLAN + "email 2026-11-02T00:00:00Z a <a@b>\n",
    "db/deploy/email.sql": "ALTER TABLE users ADD COLUMN email TEXT;\n",
    "db/revert/email.sql": "ALTER TABLE users DROP COLUMN email;\n",
}
STAGED_AT = trig.format_time(NOW - timedelta(hours=1))
ROOT = ".dasct/env/model/root"


def create(repo: GitRepo, *args: str) -> None:
    made = cli(repo.path, "trigger", "create", "--env", "model", "--at", STAGED_AT, *args)
    assert made.returncode == 0, made.stderr


def run(repo: GitRepo) -> tuple[int, str]:
    proc = cli(repo.path, "migrate", "run", "--env", "model", "--now", "--at", AT)
    return proc.returncode, proc.stdout + proc.stderr


def history(repo: GitRepo) -> None:
    repo.commit("first version", FIRST)
    repo.git("tag", "v1")
    repo.commit("PROJ-2: v2 with an email column", SECOND)
    repo.git("tag", "v2")
    repo.commit("PROJ-3: v3", {"app/main.py": "print('v3')\n", "app/new.py": "N = 3\n"})
    repo.git("tag", "v3")


@pytest.mark.parametrize("declared", [False, True], ids=["implied", "declared"])
def test_a_baseline_and_ranges_staged_in_one_run_all_migrate_in_order(
    repo: GitRepo, declared: bool
) -> None:
    history(repo)
    # Ids that sort the wrong way round: the run must not go by name.
    create(repo, "--baseline", "v1", "--id", "z-base")
    create(repo, "--range", "v1..v2", "--id", "m-two", *(["--depends-on", "z-base"] * declared))
    create(repo, "--range", "v2..v3", "--id", "a-three", *(["--depends-on", "m-two"] * declared))
    code, out = run(repo)
    assert code == 0, out
    assert "held" not in out.replace("held 0", "")
    migrated = [line.split()[1] for line in out.splitlines() if line.startswith("migrated ")]
    assert migrated == ["z-base", "m-two", "a-three"]
    root = repo.path / ROOT
    assert (root / "app/main.py").read_text() == "print('v3')\n"
    assert (root / "app/new.py").exists() and (root / "app/util.py").exists()
    audit = cli(repo.path, "audit", "verify", "--env", "model")
    assert audit.returncode == 0, audit.stdout + audit.stderr


def test_a_declared_dependency_whose_pre_images_differ_is_held_alone(repo: GitRepo) -> None:
    history(repo)
    create(repo, "--baseline", "v1", "--id", "base")
    create(repo, "--range", "v2..v3", "--id", "three", "--depends-on", "base")
    code, out = run(repo)
    assert code == 1, out
    assert "migrated base" in out and "migrated three" not in out
    assert ("held: three: conflicts with base (three's pre-image of app/main.py is not what "
            "base leaves there)") in out, out
    assert (repo.path / ROOT / "app/main.py").read_text() == "print('v1')\n"


def test_a_trigger_after_one_refused_in_this_run_is_held_not_tried(repo: GitRepo) -> None:
    history(repo)
    create(repo, "--baseline", "v1", "--id", "base")
    create(repo, "--range", "v1..v2", "--id", "two")
    root = repo.path / ROOT
    root.mkdir(parents=True)
    (root / "app").mkdir()
    (root / "app/util.py").write_text("X = 1\n")  # the baseline is refused: not empty
    code, out = run(repo)
    assert code == 1, out
    assert "already exist on the target" in out
    assert "held: two: depends on base, which was not migrated in this run" in out, out
    assert "missing on the target" not in out  # it was not tried
    status = cli(repo.path, "migrate", "status", "--env", "model")
    assert "pending triggers: base, two" in status.stdout


def test_triggers_touching_one_file_without_an_order_are_still_held(repo: GitRepo) -> None:
    history(repo)
    create(repo, "--baseline", "v1", "--id", "base")
    create(repo, "--baseline", "v2", "--id", "other")  # both add app/main.py: no order
    code, out = run(repo)
    assert code == 1
    assert "held: base: conflicts with other (same file app/main.py" in out, out


# --------------------------------------------------------------------------- property

PATHS = ("a.txt", "d/b.txt", "d/e/c.txt")
_VERSION = st.fixed_dictionaries({p: st.sampled_from([None, b"1", b"2"]) for p in PATHS})


def _changes(staging: Path, old: dict[str, bytes | None], new: dict[str, bytes | None]
             ) -> list[trig.FileChange]:
    out = []
    for p in PATHS:
        before, after = old[p], new[p]
        if before == after:
            continue
        pre = trig.sha256_hex(before) if before is not None else None
        post = trigw.write_payload(staging, after) if after is not None else None
        op = "add" if before is None else "delete" if after is None else "modify"
        out.append(trig.FileChange(op, p, None, pre, post, 0o644))  # type: ignore[arg-type]
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(versions=st.lists(_VERSION, min_size=2, max_size=4), data=st.data())
def test_a_staged_chain_runs_in_an_order_that_applies(
    versions: list[dict[str, bytes | None]], data: st.DataObject
) -> None:
    """Any history staged at once as a baseline and consecutive ranges, under any ids and
    with any subset of the dependencies declared: nothing the plan runs is refused or
    rolled back, and when nothing is held the target ends on the last version."""
    ids = data.draw(st.lists(st.from_regex(r"[a-z]{6}", fullmatch=True), unique=True,
                             min_size=len(versions), max_size=len(versions)))
    declare = data.draw(st.lists(st.booleans(), min_size=len(versions),
                                 max_size=len(versions)))
    empty: dict[str, bytes | None] = dict.fromkeys(PATHS)
    with tempfile.TemporaryDirectory() as tmp:
        env = make_env(Path(tmp))
        for i, version in enumerate(versions):
            doc = trigw.document(
                id=ids[i], system="app", environment="model", not_before=NOW - timedelta(1),
                expires=NOW + timedelta(1), defects=[], commits=[], sql=[],
                files=_changes(env.staging, versions[i - 1] if i else empty, version),
                commands=[], depends_on=[ids[i - 1]] if i and declare[i] else [])
            trigw.write(env.staging, doc, key=None)
        result = quiet(env, ignore_window=True)
        assert result.stats.refused == 0 and result.stats.rolled_back == 0, result
        if not result.held:
            assert sorted(result.migrated) == sorted(ids)
            for p in PATHS:
                on_target = env.root / p
                want = versions[-1][p]
                assert (on_target.read_bytes() if on_target.exists() else None) == want
        if all(declare[1:]):  # every dependency declared: nothing is ambiguous
            assert not result.held, result.held
