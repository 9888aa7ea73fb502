"""The commit-time path must not import the heavy clients (PRODUCT.md: 130-300 ms each)."""

from __future__ import annotations

import json
import subprocess
import sys

from gitrepo import GitRepo

FORBIDDEN = ("jira", "github", "git", "requests", "rich", "urllib3", "psycopg", "sqlite3",
             "dasct.migrate", "dasct.notify", "dasct.audit")

PROBE = """
import json, sys
from dasct.cli import main
code = main(["check", "--staged"])
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def test_check_staged_imports_nothing_heavy(repo: GitRepo) -> None:
    repo.commit("initial", {"x.py": "a\nb\n"})
    repo.commit("Fix PROJ-1", {"x.py": "a\nB\n"})
    repo.write("x.py", "a\nc\n")
    repo.git("add", "x.py")
    proc = subprocess.run((sys.executable, "-c", PROBE), cwd=repo.path, capture_output=True,
                          text=True, check=True)
    assert "PROJ-1" in proc.stdout  # the check really ran
    modules = json.loads(proc.stderr.strip().splitlines()[-1])
    heavy = [m for m in modules if m.split(".")[0] in FORBIDDEN or m.startswith(FORBIDDEN)]
    assert heavy == []
