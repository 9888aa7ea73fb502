"""`dasct index`: build or update the protected-lines index, with its size and timing."""

from __future__ import annotations

import argparse
import json
import sys

from dasct import check, git, index, index_checkpoints, kindcache, render, settings

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
    if snap.head is not None:
        kindcache.after_refresh(repo, snap, cfg)  # what a warning at commit time reads
    # Counted as `dasct scan` counts: files with lines (an empty file has no entry in a
    # saved snapshot, so counting entries differed between a rebuild and a reload), and
    # protected lines outside the excluded paths.
    counts = [snap.line_count(p) for p in snap.files.paths()]
    files, lines = sum(1 for n in counts if n), sum(counts)
    protected = sum(1 for _ in check.protected_lines(snap, cfg))
    location = str(index.index_dir(repo))
    points, point_bytes = index_checkpoints.usage(repo)
    report = {
        "head": snap.head,
        "action": KINDS[int(snap.stats.get("kind", 0))],
        "commits_replayed": int(snap.stats.get("commits", 0)),
        "files": files,
        "lines": lines,
        "protected_lines": protected,
        "fix_commits": snap.fix_commits(),
        "saved": snap.saved,
        "shallow": snap.shallow,
        "bytes": index.snapshot_size(repo),
        "checkpoints": points,
        "checkpoint_bytes": point_bytes,
        "seconds": round(snap.stats.get("seconds", 0.0), 3),
        # Of which, replaying the commits of .git-blame-ignore-revs (one blame step per
        # file they change): what a team's formatter commits cost the index.
        "ignored_revs_seconds": round(snap.stats.get("ignored_seconds", 0.0), 3),
        "location": location,
    }
    if fmt == "json":
        print(json.dumps(report, indent=2))
    elif not quiet:
        where = (f"{report['bytes']} bytes in {render.quote_path(location)}"
                 if snap.saved else "not saved (see below)")
        print(
            f"dasct: index {report['action']} at {str(snap.head)[:12]} in {report['seconds']}s: "
            f"{render.plural(files, 'file')}, {render.plural(lines, 'line')}, {protected} "
            f"protected by {render.plural(snap.fix_commits(), 'fix commit')}; {where}; "
            f"{render.plural(points, 'checkpoint')}, {point_bytes} bytes"
        )
    return 0
