from __future__ import annotations

from pathlib import Path

import pytest

from dasct import config
from dasct.errors import ConfigError
from dasct.settings import Settings


def test_defaults_when_nothing_configured(tmp_path: Path) -> None:
    cfg = config.load(tmp_path)
    assert cfg.source == "defaults"
    assert cfg.check.strict is False
    assert "*.lock" in cfg.paths.exclude


def test_dasct_toml_wins_over_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.dasct.check]\nstrict = false\n")
    (tmp_path / ".dasct.toml").write_text("[check]\nstrict = true\n")
    cfg = config.load(tmp_path)
    assert cfg.check.strict is True
    assert cfg.source.endswith(".dasct.toml")


def test_pyproject_table(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.dasct.defects]\njira_projects = ["PROJ"]\n[tool.dasct.paths]\nexclude = ["*.md"]\n'
    )
    cfg = config.load(tmp_path)
    assert cfg.defects.jira_projects == ("PROJ",)
    assert cfg.paths.exclude == ("*.md",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[check]\nstrikt = true\n", "unknown key `check.strikt`"),
        ("[nope]\n", "unknown key `nope`"),
        ("[check]\nstrict = 'yes'\n", "`check.strict` must be bool"),
        ("[defects]\npatterns = ['(unclosed']\n", "`defects.patterns[0]` is not a valid regex"),
        ("[defects]\npatterns = 'x'\n", "`defects.patterns` must be a list"),
        ("[check\n", "invalid TOML"),
    ],
)
def test_bad_config_names_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / ".dasct.toml").write_text(text)
    with pytest.raises(ConfigError) as err:
        config.load(tmp_path)
    assert message in str(err.value)
    assert ".dasct.toml" in str(err.value)


@pytest.mark.parametrize(
    ("path", "excluded"),
    [
        ("CHANGELOG.md", True),
        ("sub/CHANGELOG.rst", True),
        ("changelog/123.bugfix", True),
        ("src/changelog/x.py", False),
        ("poetry.lock", True),
        ("web/app.min.js", True),
        ("src/app.py", False),
    ],
)
def test_default_excludes(path: str, excluded: bool) -> None:
    cfg = config.Config()
    s = Settings(exclude=cfg.paths.exclude, strict=False, patterns=(), source="defaults")
    assert s.excluded(path) is excluded
