"""`dasct ci record`: what CI runs after a push to the main branch — every new commit's
touches become revalidation requests in the ledger, and tickets in the trackers."""

from __future__ import annotations

import argparse
import json
import sys

from dasct import config, git, qarecord, redact, render, settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    r = sub.add_parser("record", help="record the touches of each new commit and file "
                       "revalidation tickets (resumes after the last recorded commit)")
    r.add_argument("--range", metavar="A..B", help="the commits to record (default: after "
                   "the last recorded one, to HEAD)")
    r.add_argument("--no-push", action="store_true", help="keep the ledger local")
    r.add_argument("--format", choices=("text", "json"), default="text")


def run(args: argparse.Namespace) -> int:
    repo = git.discover()
    cfg = config.load(repo.root)
    redact.configure(cfg)
    done = qarecord.record(repo, cfg, settings.load(repo), args.range, push=not args.no_push)
    sent = done.sent
    delivered, failed, waiting = sent.delivered, sent.failed, sent.waiting
    if args.format == "json":
        print(json.dumps({
            "range": done.spec, "commits": done.commits, "already_recorded": done.known,
            "requests": [{"key": r.data["key"], "defect": r.data["defect"],
                          "commit": r.data["commit"], "title": r.data["ticket"]["title"]}
                         for r in done.new],
            "sent": {"delivered": delivered, "failed": failed, "waiting": waiting},
            "waiting_because": list(sent.reasons),
            "warranty_claims": list(done.claims),
        }, indent=2, ensure_ascii=False))
        return 0
    for r in done.new:
        print(f"dasct: {render.printable(r.data['ticket']['title'])}")
    print(f"dasct: {done.spec}: {render.plural(done.commits, 'commit')} recorded, "
          f"{render.plural(len(done.new), 'revalidation request')}"
          + (f" ({done.known} already recorded)" if done.known else "")
          + f"; tickets: {delivered} sent, {failed} failed, {waiting} waiting")
    for line in done.claims:
        print(f"dasct: warranty: {line}")
    for reason in sent.reasons:
        print(f"dasct: waiting: {reason}", file=sys.stderr)
    return 0
