"""`dasct warranty check|claim|show`: the warranty of enhancements in a final environment.

`check` records the transitions that are due (WP -> CP), as the next `migrate run` would;
`claim` records a defect reported against an enhancement during its warranty; `show`
prints each enhancement's warranty state. See dasct.migrate.warranty.
"""

from __future__ import annotations

import argparse

from dasct import config, git


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The nested subcommands: check, claim, show."""
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sub.add_parser("check", help="complete every warranty that is due (WP -> CP)")
    p.add_argument("--env", default="production", metavar="ENV")
    p = sub.add_parser("claim", help="record a defect reported during the warranty of ID")
    p.add_argument("id", metavar="ID")
    p.add_argument("--env", default="production", metavar="ENV")
    p.add_argument("--reason", required=True, metavar="TEXT", help="what went wrong")
    p = sub.add_parser("show", help="the warranty state of every enhancement in ENV")
    p.add_argument("--env", default="production", metavar="ENV")


def run(args: argparse.Namespace) -> int:
    """Dispatch to the chosen action."""
    from dasct.migrate import inventory, warranty
    from dasct.migrate.environment import environment

    repo = git.discover()
    env = environment(config.load(repo.root), args.env, repo.root)
    if args.action == "check":
        warranty.check_now(env)
        return 0
    if args.action == "claim":
        warranty.claim(env, args.id, reason=args.reason, repo_root=repo.root)
        return 0
    if not warranty.applies(env):
        print(f"{env.name} keeps no warranties: it gates {', '.join(env.gates)}")
        return 0
    shown = 0
    for tid in sorted(inventory.load(env.state_dir)["deployments"]):
        s = warranty.state(env, tid)
        if s is not None:
            shown += 1
            print(f"{tid}  {s.state}  since {s.since}  until {s.until}  claims {s.claims}")
    if not shown:
        print(f"{env.name}: no enhancement under warranty")
    return 0
