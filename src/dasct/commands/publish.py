"""`dasct publish --env ENV`: an environment's promoted triggers as signed TUF releases.

Runs in CI after promotion staged triggers for ENV: release N+1 holds every trigger ever
published for ENV plus the new ones (docs/agent.md, "Publishing"). `--generate-keys DIR`
makes a key per role; `--rotate ROLE --new-key SOURCE` replaces a role's keys.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from dasct import config, git
from dasct.errors import DasctError

if TYPE_CHECKING:
    from dasct.agent.publish import Staged

ROLES = ("root", "targets", "snapshot", "timestamp")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `dasct publish`."""
    parser.add_argument("--env", metavar="ENV", help="the environment whose releases to publish")
    parser.add_argument("--generate-keys", metavar="DIR", type=Path,
                        help="write a fresh Ed25519 key per role into DIR (0600) and print "
                        "the [publish] table; publishes nothing")
    parser.add_argument("--rotate", choices=ROLES, metavar="ROLE",
                        help="replace ROLE's keys by --new-key through a new root version")
    parser.add_argument("--new-key", action="append", default=[], metavar="SOURCE",
                        help="env:VAR or file:PATH of a new key for --rotate (repeatable)")
    parser.add_argument("--format", choices=("text", "json"), default="text")


def staged(env: str, cfg: config.Config, root: Path) -> list[Staged]:
    """The verified triggers staged for env, with their payloads."""
    from dasct.agent.publish import Staged
    from dasct.migrate import trigger as trig
    from dasct.migrate import trigger_check as trigc
    from dasct.migrate import trigger_read as trigr
    from dasct.migrate.environment import environment

    where = environment(cfg, env, root)
    found: list[Staged] = []
    for path in trig.pending(where.staging, env):
        t = trigr.load(path, environments=[env], key=where.key,
                       previous_keys=where.previous_keys,
                       require_signature=where.require_signature)
        trigc.check_payloads(t)
        found.append(Staged(
            tid=t.id, document=path.read_bytes(),
            payloads={n: trigc.read_payload(where.staging, n) for n in t.payloads()},
            defects=t.defects, restart=any(c.kind == "restart" for c in t.commands)))
    return found


def run(args: argparse.Namespace) -> int:
    """Publish, generate keys or rotate; print what was written."""
    from dasct.agent import publish, tufkeys

    if args.generate_keys is not None:
        print(tufkeys.generate(args.generate_keys))
        return 0
    if not args.env:
        raise DasctError("dasct publish: --env ENV is required (or --generate-keys DIR)")
    if bool(args.rotate) != bool(args.new_key):
        raise DasctError("dasct publish: --rotate ROLE and --new-key SOURCE go together")
    repo = git.discover()
    cfg = config.load(repo.root)
    found = staged(args.env, cfg, repo.root)
    out = publish.publish(cfg.publish, env=args.env, system=cfg.migrate.system,
                          staged=found, base=repo.root,
                          rotate=(args.rotate, args.new_key) if args.rotate else None)
    for warning in out.warnings:
        print(f"dasct: warning: {warning}", file=sys.stderr)
    if args.format == "json":
        print(json.dumps({"env": out.env, "version": out.version, "root": out.root_version,
                          "new_triggers": list(out.new_triggers), "signed": out.signed,
                          "warnings": out.warnings}, indent=2, sort_keys=True))
        return 0
    if out.new_triggers:
        print(f"published release {out.version} of {out.env}: "
              f"{len(out.new_triggers)} new trigger(s): {', '.join(out.new_triggers)}")
    elif out.version == 0:
        print(f"nothing to publish for {out.env}: no trigger is staged for it yet")
    else:
        print(f"nothing new to publish for {out.env}: release {out.version} is current")
    if args.rotate:
        print(f"rotated the {args.rotate} keys: root is now version {out.root_version}")
    if out.signed:
        print(f"signed: {', '.join(out.signed)}")
    return 0
