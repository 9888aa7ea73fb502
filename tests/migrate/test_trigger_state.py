"""dasct's own state and the repository's plumbing are never packaged into a trigger.

The default home `.dasct/` is ignored by construction (a `.gitignore` holding `*`, as
virtual environments do), a range that contains dasct's state directories is refused
with one line naming the path, and `[migrate] exclude` keeps dasct's config and git's
plumbing out of baselines and ranges.
"""

from __future__ import annotations

import json
import tempfile
from functools import partial
from pathlib import Path

import pytest
from engine_kit import cli, quiet
from hypothesis import given, settings
from hypothesis import strategies as st

from dasct import config
from dasct.config import MigrateConfig
from dasct.migrate.create import create
from dasct.migrate.environment import environment
from dasct.migrate.trigger import TriggerError
from gitrepo import GitRepo

FIRST = {"app/main.py": "print('v1')\n", "app/util.py": "X = 1\n"}


def doc_of(made_stdout: str) -> dict[str, object]:
    data: dict[str, object] = json.loads(Path(made_stdout.strip()).read_text())
    return data


def paths_of(doc: dict[str, object]) -> list[str]:
    steps = doc["steps"]
    assert isinstance(steps, dict)
    return sorted(f["path"] for f in steps["files"])


def test_git_add_all_after_a_migration_commits_no_state(repo: GitRepo) -> None:
    repo.commit("first version", FIRST)
    made = cli(repo.path, "trigger", "create", "--baseline", "HEAD", "--env", "model")
    assert made.returncode == 0, made.stderr
    run = cli(repo.path, "migrate", "run", "--env", "model", "--now")
    assert run.returncode == 0, run.stdout + run.stderr
    assert (repo.path / ".dasct/.gitignore").read_text().splitlines()[-1] == "*"
    base = repo.head()
    repo.write("app/main.py", "print('v2')\n")
    repo.git("add", "-A")
    staged = repo.git("diff", "--cached", "--name-only").split()
    assert staged == ["app/main.py"]  # no audit log, database, outbox or staging
    assert repo.git("status", "--porcelain", "--ignored=no").split() == ["M", "app/main.py"]
    repo.git("commit", "-q", "-m", "PROJ-1: v2")
    made = cli(repo.path, "trigger", "create", "--range", f"{base}..HEAD", "--env", "model",
               "--id", "PROJ-1")
    assert made.returncode == 0, made.stderr
    assert paths_of(doc_of(made.stdout)) == ["app/main.py"]
    run = cli(repo.path, "migrate", "run", "--env", "model", "--now")
    assert run.returncode == 0 and "migrated PROJ-1" in run.stdout, run.stdout + run.stderr


def test_a_run_ignores_the_home_before_it_writes_into_it(repo: GitRepo) -> None:
    repo.commit("first version", FIRST)
    assert quiet(environment(config.Config(), "model", repo.path)).exit_code == 0
    assert (repo.path / ".dasct/env/model/state").is_dir()
    assert repo.git("status", "--porcelain").strip() == ""
    # Configured directories outside the home are the user's to place: nothing is written.
    other = repo.path.parent / "elsewhere"
    (repo.path / ".dasct").rename(other)
    paths = {"state_dir": "ops/state", "root": "t", "staging": "ops/staging",
             "database": "ops/db.sqlite"}
    cfg = config.parse({"environments": {"model": paths}}, "x")
    assert quiet(environment(cfg, "model", repo.path)).exit_code == 0
    assert not (repo.path / ".dasct").exists() and (repo.path / "ops/state").is_dir()


def test_a_users_own_gitignore_in_the_home_is_kept(repo: GitRepo) -> None:
    repo.commit("first version", FIRST)
    repo.write(".dasct/.gitignore", "env/\nstaging/\n")
    made = cli(repo.path, "trigger", "create", "--baseline", "HEAD", "--env", "model")
    assert made.returncode == 0, made.stderr
    assert (repo.path / ".dasct/.gitignore").read_text() == "env/\nstaging/\n"


def test_a_range_that_contains_dasct_state_is_refused(repo: GitRepo) -> None:
    # State committed before the home was ignored (or forced in with `git add -f`).
    base = repo.commit("first version", FIRST)
    repo.write(".dasct/env/model/state/audit.jsonl", "{}\n")
    repo.write("app/main.py", "print('v2')\n")
    repo.git("add", "-f", ".dasct", "app")
    repo.git("commit", "-q", "-m", "v2 and, by mistake, the audit log")
    made = cli(repo.path, "trigger", "create", "--range", f"{base}..HEAD", "--env", "model")
    assert made.returncode == 1
    lines = made.stderr.strip().splitlines()
    assert len(lines) == 1, made.stderr
    assert "'.dasct/env/model/state/audit.jsonl' is in dasct's state directory .dasct/" in lines[0]
    assert not (repo.path / ".dasct/staging/triggers").exists()
    baseline = cli(repo.path, "trigger", "create", "--baseline", "HEAD", "--env", "model")
    assert baseline.returncode == 1 and ".dasct/env/model/state/audit.jsonl" in baseline.stderr


