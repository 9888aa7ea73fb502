"""Resolving an environment touches no file; a run creates what it writes into."""

from __future__ import annotations

from pathlib import Path

import pytest
from engine_kit import quiet

from dasct import config
from dasct.migrate.environment import EngineError, environment


def test_defaults_resolve_under_the_repo_without_touching_the_disk(tmp_path: Path) -> None:
    env = environment(config.Config(), "model", tmp_path)
    base = tmp_path / ".dasct" / "env" / "model"
    assert env.root == base / "root"
    assert env.database == f"sqlite:///{base / 'db.sqlite'}"
    assert env.state_dir == base / "state"
    assert env.staging == tmp_path / ".dasct" / "staging"
    assert list(tmp_path.iterdir()) == []


def test_configured_paths_are_relative_to_the_repo_and_normalized(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / ".dasct.toml").write_text(
        '[environments.model]\nroot = "../target"\ndatabase = "sqlite:///../model.sqlite"\n'
        'state_dir = "/srv/state"\nstaging = "../staging"\n')
    env = environment(config.load(repo), "model", repo)
    assert env.root == tmp_path / "target"
    assert env.database == f"sqlite:///{tmp_path / 'model.sqlite'}"
    assert env.state_dir == Path("/srv/state")
    assert env.staging == tmp_path / "staging"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo"]


def test_unknown_environment_names_the_config_and_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match=r"defaults: unknown environment 'qa' "
                                          r"\(configured: model, production\)"):
        environment(config.Config(), "qa", tmp_path)


def test_a_run_creates_the_default_root_and_state(tmp_path: Path) -> None:
    env = environment(config.Config(), "model", tmp_path)
    result = quiet(env)
    assert result.exit_code == 0
    assert env.root.is_dir() and env.state_dir.is_dir()
