"""The sample of `dasct demo`: a repository with fixes, two enhancements, two environments.

Its configuration (`.dasct.toml`, committed with the first commit) runs the fix's tests as
QA's evidence and puts model and production beside the repository (`../envs/`), each a
directory and a SQLite database; production, gated by model, keeps a 30-day warranty.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

DEVELOPER = {"GIT_AUTHOR_NAME": "Demo Developer", "GIT_AUTHOR_EMAIL": "dev@example.com",
             "GIT_COMMITTER_NAME": "Demo Developer", "GIT_COMMITTER_EMAIL": "dev@example.com"}
QA = {"GIT_COMMITTER_NAME": "Quinn QA", "GIT_COMMITTER_EMAIL": "quinn@example.com"}

SAMPLE = {
    "src/parser.py": [
        "def parse(text):",
        "    tokens = text.split()",
        "    if not tokens:",
        "        return []",
        "    return [t.lower() for t in tokens]",
    ],
    "src/billing.py": [
        "def total(items):",
        "    amount = sum(i.price for i in items)",
        "    return round(amount, 2)",
    ],
}
TEST = [
    "import sys, unittest",
    "sys.path.insert(0, 'src')",
    "from parser import parse",
    "",
    "class ParseTest(unittest.TestCase):",
    "    def test_none_is_no_tokens(self):",
    "        self.assertEqual(parse(None), [])",
]
ENVIRONMENTS = [
    "[environments.model]",
    'root = "../envs/model/app"',
    'database = "sqlite:///../envs/model/app.sqlite"',
    'state_dir = "../envs/model/state"',
    'staging = "../envs/staging"',
    'recipients = ["qa@example.com"]',
    "",
    "[environments.production]",
    'root = "../envs/production/app"',
    'database = "sqlite:///../envs/production/app.sqlite"',
    'state_dir = "../envs/production/state"',
    'staging = "../envs/staging"',
    'recipients = ["release@example.com"]',
    "warranty_days = 30",
]
# Two enhancements, each a branch merged into main: files and SQL (deploy, revert, verify).
ENHANCEMENTS = {
    "PROJ-42": ("PROJ-42: greet users by name", {
        "src/greet.py": "def greet(name):\n    return f'hello {name}'\n",
        "db/deploy/users.sql": "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);"
                               "\nINSERT INTO users (name) VALUES ('ada');\n",
        "db/revert/users.sql": "DROP TABLE users;\n",
        "db/verify/users.sql": "SELECT count(*) FROM users WHERE name = 'ada';\n",
    }),
    "PROJ-43": ("PROJ-43: keep an audit trail", {
        "src/audit.py": "TRAIL = 'audit_trail'\n",
        "db/deploy/audit_trail.sql": "CREATE TABLE audit_trail (id INTEGER PRIMARY KEY, "
                                     "what TEXT);\n",
        "db/revert/audit_trail.sql": "DROP TABLE audit_trail;\n",
        # Meant to check the backfill its developer forgot: the table is empty, so it fails.
        "db/verify/audit_trail.sql": "SELECT count(*) FROM audit_trail;\n",
    }),
}


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(("git", *args), cwd=repo, check=True, capture_output=True,
                          text=True).stdout


def _write(repo: Path, path: str, text: str) -> None:
    full = repo / path
    full.parent.mkdir(parents=True, exist_ok=True)
    full.write_text(text)


def _lines(lines: list[str]) -> str:
    return "\n".join(lines) + "\n"


def _commit(repo: Path, message: str) -> None:
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", message)


def build_sample(repo: Path) -> None:
    """A small repository whose history fixes PROJ-101, PROJ-102 and GitHub issue #7."""
    repo.mkdir(parents=True, exist_ok=True)
    _git(repo, "init", "-q", "-b", "main")
    command = json.dumps(sys.executable + " -m unittest {tests}")
    _write(repo, ".dasct.toml", _lines(["[qa]", f"test_command = {command}", "",
                                        *ENVIRONMENTS]))
    for path, lines in SAMPLE.items():
        _write(repo, path, _lines(lines))
    _commit(repo, "Initial import")
    parser = list(SAMPLE["src/parser.py"])
    parser[1] = "    tokens = text.split() if text else []"
    _write(repo, "src/parser.py", _lines(parser))
    _write(repo, "tests/test_parser.py", _lines(TEST))  # the fix's test: QA's evidence
    _commit(repo, "PROJ-101: parse(None) crashed the importer")
    billing = list(SAMPLE["src/billing.py"])
    billing[1] = "    amount = sum(i.price * i.quantity for i in items)"
    _write(repo, "src/billing.py", _lines(billing))
    _write(repo, "CHANGELOG.md", "- PROJ-102: totals ignored quantities\n")
    _commit(repo, "Totals ignored quantities\n\nFixes PROJ-102")
    _git(repo, "checkout", "-q", "-b", "feature")
    parser.append("# tokens are lower-cased for lookups")
    _write(repo, "src/parser.py", _lines(parser))
    _commit(repo, "Document lower-casing")
    _git(repo, "checkout", "-q", "main")
    billing[2] = "    return round(amount + 0.0, 2)"
    _write(repo, "src/billing.py", _lines(billing))
    _commit(repo, "Round totals consistently (#12)\n\nfixes #7")
    _git(repo, "merge", "-q", "--no-ff", "-m", "Merge branch 'feature'", "feature")
    for env in ("model", "production"):  # both start empty
        (repo.parent / "envs" / env / "app").mkdir(parents=True, exist_ok=True)


def history(repo: Path) -> str:
    """`git log --graph --oneline`, each commit with the defect keys its whole message
    names, found as the index finds them (dasct.refs: subject and body, `[defects]`)."""
    from dasct import config, refs

    patterns = config.load(repo).defects.compiled()
    named: dict[str, list[str]] = {}
    for record in _git(repo, "log", "--format=%h%x1f%B%x1e").split("\x1e"):
        sha, _, message = record.strip().partition("\x1f")
        keys = list(dict.fromkeys(refs.defect_keys(message, patterns)))
        if sha and keys:
            named[sha] = keys
    out = []
    for line in _git(repo, "log", "--graph", "--format=%h %s").splitlines():
        sha = next((w for w in line.split() if w in named), "")
        out.append(f"{line:<60} fixes {', '.join(named[sha])}" if sha else line)
    return "\n".join(out) + "\n"


def edit(repo: Path, path: str, old: str, new: str) -> None:
    full = repo / path
    full.write_text(full.read_text().replace(old, new))


def merge_enhancement(repo: Path, name: str) -> tuple[str, str]:
    """Develop enhancement name on its branch and merge it into main: (before, after)."""
    message, files = ENHANCEMENTS[name]
    before = _git(repo, "rev-parse", "HEAD").strip()
    _git(repo, "checkout", "-q", "-b", name.lower())
    for path, text in files.items():
        _write(repo, path, text)
    _commit(repo, message)
    _git(repo, "checkout", "-q", "main")
    _git(repo, "merge", "-q", "--no-ff", "-m", f"Merge branch '{name.lower()}'", name.lower())
    return before, _git(repo, "rev-parse", "HEAD").strip()


def describe(repo: Path, before: str, after: str) -> str:
    """What the merge brought: its commits, and the files it adds."""
    added = _git(repo, "diff", "--name-only", before, after).split()
    return f"{before[:7]}..{after[:7]}, adds {', '.join(added)}"


def trigger_id(path_line: str) -> str:
    """The id of the trigger whose path `dasct trigger create` printed."""
    return Path(path_line.strip().splitlines()[-1]).stem
