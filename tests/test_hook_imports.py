"""The commit-time path must not import the heavy clients (PRODUCT.md: 130-300 ms each)."""

from __future__ import annotations

import subprocess
import sys

from gitrepo import GitRepo

FORBIDDEN = ("jira", "github", "git", "requests", "rich", "urllib3", "psycopg", "sqlite3",
             "asyncssh", "tuf", "securesystemslib", "dasct.migrate", "dasct.notify", "dasct.audit",
             "dasct.remote", "dasct.agent")

# Not forbidden by PRODUCT.md, but each costs 2-6 ms of a ~30 ms commit (docs/benchmarks.md).
LEAN = ("argparse", "dataclasses", "subprocess", "tomllib", "typing", "json", "tempfile",
        "hashlib", "dasct.config", "dasct.render", "dasct.kinds", "array")

PROBE = """
import sys
from dasct.cli import main
code = main(["check", "--staged"])
print(" ".join(sorted(sys.modules)), file=sys.stderr)
"""


def test_check_staged_imports_nothing_heavy(repo: GitRepo) -> None:
    repo.commit("initial", {"x.py": "a\nb\n"})
    repo.commit("Fix PROJ-1", {"x.py": "a\nB\n"})
    repo.write("x.py", "a\nc\n")
    repo.git("add", "x.py")
    proc = subprocess.run((sys.executable, "-c", PROBE), cwd=repo.path, capture_output=True,
                          text=True, check=True)
    assert "PROJ-1" in proc.stdout  # the check really ran
    modules = proc.stderr.strip().splitlines()[-1].split()
    # A package or its submodules: dasct.agent is forbidden, dasct.agentconfig is not.
    heavy = [m for m in modules if m.split(".")[0] in FORBIDDEN or m in FORBIDDEN
             or m.startswith(tuple(f"{f}." for f in FORBIDDEN))]
    assert heavy == []


def _warm_check(repo: GitRepo, staged: str) -> tuple[str, set[str]]:
    """The output of a second `check --staged` (caches warm) with x.py staged as given,
    and the modules it imported; line 2 of x.py fixed PROJ-1."""
    repo.commit("initial", {"x.py": "a\nb\n", "pyproject.toml": "[tool.dasct.check]\n"})
    repo.commit("Fix PROJ-1", {"x.py": "a\nB\n"})
    repo.write("x.py", staged)
    repo.git("add", "x.py")
    run = (sys.executable, "-c", PROBE)
    subprocess.run(run, cwd=repo.path, capture_output=True, check=True)  # warms the caches
    proc = subprocess.run(run, cwd=repo.path, capture_output=True, text=True, check=True)
    return proc.stdout, set(proc.stderr.strip().splitlines()[-1].split())


def test_warm_check_without_findings_stays_lean(repo: GitRepo) -> None:
    _, modules = _warm_check(repo, "a\nB\nc\n")
    assert modules.isdisjoint(LEAN), sorted(modules & set(LEAN))


def test_warm_check_with_findings_imports_only_what_the_warning_needs(repo: GitRepo) -> None:
    # The text warning needs kinds and render; the CI formats' module (json, hashlib,
    # gzip: ~7 ms) and the writers' array module are for other paths.
    out, modules = _warm_check(repo, "a\nC\n")
    assert "PROJ-1" in out
    unwanted = {"dasct.ci_formats", "json", "hashlib", "gzip", "array", "argparse",
                "subprocess", "tomllib", "dasct.config"}
    assert modules.isdisjoint(unwanted), sorted(modules & unwanted)
