"""`dasct demo`: the whole story on embedded defaults, in a temp dir, no server.

A sample repository with a real history (fix commits naming Jira keys and GitHub issues,
one with a test); a change to a fixed line and the commit-time warning; the change lands,
`ci record` files a revalidation ticket (local tracker) with the fix's test run at the
change, QA accepts it, and the next change warns against the new baseline. Then two
enhancements are merged and become triggers; the model migration rolls back the one whose
verify fails and migrates the other; QA signs that one off, which promotes the same
trigger to production; production migrates it and it is under warranty; the report is
written. Everything it prints comes from the real commands (demo_sample.py builds the
sample).
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from dasct import demo_sample as story


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--keep", metavar="DIR", help="build the demo in DIR and keep it "
                        "(the sample repository, the environments, the report)")


def run(args: argparse.Namespace) -> int:
    return main(keep=args.keep)


def _show(repo: Path, *args: str, env: Mapping[str, str] | None = None) -> str:
    """Run `dasct ARGS` in repo, its output shown as it comes; returns its stdout."""
    print(f"\n$ dasct {shlex.join(args)}", flush=True)
    done = subprocess.run((sys.executable, "-m", "dasct", *args), cwd=repo, check=False,
                          env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                          text=True)
    print(done.stdout, end="", flush=True)
    return done.stdout


def _say(text: str) -> None:
    print(f"\n{text}", flush=True)


def main(*, keep: str | None) -> int:
    """Run the demo in a temporary directory (or in `keep`, kept)."""
    for var, value in story.DEVELOPER.items():
        os.environ.setdefault(var, value)
    with tempfile.TemporaryDirectory(prefix="dasct-demo-") as tmp:
        root = Path(keep).resolve() if keep else Path(tmp)
        repo = root / "sample"
        print(f"dasct demo: a sample repository in {repo}, its model and production "
              f"environments in {root / 'envs'}")
        story.build_sample(repo)
        _say("Its history, and the defects each commit's message names (subject or body):")
        print(story.history(repo), end="")
        _show(repo, "index")
        _show(repo, "scan")
        _show(repo, "why", "src/parser.py:2")
        _developer_and_qa(repo)
        _enhancements(repo, root)
        if keep:
            print(f"\nThe demo is kept in {root}: the sample repository, its environments "
                  f"(envs/) and the report ({root / 'report.html'}).")
        else:
            print("\nAll of it was built in a temporary directory, deleted now; "
                  "`dasct demo --keep DIR` keeps it.")
    return 0


def _developer_and_qa(repo: Path) -> None:
    _say("A developer rewrites the line that fixed PROJ-101 and commits it; the pre-commit "
         "hook (`dasct install`) warns, and the commit goes on:")
    _show(repo, "install")
    story.edit(repo, "src/parser.py", "text.split() if text else []",
               "text.split() if text is not None else []")
    commit = subprocess.run(("git", "commit", "-q", "-am", "Simplify parse"), cwd=repo,
                            capture_output=True, text=True, check=False)
    print(commit.stderr, end="")
    print(f"git commit exit code: {commit.returncode} (warned, not blocked)")
    _say("The change lands on main; CI records it and files a revalidation ticket for QA "
         "(the local tracker: the ledger branch dasct-ledger), with the fix's test run at "
         "the change:")
    _show(repo, "ci", "record", "--range", "HEAD~1..HEAD")
    _show(repo, "qa", "list")
    _say("QA revalidates: PROJ-101 still holds, so the new line becomes its baseline:")
    _show(repo, "qa", "accept", "PROJ-101", "--commit", "HEAD")
    _say("The next change to that line warns against the new baseline:")
    story.edit(repo, "src/parser.py", "text.split() if text is not None else []",
               "(text or '').split()")
    subprocess.run(("git", "add", "src/parser.py"), cwd=repo, check=True)
    _show(repo, "check", "--staged")
    subprocess.run(("git", "reset", "-q", "--hard"), cwd=repo, check=True)


def _enhancements(repo: Path, root: Path) -> None:
    _say("Two enhancements are developed on branches and merged. CI turns each merge into a "
         "trigger for model (its id: the defect keys its commits name and the short sha of "
         "its last commit):")
    ids = []
    for name in ("PROJ-42", "PROJ-43"):
        before, after = story.merge_enhancement(repo, name)
        print(f"\n  merged {name}: {story.describe(repo, before, after)}")
        out = _show(repo, "trigger", "create", "--range", f"{before[:7]}..{after[:7]}",
                    "--env", "model")
        ids.append(story.trigger_id(out))
    good, bad = ids
    _say("The nightly job migrates model. Each trigger is archived first; PROJ-43's SQL "
         "verify fails, so it is rolled back from its archive and checked against it; "
         "PROJ-42 goes in:")
    _show(repo, "migrate", "run", "--env", "model")
    _show(repo, "status")
    _say(f"QA runs the acceptance test in model and signs {good} off. An author of its "
         "commits may not; Quinn from QA does, and the sign-off writes production's "
         "trigger from the very trigger model ran (same steps, same payload digests):")
    _show(repo, "signoff", good, "--env", "model", "--comment",
          "acceptance test passed in model", env=story.QA)
    _say(f"Production refuses what model has not passed and signed off ({bad} never reaches "
         "it), and without a configured window it runs only with an explicit --now:")
    _show(repo, "migrate", "run", "--env", "production")
    _show(repo, "migrate", "run", "--env", "production", "--now")
    _say(f"{good} is under warranty in production (WP, for its 30 days), then complete "
         "(CP). Where is everything, and what does production lack?")
    _show(repo, "status")
    _show(repo, "where", "PROJ-42")
    _show(repo, "inventory", "diff", "model", "production")
    _show(repo, "warranty", "show", "--env", "production")
    _say("And one static page for the team, no server needed:")
    _show(repo, "report", "-o", str(root / "report.html"))
