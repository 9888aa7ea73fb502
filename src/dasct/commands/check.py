"""`dasct check`: report the defects a change touches.

The pre-commit hook runs `dasct check --staged`: this module is the commit-time path, so
it imports only what it needs (tests/test_hook_imports.py keeps it honest) and starts git
before anything else, so that git computes the diff while dasct loads its index.
"""

from __future__ import annotations

import sys

from dasct import check, git, settings

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse

FORMATS = ("text", "json", "github", "sarif")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--staged", action="store_true", help="the staged change (default)")
    what.add_argument("--commit", metavar="REV", help="what commit REV changed")
    what.add_argument("--range", metavar="A..B", help="what B brings over its merge base with A")
    parser.add_argument("--format", choices=FORMATS, default="text")
    parser.add_argument(
        "--strict", action="store_true", default=None,
        help="exit 1 when a protected line is touched (also: [check] strict = true)",
    )


def fails_open(args: argparse.Namespace) -> bool:
    """As the pre-commit hook (the staged change), dasct's own failure never blocks the
    commit unless strict; checking a commit or a range in CI fails loudly."""
    return args.commit is None and args.range is None and not args.strict


def run(args: argparse.Namespace) -> int:
    return main(rev=args.commit, spec=args.range, fmt=args.format, strict=args.strict)


def main(*, rev: str | None, spec: str | None, fmt: str, strict: bool | None) -> int:
    """Check one change; exit 1 only for a touch in strict mode."""
    if rev is None and spec is None:
        with git.stream(*check.STAGED_DIFF) as out:  # first: git works while we load
            repo = git.discover()
            cfg = settings.load(repo)
            change = check.staged(repo)
            findings = check.findings(repo, cfg, change, out)
    else:
        repo = git.discover()
        cfg = settings.load(repo)
        change = check.commit(repo, rev) if rev is not None else check.range_(repo, spec or "")
        findings = check.run_check(repo, cfg, change)
    strict = cfg.strict if strict is None else strict
    if fmt == "json":
        from dasct import render  # only when there is something to say

        print(render.findings_json(findings))
    elif findings or fmt == "sarif":  # SARIF always writes a document, empty or not
        from dasct import render

        subjects = git.subjects(repo, (f.commit for f in findings))
        if fmt == "github":
            sys.stdout.write(render.findings_github(findings, subjects))
        elif fmt == "sarif":
            sys.stdout.write(render.findings_sarif(findings, subjects))
        else:
            sys.stdout.write(render.findings_text(findings, subjects, change.label, strict))
    return 1 if strict and findings else 0
