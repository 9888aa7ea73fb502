"""`dasct demo`: the end-to-end demo on embedded defaults, in a temp dir, no server.

It builds a sample repository with a real history (fix commits naming Jira keys and
GitHub issues, one with a test), stages a change to a fixed line and shows the
commit-time warning; the change lands, `ci record` files a revalidation ticket in the
local tracker with the fix's test run at the change, QA accepts it, and the next change
to the same line warns against the new baseline. Then it runs the migration engine's
demo. Everything it prints comes from the real commands.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--keep", metavar="DIR", help="build the demo in DIR and keep it")


def run(args: argparse.Namespace) -> int:
    return main(keep=args.keep)


def _git(repo: Path, *args: str) -> None:
    subprocess.run(("git", *args), cwd=repo, check=True, capture_output=True)


def _write(repo: Path, path: str, lines: list[str]) -> None:
    full = repo / path
    full.parent.mkdir(parents=True, exist_ok=True)
    full.write_text("\n".join(lines) + "\n")


def _commit(repo: Path, message: str) -> None:
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", message)


def _show(repo: Path, *args: str) -> None:
    print(f"\n$ dasct {' '.join(args)}", flush=True)
    subprocess.run((sys.executable, "-m", "dasct", *args), cwd=repo, check=False)


def build_sample(repo: Path) -> None:
    """A small repository whose history fixes PROJ-101, PROJ-102 and GitHub issue #7."""
    repo.mkdir(parents=True, exist_ok=True)
    _git(repo, "init", "-q", "-b", "main")
    # The QA loop's evidence: the fix commits' tests, run at the touching commit.
    _write(repo, ".dasct.toml", [
        "[qa]", f"test_command = {json.dumps(sys.executable + ' -m unittest {tests}')}"])
    for path, lines in SAMPLE.items():
        _write(repo, path, lines)
    _commit(repo, "Initial import")
    parser = list(SAMPLE["src/parser.py"])
    parser[1] = "    tokens = text.split() if text else []"
    _write(repo, "src/parser.py", parser)
    _write(repo, "tests/test_parser.py", TEST)  # the fix's test: QA's evidence later
    _commit(repo, "PROJ-101: parse(None) crashed the importer")
    billing = list(SAMPLE["src/billing.py"])
    billing[1] = "    amount = sum(i.price * i.quantity for i in items)"
    _write(repo, "src/billing.py", billing)
    _write(repo, "CHANGELOG.md", ["- PROJ-102: totals ignored quantities"])
    _commit(repo, "Totals ignored quantities\n\nFixes PROJ-102")
    _git(repo, "checkout", "-q", "-b", "feature")
    parser.append("# tokens are lower-cased for lookups")
    _write(repo, "src/parser.py", parser)
    _commit(repo, "Document lower-casing")
    _git(repo, "checkout", "-q", "main")
    billing[2] = "    return round(amount + 0.0, 2)"
    _write(repo, "src/billing.py", billing)
    _commit(repo, "Round totals consistently (#12)\n\nfixes #7")
    _git(repo, "merge", "-q", "--no-ff", "-m", "Merge branch 'feature'", "feature")


def main(*, keep: str | None) -> int:
    """Run the demo in a temporary directory (or in `keep`)."""
    os.environ.setdefault("GIT_AUTHOR_NAME", "Demo Developer")
    os.environ.setdefault("GIT_AUTHOR_EMAIL", "dev@example.com")
    os.environ.setdefault("GIT_COMMITTER_NAME", "Demo Developer")
    os.environ.setdefault("GIT_COMMITTER_EMAIL", "dev@example.com")
    with tempfile.TemporaryDirectory(prefix="dasct-demo-") as tmp:
        root = Path(keep).resolve() if keep else Path(tmp)
        repo = root / "sample"
        print(f"dasct demo: building a sample repository in {repo}")
        build_sample(repo)
        print("History (fix commits name PROJ-101, PROJ-102 and GitHub issue #7):")
        log = subprocess.run(("git", "log", "--oneline", "--graph"), cwd=repo,
                             capture_output=True, text=True, check=True)
        print(log.stdout, end="")
        _show(repo, "index")
        _show(repo, "scan")
        _show(repo, "why", "src/parser.py:2")
        print("\nA developer now rewrites the line that fixed PROJ-101 and stages it:")
        parser = (repo / "src/parser.py").read_text().replace(
            "text.split() if text else []", "text.split() if text is not None else []"
        )
        (repo / "src/parser.py").write_text(parser)
        _git(repo, "add", "src/parser.py")
        _show(repo, "check", "--staged")
        _show(repo, "check", "--staged", "--format", "json")
        print("\nThe same change as the pre-commit hook sees it (installed with `dasct install`):")
        _show(repo, "install")
        commit = subprocess.run(("git", "commit", "-m", "Simplify parse"), cwd=repo,
                                capture_output=True, text=True, check=False)
        print(commit.stderr, end="")
        print(f"git commit exit code: {commit.returncode} (warned, not blocked)")
        print("\nThe change lands; CI records it and files a revalidation ticket for QA "
              "(the local tracker: the ledger branch dasct-ledger), with the fix's test run "
              "at the change:")
        _show(repo, "ci", "record", "--range", "HEAD~1..HEAD")
        _show(repo, "qa", "list")
        print("\nQA revalidates: the defect still holds, so the new line becomes the "
              "baseline of PROJ-101:")
        _show(repo, "qa", "accept", "PROJ-101", "--commit", "HEAD")
        _show(repo, "index")
        _show(repo, "why", "src/parser.py:2")
        print("\nThe next change to that line warns against the new baseline:")
        parser = (repo / "src/parser.py").read_text().replace(
            "text.split() if text is not None else []", "(text or '').split()")
        (repo / "src/parser.py").write_text(parser)
        _git(repo, "add", "src/parser.py")
        _show(repo, "check", "--staged")
        _show(repo, "show", "PROJ-101")
        _git(repo, "reset", "-q", "--hard")
        from dasct.migrate.demo import run_demo

        print()
        run_demo(root / "migration", lambda text: print(text, flush=True))
        if keep:
            print(f"\nThe demo is kept in {root}")
    return 0
