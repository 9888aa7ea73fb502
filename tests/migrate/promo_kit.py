"""Helpers for the promotion and warranty tests: a real repository with model and
production, an enhancement built from a real git range, people with their own identity."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from dasct import config
from dasct.commands.trigger import create
from dasct.migrate import engine
from dasct.migrate.environment import Environment, environment
from gitrepo import GitRepo

TOML = """
[promotion]
approvals = {approvals}
{roles}

[environments.model]
root = "model/root"
database = "sqlite:///model/db.sqlite"
state_dir = "model/state"
staging = "staging"
{model}

[environments.production]
root = "prod/root"
database = "sqlite:///prod/db.sqlite"
state_dir = "prod/state"
staging = "staging"
warranty_days = 30
{production}
"""


class Setup:
    """A repository whose commit 2 (by the developer) is enhancement E1: a file and a table."""

    def __init__(self, tmp: Path, monkeypatch: pytest.MonkeyPatch, *, approvals: int = 1,
                 production: str = "", roles: str = "", model: str = "") -> None:
        self.monkeypatch = monkeypatch
        self.repo = GitRepo(tmp / "repo")
        self.root = self.repo.path
        for where in ("model/root", "prod/root"):
            (self.root / where).mkdir(parents=True)
        self.repo.write(".gitignore", "model/\nprod/\nstaging/\n.dasct/\n")
        self.repo.write(".dasct.toml", TOML.format(approvals=approvals, production=production,
                                                     roles=roles, model=model))
        self.base = self.repo.commit("config")
        self.head = self.repo.commit("PROJ-7: the report page", {
            "app/report.py": "print('report')\n",
            "db/deploy/reports.sql": "CREATE TABLE reports (id INTEGER PRIMARY KEY);\n",
            "db/revert/reports.sql": "DROP TABLE reports;\n",
            "db/verify/reports.sql": "SELECT id FROM reports WHERE 0;\n",
        })
        monkeypatch.chdir(self.root)

    def env(self, name: str) -> Environment:
        return environment(config.load(self.root), name, self.root)

    @property
    def model(self) -> Environment:
        return self.env("model")

    @property
    def production(self) -> Environment:
        return self.env("production")

    def stage_model(self, tid: str = "E1", rev_range: str | None = None) -> None:
        """`dasct trigger create --range BASE..HEAD --env model --id TID`."""
        create(rev_range=rev_range or f"{self.base}..{self.head}", baseline=None, env="model",
               tid=tid, at=None, staging=None, depends_on=(), conflicts_with=())

    def run(self, name: str, *, now: datetime | None = None, force: bool = True,
            ) -> engine.Result:
        lines: list[str] = []
        result = engine.run(self.env(name), now=now, ignore_window=force, write=lines.append)
        result.lines = lines  # type: ignore[attr-defined]
        return result

    @contextmanager
    def person(self, name: str, email: str) -> Iterator[None]:
        """Run as another git identity (the committer identity dasct takes as the approver)."""
        with self.monkeypatch.context() as m:
            m.setenv("GIT_COMMITTER_NAME", name)
            m.setenv("GIT_COMMITTER_EMAIL", email)
            yield


def tables(db: Path) -> list[str]:
    """The table names of a SQLite database."""
    conn = sqlite3.connect(db)
    try:
        return sorted(r[0] for r in conn.execute("SELECT name FROM sqlite_master "
                                                 "WHERE type = 'table' AND name = 'reports'"))
    finally:
        conn.close()


def later(days: float) -> datetime:
    """Now plus days, UTC."""
    return datetime.now(timezone.utc) + timedelta(days=days)
