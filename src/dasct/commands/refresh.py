"""`dasct refresh`: bring the index to HEAD; `--background` detaches (the post-* hooks)."""

from __future__ import annotations

import sys

from dasct import git, refresh

TYPE_CHECKING = False  # argparse stays off the post-* hooks' path (see cli.main)
if TYPE_CHECKING:
    import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--background", action="store_true",
                        help="fork a detached, niced refresh and return at once (git hooks)")


def fails_open(args: argparse.Namespace) -> bool:
    # Run by git hooks after checkout, merge, rewrite and commit: never fail git.
    return bool(args.background)


def run(args: argparse.Namespace) -> int:
    return main(background=args.background)


def main(*, background: bool) -> int:
    """Refresh the index, in the foreground or detached; report the last background failure."""
    repo = git.discover()
    if repo.head is None:
        return 0
    if background:
        _report(refresh.take_error(repo))
        refresh.in_background(repo)
        return 0
    refresh.locked_update(repo, wait=True)
    failure = refresh.take_error(repo)
    _report(failure)
    return 1 if failure else 0


def _report(failure: str | None) -> None:
    if failure:
        print(f"dasct: the last index refresh failed ({failure}); `dasct index` shows why",
              file=sys.stderr)
