"""Configuration (dasct.config): defaults, which file wins, the pyproject table, and a bad
file, key or value as one line naming the file and the key: undecodable files, non-table
`tool`, per-field validators (Jira keys, windows and freezes at load, time zones, counts,
commands, names), and through the CLI (the hook lets the commit go on, scan fails)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dasct import config
from dasct.errors import ConfigError
from dasct.settings import Settings
from dasct_run import dasct
from gitrepo import GitRepo


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
        ("[check]\nstrict = 'yes'\n", "`check.strict` must be a boolean, not a string"),
        ("[defects]\npatterns = ['(unclosed']\n", "`defects.patterns[0]` is not a valid regex"),
        ("[defects]\npatterns = 'x'\n", "`defects.patterns` must be a list"),
        ("[check\n", "invalid TOML"),
        ("[check.strict]\n", "`check.strict` must be a boolean, not a table"),
        ("check = [1]\n", "`check` must be a table, not a list"),
        ("[defects]\njira_projects = ['']\n", "`defects.jira_projects[0]` must not be empty"),
        ("[defects]\njira_projects = ['proj']\n", "`defects.jira_projects[0]`: 'proj' is not"),
        ("[defects]\npatterns = ['']\n", "`defects.patterns[0]` must not be empty"),
        ("[environments.model]\nwindows = ['25:00-06:00']\n",
         "`environments.model.windows[0]`: bad time 25:00"),
        ("[environments.model]\nfreeze = ['2027-01-02..2026-12-20']\n",
         "`environments.model.freeze[0]`: '2027-01-02..2026-12-20' ends before it starts"),
        ("[environments.model]\nwindows = ['Mon-Tue-Wed 01:00-02:00']\n",
         "`environments.model.windows[0]`: 'mon-tue-wed' is not a day or a range of two"),
        ("[environments.model]\ntimezone = 'Mars/Olympus'\n",
         "`environments.model.timezone`: unknown time zone 'Mars/Olympus'"),
        ("[environments.model]\ntimezone = ''\n", "`environments.model.timezone`: unknown"),
        ("[environments.model]\nverify = ['check \"unclosed']\n",
         "`environments.model.verify[0]`: 'check \"unclosed' is not a command"),
        ("[environments.model]\nrecipients = [\"qa@example.com\\nBcc: x\"]\n",
         "`environments.model.recipients[0]`: 'qa@example.com\\nBcc: x' is not a recipient"),
        ("[environments.model]\nretention_days = -1\n",
         "`environments.model.retention_days`: must be between 0 and 36500, not -1"),
        ("[environments.model]\nretention_count = -1\n",
         "`environments.model.retention_count` must be between 0 and"),
        ("[environments.model]\nroot = \"a\\u0000b\"\n",
         "`environments.model.root` contains a NUL character"),
        ("[environments.'../prod']\n", "`environments.\"../prod\"`: '../prod' is not an env"),
        ("[environments.\"a\\nb\"]\n", "`environments.\"a\\nb\"`: 'a\\nb' is not"),
        ("[environments]\nmodel = 'x'\n", "`environments.model` must be a table, not a string"),
        ("[migrate]\nexpiry_hours = 0\n", "`migrate.expiry_hours`: must be between 1 and"),
        ("[migrate]\nexpiry_hours = 1e3\n", "`migrate.expiry_hours` must be an integer, not a"),
        ("[migrate]\nsystem = ''\n", "`migrate.system`: '' is not a system name"),
        ("[migrate]\nsigning_key_env = 'MY KEY'\n", "`migrate.signing_key_env`: 'MY KEY' is"),
        ("[migrate]\ncommands_file = ''\n", "`migrate.commands_file`: must not be empty"),
        ("[migrate]\nrequire_signature = 1979-05-27\n", "must be a boolean, not a date"),
        ('"\\n" = 1\n', 'unknown key `"\\n"`'),
    ],
)
def test_bad_config_names_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / ".dasct.toml").write_text(text)
    with pytest.raises(ConfigError) as err:
        config.load(tmp_path)
    assert message in str(err.value)
    assert str(err.value).startswith(f"{tmp_path / '.dasct.toml'}: ")
    assert len(str(err.value).splitlines()) == 1


def test_good_values_load(tmp_path: Path) -> None:
    (tmp_path / ".dasct.toml").write_text(
        "[defects]\njira_projects = ['PROJ', 'A_1']\n[migrate]\nsql_dir = ''\n"
        "[environments.model]\ntimezone = 'Europe/Berlin'\nwindows = ['Mon-Fri 23:00-05:00']\n"
        "freeze = ['2026-12-24T18:00Z..2026-12-24T22:00Z', '2026-12-20..2027-01-02']\n"
        "verify = ['./check \"a b\"']\nretention_count = 0\n")
    cfg = config.load(tmp_path)
    assert cfg.environments["model"].timezone == "Europe/Berlin"
    assert cfg.migrate.sql_dir == ""


def test_an_empty_jira_project_never_makes_a_defect_key(tmp_path: Path) -> None:
    # Before: [''] was accepted and the pattern (?:)-[0-9]+ made "-1" a defect key.
    (tmp_path / ".dasct.toml").write_text("[defects]\njira_projects = ['', 'PROJ']\n")
    with pytest.raises(ConfigError, match=re.escape("`defects.jira_projects[0]`")):
        config.load(tmp_path)
    pats = config.DefectsConfig(jira_projects=("PROJ",)).compiled()
    assert not any(p.search("see note -1") for p in pats)


def test_a_file_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    (tmp_path / ".dasct.toml").write_bytes(b"[check]\nstrict = true # caf\xe9\n")
    with pytest.raises(ConfigError) as err:
        config.load(tmp_path)
    assert str(err.value) == (f"{tmp_path / '.dasct.toml'}: not UTF-8 (byte 0xe9 at offset 27);"
                              " TOML files are UTF-8")


@pytest.mark.parametrize(("text", "message"), [
    ('tool = "x"\n', "pyproject.toml: `tool` must be a table, not a string"),
    ("[[tool]]\n", "pyproject.toml: `tool` must be a table, not a list"),
    ("[tool]\ndasct = 1\n", "pyproject.toml: `tool.dasct` must be a table, not an integer"),
    ("[tool.dasct.check]\nstrict = 1\n",
     "pyproject.toml [tool.dasct]: `check.strict` must be a boolean, not an integer"),
])
def test_bad_pyproject_names_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "pyproject.toml").write_text(text)
    with pytest.raises(ConfigError) as err:
        config.load(tmp_path)
    assert str(err.value) == f"{tmp_path}/{message}"


def test_pyproject_without_dasct_is_defaults(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.black]\nline-length = 99\n")
    assert config.load(tmp_path).source == "defaults"


@pytest.mark.parametrize("content", [b"[check]\nstrict = \xff\n", b"[environments.model]\n"
                                     b"windows = ['25:00-06:00']\n"])
def test_a_bad_config_through_the_cli(repo: GitRepo, content: bytes) -> None:
    repo.commit("initial", {"x.py": "a\n"})
    (repo.path / ".dasct.toml").write_bytes(content)
    repo.write("x.py", "b\n")
    repo.git("add", "x.py")
    hook = dasct(repo.path, "check", "--staged")
    assert hook.code == 0, hook  # the commit goes on
    assert hook.err.count("\n") == 1 and ".dasct.toml: " in hook.err, hook
    assert "internal error" not in hook.err
    scan = dasct(repo.path, "scan")
    assert scan.code == 1 and scan.err == hook.err, scan


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


@pytest.mark.parametrize(("text", "key"), [
    ('[security]\npass_env = ["A B"]\n', "security.pass_env[0]"),
    ('[security]\nsecret_env = ["X;rm"]\n', "security.secret_env[0]"),
    ('[audit]\ncheckpoint_key_env = "no such-name"\n', "audit.checkpoint_key_env"),
])
def test_variable_names_of_the_security_and_audit_sections(
    tmp_path: Path, text: str, key: str
) -> None:
    (tmp_path / ".dasct.toml").write_text(text)
    with pytest.raises(ConfigError, match=re.escape(f"`{key}`")):
        config.load(tmp_path)
