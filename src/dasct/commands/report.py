"""`dasct report`: write the repository's report as one static HTML page (docs/report.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dasct import durable, git
from dasct.errors import DasctError
from dasct.render import plural
from dasct.report import TOP_FILES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", default="report.html", metavar="FILE",
                        help="where the page is written (default report.html; - for stdout)")
    parser.add_argument("--top", type=int, default=TOP_FILES, metavar="N",
                        help=f"how many files the defect heat map shows (default {TOP_FILES})")


def run(args: argparse.Namespace) -> int:
    return main(output=args.output, top=max(args.top, 1))


def main(*, output: str, top: int) -> int:
    """Collect the figures, render the page, write it; exit 0."""
    from dasct.report import data, page

    figures = data.collect(git.discover(), top=top)
    text = page.render(figures)
    if output == "-":
        sys.stdout.write(text)
        return 0
    path = Path(output)
    if path.is_dir():
        raise DasctError(f"{output}: is a directory; give the report's file name")
    try:
        # 0644: a report is meant to be opened and shared, unlike dasct's state files.
        durable.atomic_write(path, text.encode("utf-8"), mode=0o644, strict=False)
    except OSError as exc:
        raise DasctError(f"{output}: cannot write the report: {exc.strerror}") from None
    for problem in figures["problems"]:
        print(f"dasct: {problem}", file=sys.stderr)
    d, r = figures["defects"], figures["revalidations"]
    print(f"dasct: report written to {output} ({plural(d['lines'], 'protected line')} in "
          f"{plural(d['files'], 'file')}, {plural(r['opened'], 'revalidation')}, "
          f"{plural(len(figures['environments']), 'environment')})")
    return 0
