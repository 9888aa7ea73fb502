"""`dasct ledger log|push|fetch`: read the ledger, share it with the remote (docs/ledger.md)."""

from __future__ import annotations

import argparse
import json

from dasct import config, git, render
from dasct.ledger import Ledger


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `dasct ledger`."""
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    log = sub.add_parser("log", help="the ledger's records, oldest first (local branch and "
                         "the remote-tracking one)")
    log.add_argument("--type", action="append", default=[], dest="types", metavar="TYPE",
                     help="only records of this type (repeatable)")
    log.add_argument("--format", choices=("text", "json"), default="text")
    sub.add_parser("push", help="push the ledger branch, merging by union when another "
                   "writer pushed first")
    sub.add_parser("fetch", help="fetch the remote's ledger branch")


def run(args: argparse.Namespace) -> int:
    return main(action=args.action, types=getattr(args, "types", []),
                fmt=getattr(args, "format", "text"))


def main(*, action: str, types: list[str], fmt: str) -> int:
    """Run one ledger action in the current repository."""
    repo = git.discover()
    cfg = config.load(repo.root)
    ledger = Ledger(repo, cfg.qa.ledger_branch, cfg.qa.ledger_remote)
    if action in ("push", "fetch") and not ledger.remote:
        print(f"dasct: the ledger is local ([qa] ledger_remote is empty): nothing to {action}")
        return 0
    if action == "push":
        ledger.push()
        print(f"dasct: ledger {ledger.branch} pushed to {ledger.remote}")
        return 0
    if action == "fetch":
        ledger.fetch()
        return 0
    records = ledger.records(*types)
    if fmt == "json":
        print(json.dumps({"records": [
            {"id": r.id, "type": r.type, "at": r.at, "by": r.by, "data": r.data}
            for r in records]}, indent=2, ensure_ascii=False))
        return 0
    for r in records:
        data = json.dumps(r.data, sort_keys=True, ensure_ascii=False)
        print(render.printable(f"{r.at}  {r.id[:12]}  {r.type:<9} {r.by}  {data}"))
    if not records:
        print(f"dasct: the ledger ({ledger.branch}) holds no records"
              + (f" of type {', '.join(types)}" if types else ""))
    return 0
