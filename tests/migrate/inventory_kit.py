"""A real repository with two environments (model, production) on SQLite, filled by real
`dasct trigger create` and `dasct migrate run` calls: the ground the status, inventory and
where tests stand on."""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

from engine_kit import cli

from gitrepo import GitRepo

# Production ungated (promote_from = "none"): inventory and where are about what each
# environment has, whichever way it got there (promotion: test_promotion.py).
TOML = "".join(
    f'[environments.{name}]\nroot = "../{d}/root"\ndatabase = "sqlite:///../{d}/db.sqlite"\n'
    f'state_dir = "../{d}/state"\n{gate}'
    for name, d, gate in (("model", "model", ""), ("production", "prod", 'promote_from = "none"\n'))
)
BASE = {"app/main.py": "print('v1')\n", "README": "demo\n"}
FIX = {
    "app/main.py": "print('v2')\n",
    "db/deploy/items.sql": "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT);\n",
    "db/revert/items.sql": "DROP TABLE items;\n",
    "db/verify/items.sql": "SELECT id, name FROM items WHERE 0;\n",
}
FEATURE = {"app/main.py": "print('v3')\n", "app/feature.py": "FEATURE = True\n"}
LATER = "2099-01-01T00:00:00Z"  # production's feat-8 waits until then


@dataclass(frozen=True)
class Sample:
    """The repository, its targets and the commits of its two enhancements."""

    repo: GitRepo
    base: str
    fix: str  # fix-7: names PROJ-7, changes app/main.py, adds the items table
    feature: str  # feat-8: names PROJ-8, changes app/main.py again, adds app/feature.py

    def root(self, env: str) -> Path:
        """The target root of env."""
        return self.repo.path.parent / ("model" if env == "model" else "prod") / "root"

    def db(self, env: str) -> Path:
        """The SQLite file of env."""
        return self.root(env).parent / "db.sqlite"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def dasct(sample: Sample | GitRepo, *args: str, ok: tuple[int, ...] = (0,)) -> str:
    """Run dasct in the repository; its stdout, after checking the exit code."""
    repo = sample.repo if isinstance(sample, Sample) else sample
    proc = cli(repo.path, *args)
    assert proc.returncode in ok, (args, proc.returncode, proc.stdout, proc.stderr)
    return proc.stdout


def build(repo: GitRepo) -> Sample:
    """fix-7 migrated in model and production; feat-8 migrated in model, scheduled in
    production."""
    repo.write(".dasct.toml", TOML)
    base = repo.commit("base", BASE)
    fix = repo.commit("Fix PROJ-7: main v2 and the items table", FIX)
    feature = repo.commit("PROJ-8: main v3 and a feature", FEATURE)
    sample = Sample(repo, base, fix, feature)
    for env in ("model", "production"):
        for name, text in BASE.items():
            (sample.root(env) / name).parent.mkdir(parents=True, exist_ok=True)
            (sample.root(env) / name).write_text(text)
    for rev_range, tid in ((f"{base}..{fix}", "fix-7"), (f"{fix}..{feature}", "feat-8")):
        dasct(repo, "trigger", "create", "--range", rev_range, "--env", "model", "--id", tid)
    assert "migrated 2" in dasct(repo, "migrate", "run", "--env", "model", "--now")
    dasct(repo, "trigger", "create", "--range", f"{base}..{fix}", "--env", "production",
          "--id", "fix-7")
    assert "migrated 1" in dasct(repo, "migrate", "run", "--env", "production", "--now")
    dasct(repo, "trigger", "create", "--range", f"{fix}..{feature}", "--env", "production",
          "--id", "feat-8", "--at", LATER)
    return sample


def copy(sample: Sample, into: Path) -> Sample:
    """A copy of sample (repository, targets, state) under into, for a test that changes it.

    Every configured path is relative to the repository, so the copy is independent.
    """
    shutil.copytree(sample.repo.path.parent, into / "copy", symlinks=True)
    return Sample(GitRepo(into / "copy" / sample.repo.path.name, init=False), sample.base,
                  sample.fix, sample.feature)
