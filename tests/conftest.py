from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitrepo import GitRepo

_SCRUB = ("GIT_DIR", "GIT_INDEX_FILE", "GIT_WORK_TREE", "GIT_COMMON_DIR", "GIT_OBJECT_DIRECTORY",
          "DASCT_SKIP")


@pytest.fixture(autouse=True)
def _isolated_git(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Pin git's identity and config, and fail a test that writes to $HOME."""
    home = tmp_path_factory.mktemp("home")
    template = tmp_path_factory.mktemp("template")
    for var in _SCRUB:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_TEMPLATE_DIR", str(template))
    for who in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{who}_NAME", "Dev Eloper")
        monkeypatch.setenv(f"GIT_{who}_EMAIL", "dev@example.com")
    yield
    written = [p for p in home.rglob("*") if p.is_file()]
    assert not written, f"test wrote to $HOME: {written[:5]}"


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    return GitRepo(tmp_path / "repo")


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("PYTHONHASHSEED", "0")