def test_configured_state_directories_inside_the_repo_are_refused(repo: GitRepo) -> None:
    repo.write(".dasct.toml", '[environments.model]\nroot = "../target"\n'
               'state_dir = "ops/state"\nstaging = "ops/staging"\n')
    base = repo.commit("first version", FIRST)
    repo.commit("the lock, by mistake", {"ops/state/lock": "{}\n"})
    made = cli(repo.path, "trigger", "create", "--range", f"{base}..HEAD", "--env", "model")
    assert made.returncode == 1
    assert "'ops/state/lock' is in dasct's state directory ops/state/" in made.stderr


def test_baseline_leaves_out_dasct_config_and_repository_plumbing(repo: GitRepo) -> None:
    repo.commit("first version", {
        **FIRST, ".dasct.toml": "[migrate]\nsystem = \"app\"\n", ".gitignore": "*.pyc\n",
        ".gitattributes": "* text=auto\n", ".github/workflows/ci.yml": "on: push\n",
        ".pre-commit-config.yaml": "repos: []\n", "app/.gitignore": "build/\n",
    })
    made = cli(repo.path, "trigger", "create", "--baseline", "HEAD", "--env", "model")
    assert made.returncode == 0, made.stderr
    assert paths_of(doc_of(made.stdout)) == ["app/main.py", "app/util.py"]


def test_exclude_is_configurable_and_a_rename_out_of_it_is_an_add(repo: GitRepo) -> None:
    repo.write(".dasct.toml", '[migrate]\nexclude = ["docs/*"]\n')
    base = repo.commit("first version", {**FIRST, "docs/tool.py": "T = 1\n",
                                         ".gitignore": "*.pyc\n"})
    made = cli(repo.path, "trigger", "create", "--baseline", "HEAD", "--env", "model")
    assert made.returncode == 0, made.stderr
    # The configured list replaces the defaults: .gitignore and .dasct.toml are packaged.
    assert paths_of(doc_of(made.stdout)) == [".dasct.toml", ".gitignore", "app/main.py",
                                              "app/util.py"]
    repo.git("mv", "docs/tool.py", "app/tool.py")
    repo.commit("move the tool into the app")
    made = cli(repo.path, "trigger", "create", "--range", f"{base}..HEAD", "--env", "model")
    assert made.returncode == 0, made.stderr
    steps = doc_of(made.stdout)["steps"]
    assert isinstance(steps, dict)
    assert [(f["op"], f["path"], f["old_path"]) for f in steps["files"]] == [
        ("add", "app/tool.py", None)]


def test_a_range_onto_an_empty_target_says_a_baseline_comes_first(repo: GitRepo) -> None:
    base = repo.commit("first version", FIRST)
    repo.commit("PROJ-2: v2", {"app/main.py": "print('v2')\n"})
    made = cli(repo.path, "trigger", "create", "--range", f"{base}..HEAD", "--env", "model")
    assert made.returncode == 0, made.stderr
    run = cli(repo.path, "migrate", "run", "--env", "model", "--now")
    assert run.returncode == 1
    assert ("'app/main.py' is missing on the target; a first deployment needs "
            "`dasct trigger create --baseline REV`") in run.stdout, run.stdout


_SEGMENT = st.sampled_from([".dasct", ".dasctx", "ops", "state", "app", ".gitignore", "x.py"])


@settings(max_examples=40, deadline=None)
@given(parts=st.lists(_SEGMENT, min_size=1, max_size=4))
def test_a_change_is_refused_exactly_when_it_lies_in_a_state_directory(
    parts: list[str]
) -> None:
    """Over paths made of look-alike names: refused iff under `.dasct/` or a configured
    state directory (`ops/state` here); excluded names are left out, never refused."""
    path = "/".join(parts)
    state = (".dasct", "ops/state")
    inside = any(path == d or path.startswith(d + "/") for d in state)
    excluded = parts[-1] == ".gitignore"
    with tempfile.TemporaryDirectory() as tmp:
        work = GitRepo(Path(tmp) / "repo")
        base = work.commit("first", {"app.py": "A = 1\n"})
        work.write(path, "content\n")
        work.git("add", "-f", path)
        work.git("commit", "-q", "-m", "add one file")
        build = partial(create, repo_root=work.path, rev_range=f"{base}..HEAD",
                        environment="model", staging=Path(tmp) / "staging",
                        migrate=MigrateConfig(), defect_patterns=(), state_paths=["ops/state"])
        if inside and not excluded:
            with pytest.raises(TriggerError, match="is in dasct's state directory"):
                build()
        else:
            made = build()
            assert [f.path for f in made.files] == ([] if excluded else [path])
