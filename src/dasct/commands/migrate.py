"""`dasct migrate`: run due triggers into an environment, revert, resolve, status, trace,
unlock."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from dasct import config, git
from dasct.commands.table import print_table

if TYPE_CHECKING:
    from dasct.migrate.environment import Environment



def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The nested subcommands: run, revert, resolve, status, trace, unlock."""
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sub.add_parser("run", help="migrate every due trigger (what the nightly CI calls); "
                       "exit 1 when one was refused, held, expired, rolled back or escalated")
    p.add_argument("--env", required=True, help="environment name (model, production, ...)")
    p.add_argument("--now", action="store_true", help="run even outside the allowed windows, "
                   "or in a gated environment (production) that has none (a freeze still wins)")
    p.add_argument("--dry-run", action="store_true", help="print the plan; change nothing")
    p.add_argument("--break-stale-lock", action="store_true",
                   help="break a lock whose holder is provably gone (dead pid here, or expired)")
    # Tests: pretend it is TIME (UTC unless an offset); a simulated time records no expiry.
    p.add_argument("--at", metavar="TIME", help=argparse.SUPPRESS)
    p = sub.add_parser("revert", help="restore the environment to before enhancement ID")
    p.add_argument("id", metavar="ID")
    p.add_argument("--env", required=True)
    p.add_argument("--cascade", action="store_true",
                   help="first revert later enhancements that changed the same items")
    p = sub.add_parser("resolve", help="clear the needs-attention mark after a failed restore")
    p.add_argument("--env", required=True)
    p.add_argument("--note", default="", help="what was done, for the audit log")
    p = sub.add_parser("status", help="lock, escalation and inventory of an environment")
    p.add_argument("--env", required=True)
    p = sub.add_parser("trace", help="the forensic traces kept around failures; with ID, "
                       "the newest one naming it, checked against the audit log")
    p.add_argument("id", metavar="ID", nargs="?")
    p.add_argument("--env", required=True)
    p.add_argument("--all", action="store_true", dest="every",
                   help="every kept trace naming ID, oldest first")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p = sub.add_parser("unlock", help="show the lock; with --force break it if it is stale; "
                       "exit 1 while it stays locked")
    p.add_argument("--env", required=True)
    p.add_argument("--force", action="store_true")


def _when(text: str | None) -> datetime | None:
    if not text:
        return None
    from dasct.migrate.create import parse_time  # the one rule of --at (UTC unless an offset)

    return parse_time(text)


def run(args: argparse.Namespace) -> int:
    """Dispatch to the chosen action."""
    from dasct.migrate import engine, manual
    from dasct.migrate.environment import environment

    repo = git.discover()
    cfg = config.load(repo.root)
    env = environment(cfg, args.env, repo.root)
    if args.action == "trace":  # read-only, from the state (a remote host's: its mirror)
        from dasct.commands import trace

        return trace.show(env, args.id, fmt=args.format, every=args.every)
    if env.remote is not None:
        return _remote(cfg, env, args)
    if args.action == "run":
        result = engine.run(env, now=_when(args.at), ignore_window=args.now,
                            dry_run=args.dry_run, break_stale_lock=args.break_stale_lock)
        return result.exit_code
    if args.action == "revert":
        from dasct.migrate import revert

        return revert.revert(env, args.id, cascade=args.cascade).exit_code
    if args.action == "resolve":
        manual.resolve(env, note=args.note)
        return 0
    if args.action == "unlock":
        # Exit 1 while the environment stays locked, so a script never takes it for free.
        return 0 if manual.unlock(env, force=args.force) else 1
    return status(env=env)


def _remote(cfg: config.Config, env: Environment, args: argparse.Namespace) -> int:
    """The action on every host of a remote environment: the engine runs there."""
    from dasct.remote import fleet, runner

    action = args.action
    chosen: dict[str, Callable[[], dict[str, Any]]] = {
        "run": lambda: {"at": args.at, "now": args.now, "dry_run": args.dry_run,
                        "break_stale_lock": args.break_stale_lock},
        "revert": lambda: {"id": args.id, "cascade": args.cascade},
        "resolve": lambda: {"note": args.note},
        "unlock": lambda: {"force": args.force},
        "status": lambda: {},
    }
    wanted = chosen[action]()
    code = fleet.run(cfg, env, action, wanted)
    if action != "status":
        return code
    assert env.remote is not None
    for target in env.remote.targets:  # each host's state, as its mirror now holds it
        print(f"== {target.label} ({target.root})")
        status(env=runner.host_view(env, target))
    return code


def status(*, env: Environment) -> int:
    """Print the lock, the escalation mark, the deployments and the inventory of env."""
    from dasct.migrate import inventory as inv
    from dasct.migrate import lock as lk
    from dasct.migrate.session import needs_attention

    holder = lk.read(env.state_dir)
    from dasct.redact import mask_urls

    print(f"{env.name}: root {env.root}, database {mask_urls(env.database)}")
    print(f"lock: {holder.describe() if holder else 'free'}")
    marker = needs_attention(env.state_dir)
    print(f"needs attention: {marker['trigger'] if marker else 'no'}")
    from dasct import notify
    from dasct.migrate import archive
    from dasct.migrate import trigger as trig

    waiting = [p.stem for p in trig.pending(env.staging, env.name)
               if inv.outcome(env.state_dir, p.stem) is None]
    print(f"pending triggers: {', '.join(waiting) or 'none'}")
    print(f"notifications waiting in the outbox: {len(notify.Outbox(env.state_dir).waiting())}")
    kept = [a.id for a in archive.all_archives(env.state_dir)]
    print(f"archives retained: {', '.join(kept) or 'none'}")
    data = inv.load(env.state_dir)
    deployments = [
        (tid, dep["status"], _standing(env, tid),
         time.strftime("%Y-%m-%d %H:%M", time.gmtime(dep["deployed_at"])), str(len(dep["items"])))
        for tid, dep in sorted(data["deployments"].items(), key=lambda kv: kv[1]["deployed_at"])
    ]
    print("deployments (warranty WP/claimed/CP as recorded, or the sign-off in an environment "
          "that gates another; UTC):")
    print_table(("ENHANCEMENT", "STATUS", "WARRANTY", "DEPLOYED", "ITEMS"), deployments)
    print("inventory:")
    print_table(("ITEM", "ENHANCEMENT", "SHA256"),
                 [(item, entry["enhancement"], entry["sha256"][:12])
                  for item, entry in sorted(data["items"].items())])
    return 0


def _standing(env: Environment, tid: str) -> str:
    """The recorded warranty of tid in env, or its sign-off where env gates another."""
    from dasct.migrate import promotion, warranty

    if env.gates:
        signed = promotion.state(env, tid)
        return signed.state if signed else "-"
    held = warranty.state(env, tid)
    if held is None and warranty.awaiting(env, tid):
        return "awaiting customer sign-off"
    return held.state if held else "-"
