"""`dasct check`: report the defects a change touches. The pre-commit hook runs
`dasct check --staged`; this module is on the commit-time path, so it imports nothing
heavy (see tests/test_hook_imports.py)."""

from __future__ import annotations

import argparse
import sys

from dasct import check, config, git, render

HELP = "report the defects a change touches (the pre-commit hook)"
FAIL_OPEN = True  # as a hook, an internal error never blocks the commit (unless --strict)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--staged", action="store_true", help="the staged change (default)")
    what.add_argument("--commit", metavar="REV", help="what commit REV changed")
    what.add_argument("--range", metavar="A..B", help="what B brings over its merge base with A")
    parser.add_argument("--format", choices=render.FORMATS, default="text")
    parser.add_argument(
        "--strict", action="store_true", default=None,
        help="exit 1 when a protected line is touched (also: [check] strict = true)",
    )


def run(args: argparse.Namespace) -> int:
    return main(rev=args.commit, spec=args.range, fmt=args.format, strict=args.strict)


def main(*, rev: str | None, spec: str | None, fmt: str, strict: bool | None) -> int:
    """Check one change; exit 1 only for a touch in strict mode."""
    repo = git.discover()
    cfg = config.load(repo.root)
    strict = cfg.check.strict if strict is None else strict
    if rev is not None:
        change = check.commit(repo, rev)
    elif spec is not None:
        change = check.range_(repo, spec)
    else:
        change = check.staged(repo)
    findings = check.run_check(repo, cfg, change)
    if fmt == "json":
        print(render.findings_json(findings))
    elif findings:
        subjects = git.subjects(repo, (f.commit for f in findings))
        if fmt == "github":
            sys.stdout.write(render.findings_github(findings, subjects))
        else:
            sys.stdout.write(render.findings_text(findings, subjects, change.label, strict))
    return 1 if strict and findings else 0
