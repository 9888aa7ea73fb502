"""`dasct index`: build or update the protected-lines index, with its size and timing."""

from __future__ import annotations

import argparse
import json
import sys

from dasct import git, index, settings

KINDS = {0: "up to date", 1: "updated incrementally", 2: "rebuilt from the whole history"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rebuild", action="store_true", help="rebuild from scratch")
    parser.add_argument("--quiet", action="store_true", help="print nothing on success")
    parser.add_argument("--format", choices=("text", "json"), default="text")


def run(args: argparse.Namespace) -> int:
    return main(rebuild=args.rebuild, quiet=args.quiet, fmt=args.format)


def main(*, rebuild: bool, quiet: bool, fmt: str) -> int:
    """Bring the index up to date with HEAD and report what it cost."""
    repo = git.discover()
    cfg = settings.load(repo)
    snap = index.snapshot_at(
        repo, cfg, repo.head, rebuild=rebuild, progress=sys.stderr.isatty() and not quiet
    )
    lines = sum(snap.line_count(p) for p in snap.files.paths())
    protected = sum(len(snap.protected(p)) for p in snap.files.paths())
    report = {
        "head": snap.head,
        "action": KINDS[int(snap.stats.get("kind", 0))],
        "commits_replayed": int(snap.stats.get("commits", 0)),
        "files": len(snap.files),
        "lines": lines,
        "protected_lines": protected,
        "fix_commits": len(snap.links),
        "bytes": index.snapshot_size(repo),
        "seconds": round(snap.stats.get("seconds", 0.0), 3),
        "location": str(index.index_dir(repo)),
    }
    if fmt == "json":
        print(json.dumps(report, indent=2))
    elif not quiet:
        print(
            f"dasct: index {report['action']} at {str(snap.head)[:12]} in {report['seconds']}s: "
            f"{report['files']} files, {report['lines']} lines, {protected} protected by "
            f"{report['fix_commits']} fix commits; {report['bytes']} bytes in {report['location']}"
        )
    return 0
