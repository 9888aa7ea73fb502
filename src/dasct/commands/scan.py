"""`dasct scan`: every protected line at HEAD."""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict

from dasct import check, git, index, render, settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("text", "json"), default="text")


def run(args: argparse.Namespace) -> int:
    return main(fmt=args.format)


def main(*, fmt: str) -> int:
    """Print the protected lines at HEAD, grouped by file and defect in text."""
    repo = git.discover()
    cfg = settings.load(repo)
    snap = index.snapshot_at(repo, cfg, repo.head, progress=sys.stderr.isatty())
    lines = list(check.protected_lines(snap, cfg))
    if fmt == "json":
        print(render.lines_json((p, n, d) for p, n, d, _ in lines))
        return 0
    grouped: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for path, n, defects, _ in lines:
        for d in defects:
            grouped[path][d].append(n)
    for path, by_defect in grouped.items():
        for defect, numbers in sorted(by_defect.items(), key=lambda item: min(item[1])):
            print(f"{path}:{render.ranges(numbers)}\t{defect}")
    if not lines:
        print("dasct: no protected lines at HEAD", file=sys.stderr)
    return 0
