"""`dasct scan`: every protected line at HEAD."""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict

from dasct import git, kinds, render, settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("text", "json"), default="text")


def run(args: argparse.Namespace) -> int:
    return main(fmt=args.format)


def main(*, fmt: str) -> int:
    """Print the protected lines at HEAD, grouped by file and defect in text."""
    repo = git.discover()
    cfg = settings.load(repo)
    lines = kinds.protected_at_head(repo, cfg)

    if fmt == "json":
        print(render.lines_json(lines))
        return 0
    # One row per file, set of defects and kind: a line that protects two defects (one
    # commit naming both) is one row naming both, not the same range twice.
    grouped: dict[str, dict[tuple[tuple[str, ...], str], list[int]]] = defaultdict(
        lambda: defaultdict(list))
    for x, what in lines:
        grouped[x.path][tuple(sorted(x.defects)), what].append(x.line)
    for path, by_defects in grouped.items():
        for (defects, what), numbers in sorted(by_defects.items(),
                                               key=lambda item: min(item[1])):
            names = ", ".join(render.printable(d) for d in defects)
            print(f"{render.quote_path(path)}:{render.ranges(numbers)}\t{names}\t{what}")
    if not lines:
        print("dasct: no protected lines at HEAD", file=sys.stderr)
    return 0
