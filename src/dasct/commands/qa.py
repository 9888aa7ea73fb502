"""`dasct qa ...`: QA's side of the loop — open revalidations, accept, reject, sync
decisions made in the trackers, send what waits, and the evidence known of a defect."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from dasct import config, git, qa, qadecide, redact, render, settings
from dasct.errors import DasctError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    ls = sub.add_parser("list", help="the open revalidation requests (the local tracker)")
    ls.add_argument("--format", choices=("text", "json"), default="text")
    for name, text in (("accept", "the defect still holds: the touching commit's new lines "
                                  "become its baseline"),
                       ("reject", "the defect regressed: its trackers and the commit's "
                                  "author are told")):
        p = sub.add_parser(name, help=text, description=text)
        p.add_argument("defect", help="a defect key, e.g. PROJ-7 or '#12' (quoted)")
        p.add_argument("--commit", required=True, metavar="REV", help="the touching commit")
        if name == "reject":
            p.add_argument("--reason", required=True, help="what regressed")
    sub.add_parser("sync", help="take the decisions made in the trackers into the ledger")
    sub.add_parser("flush", help="send the requests and notices still waiting")
    ev = sub.add_parser("evidence", help="the fix tests known of a defect and their outcomes")
    ev.add_argument("defect", help="a defect key (quoted when it starts with #)")
    ev.add_argument("--format", choices=("text", "json"), default="text")


def run(args: argparse.Namespace) -> int:
    repo = git.discover()
    cfg = config.load(repo.root)
    redact.configure(cfg)  # the trackers' credentials are secrets of every sink
    action: str = args.action
    if action == "list":
        return _list(repo, cfg, args.format)
    if action == "accept":
        stored = qadecide.accept(repo, cfg, settings.load(repo), args.defect, args.commit)
        lines = sum(b - a + 1 for spans in stored.data["lines"].values() for a, b in spans)
        print(f"dasct: accepted {render.printable(args.defect)} at "
              f"{stored.data['commit'][:12]}: {render.plural(lines, 'new line')} linked "
              "to it (the new baseline)")
        _refresh(repo)
        return 0
    if action == "reject":
        stored = qadecide.reject(repo, cfg, args.defect, args.commit, args.reason)
        told, waiting = _told(repo, cfg, stored.data["key"])
        who = [*told, f"the author ({stored.data['author']})"]
        print(f"dasct: rejected {stored.data['commit'][:12]} for "
              f"{render.printable(args.defect)}: recorded as a regression; told: "
              + (f"{', '.join(who[:-1])} and {who[-1]}" if told else who[0])
              + (f"; waiting: {', '.join(waiting)}" if waiting else ""))
        return 0
    if action == "sync":
        synced = qadecide.sync(repo, cfg, settings.load(repo))
        for defect, commit, verdict in synced.decided:
            print(f"dasct: {render.printable(defect)} at {commit[:12]}: {verdict} in the "
                  "tracker")
        print(f"dasct: {render.plural(len(synced.decided), 'decision')} taken from the "
              "trackers")
        for problem in synced.problems:
            print(f"dasct: qa sync: {problem}", file=sys.stderr)
        if any(verdict == "accepted" for _, _, verdict in synced.decided):
            _refresh(repo)
        return 0
    if action == "flush":
        sent = qa.flush(repo, cfg)
        print(f"dasct: {sent.delivered} sent, {sent.failed} failed, {sent.waiting} waiting")
        for reason in sent.reasons:
            print(f"dasct: waiting: {reason}", file=sys.stderr)
        return 0
    if action == "evidence":
        return _evidence(repo, cfg, args.defect, args.format)
    raise DasctError(f"unknown qa action {action!r}")  # argparse allows no other


def _told(repo: git.Repo, cfg: config.Config, key: str) -> tuple[list[str], list[str]]:
    """The trackers the regression of request key reached (the ledger's told records, so a
    tracker told by an earlier run counts), and the others, each with why it waits."""
    book = qa.ledger_of(repo, cfg)
    reached = {r.data.get("tracker") for r in book.records(qa.TOLD) if r.data.get("key") == key}
    box = qa.outbox(repo)
    told: list[str] = []
    waiting: list[str] = []
    for name in cfg.qa.trackers:
        if name in reached:
            told.append(name)
            continue
        row = box.find(f"{key}/reject/{name}")  # flush's outbox key of that regression
        waiting.append(f"{name} ({row.last_error})" if row and row.last_error else name)
    return told, waiting


def _refresh(repo: git.Repo) -> None:
    from dasct import refresh

    refresh.in_background(repo)  # the commit-time check reads the index as it is


def _list(repo: git.Repo, cfg: config.Config, fmt: str) -> int:
    book = qa.ledger_of(repo, cfg)
    items = qa.open_requests(book)
    if fmt == "json":
        print(json.dumps({"open": [_as_dict(o) for o in items]}, indent=2, ensure_ascii=False))
        return 0
    if not items:
        print("dasct: no open revalidation")
        return 0
    for o in items:
        d = o.request.data
        ticket = d["ticket"]
        owner = ticket.get("assignee") or qa.owner_of(cfg, d["defect"]) or "(no owner)"
        where = ", ".join(f"{t.data['tracker']} {t.data['id']}" for t in o.tickets)
        print(f"{render.printable(d['defect'])}  {d['commit'][:12]}  {owner}  "
              f"{render.printable(ticket['title'])}" + (f"  [{where}]" if where else ""))
    print(f"dasct: {render.plural(len(items), 'open revalidation')}")
    return 0


def _as_dict(o: qa.Open) -> dict[str, Any]:
    d = o.request.data
    return {"key": d["key"], "defect": d["defect"], "commit": d["commit"],
            "title": d["ticket"]["title"], "requested": o.request.at, "by": o.request.by,
            "probable_regression": d["ticket"].get("probable_regression", False),
            "tickets": [{"tracker": t.data["tracker"], "id": t.data["id"],
                         "url": t.data.get("url", "")} for t in o.tickets]}


def _evidence(repo: git.Repo, cfg: config.Config, defect: str, fmt: str) -> int:
    from dasct import evidence

    book = qa.ledger_of(repo, cfg)
    verified = [r.data for r in book.records(qa.EVIDENCE) if r.data.get("defect") == defect]
    outcomes = [{"commit": r.data["commit"], "at": r.at,
                 **r.data["ticket"].get("data", {}).get("evidence", {})}
                for r in qa.requests(book).values() if r.data.get("defect") == defect]
    fixes = sorted({f for r in qa.requests(book).values() if r.data.get("defect") == defect
                    for f in r.data.get("fixes", ())} | {str(v.get("fix")) for v in verified})
    tests = evidence.fix_tests(repo, fixes, cfg.qa.test_globs) if fixes else []
    if fmt == "json":
        print(json.dumps({"defect": defect, "fixes": fixes, "tests": tests,
                          "verified": verified, "outcomes": outcomes}, indent=2,
                         ensure_ascii=False))
        return 0
    from dasct import tickets

    info = tickets.commit_info(repo, fixes)
    print(evidence.describe(defect, fixes={f: info[f].subject if f in info else ""
                                           for f in fixes},
                            tests=tests, verifications=verified, outcomes=outcomes))
    return 0
