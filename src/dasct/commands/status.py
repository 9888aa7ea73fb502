"""`dasct status`: every enhancement and its state in each configured environment."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from dasct import config, git
from dasct.commands.table import print_table

if TYPE_CHECKING:
    from dasct.migrate.status import Report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `dasct status`."""
    parser.add_argument("--format", choices=("text", "json"), default="text")
    # Tests: pretend it is TIME (UTC unless an offset), as `migrate run --at` does.
    parser.add_argument("--at", metavar="TIME", help=argparse.SUPPRESS)


def at(text: str | None) -> datetime | None:
    """The hidden --at TIME of status and where (the one rule of --at: windows.instant)."""
    if not text:
        return None
    from dasct.migrate.windows import instant

    return instant(text)


def run(args: argparse.Namespace) -> int:
    """Print the states; exit 0 (a state that needs a person is news, not a failure)."""
    from dasct.migrate import status

    repo = git.discover()
    found = status.report(config.load(repo.root), repo.root, now=at(args.at))
    if args.format == "json":
        print(json.dumps(as_json(found), indent=2, sort_keys=True, ensure_ascii=False))
        return 0
    print_text(found)
    return 0


def as_json(found: Report) -> dict[str, Any]:
    """The documented `dasct-status` document (docs/inventory.md)."""
    return {
        "format": "dasct-status", "version": 1, "environments": list(found.environments),
        "enhancements": [
            {"id": e.id, "defects": list(e.defects), "commits": list(e.commits),
             "revision": e.revision,
             "environments": {env: found.state(e.id, env).as_json()
                              for env in found.environments}}
            for e in found.enhancements
        ],
    }


def print_text(found: Report) -> None:
    """One row per enhancement and environment, columns aligned, dates in UTC."""

    if not found.enhancements:
        print(f"no enhancement is known in {', '.join(found.environments) or 'any environment'}")
        return
    rows = []
    for e in found.enhancements:
        for env in found.environments:
            s = found.state(e.id, env)
            rows.append((e.id, ",".join(e.defects) or "-", (e.revision or "-")[:12], env,
                         s.state, s.date or "-", s.warranty or "-", s.detail))
    print(f"enhancements in {', '.join(found.environments)} (dates UTC):")
    print_table(("ENHANCEMENT", "DEFECTS", "REVISION", "ENVIRONMENT", "STATE", "DATE",
                  "WARRANTY", "DETAIL"), rows)
