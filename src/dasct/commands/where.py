"""`dasct where DEFECT|ID|PATH`: in which environments an enhancement, a defect's fix or
an item is deployed, at which git revision, since when."""

from __future__ import annotations

import argparse
import json

from dasct import config, git
from dasct.commands.table import print_table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `dasct where`."""
    parser.add_argument("query", metavar="DEFECT|ID|PATH",
                        help="a defect key, an enhancement (trigger) id, or a deployed item "
                        "(a path, file:PATH or sql:NAME)")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--at", metavar="TIME", help=argparse.SUPPRESS)  # as `dasct status`


def run(args: argparse.Namespace) -> int:
    """Print where the query is; exit 1 when nothing of that name is known."""
    from dasct.commands.status import at
    from dasct.migrate import status, where
    from dasct.migrate.environment import environment, per_host

    repo = git.discover()
    cfg = config.load(repo.root)
    report = status.report(cfg, repo.root, now=at(args.at))
    envs = [v for name in cfg.environments for v in per_host(environment(cfg, name, repo.root))]
    found = where.where(report, envs, args.query, path=git.repo_path(repo, args.query))
    if args.format == "json":
        print(json.dumps(found.as_json(), indent=2, sort_keys=True, ensure_ascii=False))
        return 0
    what = []
    if found.enhancement:
        what.append(f"enhancement {found.query}")
    if found.defect:
        what.append(f"defect {found.query}, fixed by {', '.join(found.defect)}")
    if found.item:
        what.append(f"item {found.item}")
    print(f"{found.query}: {'; '.join(what)} (dates UTC)")
    print_table(("ENVIRONMENT", "ENHANCEMENT", "ITEM", "STATE", "SINCE", "REVISION", "SHA256",
                  "NOTE"),
                 [(loc.environment, loc.enhancement, loc.item or "-", loc.state,
                   loc.date or "-", (loc.revision or "-")[:12], (loc.sha256 or "-")[:12],
                   "; ".join(f"{i} since changed by {o}" for i, o in loc.replaced))
                  for loc in found.locations])
    return 0
