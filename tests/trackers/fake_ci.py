"""A CI world for the QA loop's end-to-end tests (tests/test_qa_trackers*.py): a developer
repository with two fixed defects (PROJ-1, a Jira key, and #1, a GitHub issue) and a
commit touching both, a real bare remote, CI clones of it, and the `dasct` CLI run in
them as a subprocess with the trackers' credentials in its environment.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from dasct import git
from dasct.ledger import Ledger
from dasct.ledger_record import Record
from dasct_run import Result, dasct
from gitrepo import GitRepo
from trackers import Answer, FakeServer, Request

JIRA_TOKEN = "jira-pat-Zq8xW3vR5tY1e2e"  # long enough that the redaction knows them
GITHUB_TOKEN = "ghp_e2eR4nd0mT0k3nQw7Zx9"
ENV = {"DASCT_JIRA_TOKEN": JIRA_TOKEN, "DASCT_GITHUB_TOKEN": GITHUB_TOKEN}

CODE = ("def parse(text):\n    tokens = text.split()\n    return tokens\n\n\n"
        "def fmt(items):\n    return \", \".join(items)\n")
PARSE_FIX = ("    tokens = text.split()\n", "    tokens = text.split() if text else []\n")
FMT_FIX = ("    return \", \".join(items)\n", "    return \", \".join(repr(i) for i in items)\n")
PARSE_FIX_SUBJECT = "PROJ-1: parse(None) crashed"
FMT_FIX_SUBJECT = "Quote the items (fixes #1)"


def config(*, trackers: tuple[str, ...], jira: str = "", github: str = "", smtp: int = 0,
           jira_timeout: float = 5.0) -> str:
    """.dasct.toml for these trackers; owners: PROJ-* by config, the rest by default."""
    quoted = ", ".join(f'"{t}"' for t in trackers)
    return (f'[qa]\ntrackers = [{quoted}]\ndefault_assignee = "qa@example.com"\n\n'
            '[qa.owners]\n"PROJ-*" = "proj-qa@example.com"\n\n'
            f'[qa.jira]\nurl = "{jira}"\nproject = "QA"\ntimeout_seconds = {jira_timeout}\n\n'
            f'[qa.github]\nrepository = "acme/app"\nbase_url = "{github}"\n'
            'timeout_seconds = 5\n\n'
            f'[qa.email]\nhost = "127.0.0.1"\nport = {smtp}\nsecurity = "none"\n'
            'sender = "dasct@example.com"\nto = ["qa-team@example.com"]\n'
            'timeout_seconds = 5\n\n'
            '[qa.webhook]\nurl_env = "DASCT_WEBHOOK_URL"\ntimeout_seconds = 5\n')


class Hook(FakeServer):
    """An incoming webhook (Slack's shape: the token is the URL's path) answering 200."""

    path = "/services/T0E2E/B0E2E/s3cr3tW3bh00kT0k3n"

    def __init__(self) -> None:
        super().__init__()
        self.routes = [("POST", re.compile(re.escape(self.path)), self.receive)]

    def receive(self, request: Request) -> Answer:
        return 200, None, {}

    @property
    def hook_url(self) -> str:
        return self.url + self.path


class World:
    """dev (the developer's repository), a bare remote, and CI clones of it."""

    def __init__(self, root: Path, dev: GitRepo, toml: str) -> None:
        self.root = root
        self.dev = dev
        dev.commit("initial", {".dasct.toml": toml, "src/parser.py": CODE})
        self.parse_fix = dev.commit(PARSE_FIX_SUBJECT, {
            "src/parser.py": CODE.replace(*PARSE_FIX)})
        self.fmt_fix = dev.commit(FMT_FIX_SUBJECT, {
            "src/parser.py": CODE.replace(*PARSE_FIX).replace(*FMT_FIX)})
        self.base = self.fmt_fix
        self.touch = dev.commit("simplify parse and fmt", {"src/parser.py": CODE.replace(
            *PARSE_FIX).replace(*FMT_FIX).replace("text.split() if text else []",
                                                  "(text or \"\").split()").replace(
            "repr(i) for i in items", "map(repr, items)")})
        self.bare = root / "remote.git"
        dev.git("clone", "-q", "--bare", str(dev.path), str(self.bare))

    def clone(self, name: str) -> GitRepo:
        """A fresh CI checkout of the remote (its ledger comes with the first fetch)."""
        GitRepo(self.root).git("clone", "-q", str(self.bare), name)
        return GitRepo(self.root / name, init=False)

    def push(self, message: str, files: dict[str, str | bytes]) -> str:
        """A developer pushes one more commit to main."""
        sha = self.dev.commit(message, files)
        self.dev.git("push", "-q", str(self.bare), "main")
        return sha


def run(clone: GitRepo, *args: str, env: dict[str, str] | None = None) -> Result:
    """dasct in clone, with the trackers' tokens (env overrides them)."""
    return dasct(clone.path, *args, env={**ENV, **(env or {})})


def start(clone: GitRepo, *args: str, env: dict[str, str] | None = None
          ) -> subprocess.Popen[bytes]:
    """dasct in clone, not waited for (to run two at once, or to kill one)."""
    return subprocess.Popen((sys.executable, "-m", "dasct", *args), cwd=clone.path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, **ENV, **(env or {})})


def ledger(clone: GitRepo) -> Ledger:
    return Ledger(git.discover(clone.path), "dasct-ledger", "origin")


def records(clone: GitRepo, kind: str) -> list[Record]:
    return ledger(clone).records(kind)


def outbox_path(clone: GitRepo) -> Path:
    return clone.path / ".git" / "dasct" / "qa" / "outbox.sqlite"


def waiting(clone: GitRepo) -> list[tuple[str, float, str]]:
    """(key, next_try, last_error) of every row the outbox has not delivered."""
    with sqlite3.connect(outbox_path(clone)) as db:
        rows = db.execute("SELECT key, next_try, last_error FROM outbox "
                          "WHERE delivered IS NULL ORDER BY id").fetchall()
    return [(str(k), float(t), str(e or "")) for k, t, e in rows]


def time_passes(clone: GitRepo) -> None:
    """The backoff, Retry-After wait or lease of every waiting row is over (the outbox
    holds its next try as epoch seconds: this is the clock moving on, not a bypass)."""
    with sqlite3.connect(outbox_path(clone)) as db:
        db.execute("UPDATE outbox SET next_try = ? WHERE delivered IS NULL",
                   (time.time() - 1,))


def wait_for(what: Callable[[], object], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not what():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds}s: {what}")
        time.sleep(0.02)
