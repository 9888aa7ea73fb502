"""`dasct show DEFECT`: the commits linked to a defect and the lines it still protects."""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from typing import Any

from dasct import check, git, index, render, settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "defect", help="a defect key, e.g. PROJ-7 or '#12' (quoted: a shell drops # and "
                       "what follows as a comment)",
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")


def run(args: argparse.Namespace) -> int:
    return main(defect=args.defect, fmt=args.format)


def _did_you_mean(snap: index.Snapshot, defect: str) -> str:
    """A hint when the user typed 2208 for the key #2208 (an unquoted # starts a shell
    comment, so `#2208` must be written '#2208')."""
    if not defect.isdigit():
        return ""
    known = {k for keys in snap.links.values() for k in keys if k.endswith(f"#{defect}")}
    if not known:
        return ""
    quoted = " or ".join(f"dasct show '{k}'" for k in sorted(known))
    return f"; did you mean {quoted}? (quote it: the shell drops an unquoted # and the rest)"


def main(*, defect: str, fmt: str) -> int:
    """Print the defect's linked commits and its protected lines at HEAD."""
    repo = git.discover()
    cfg = settings.load(repo)
    snap = index.snapshot_at(repo, cfg, repo.head)
    # A commit linked through the ledger (an alias, linklines.py) is listed once, as itself.
    commits = list(dict.fromkeys(
        snap.sha(i) for i, keys in sorted(snap.links.items()) if defect in keys))
    history = _ledger_history(repo, defect)
    lines: dict[str, list[int]] = defaultdict(list)
    for x in check.protected_lines(snap, cfg):
        if defect in x.defects:
            lines[x.path].append(x.line)
    subjects = git.subjects(repo, commits)
    if fmt == "json":
        print(json.dumps({
            "defect": defect,
            "commits": [{"commit": c, "subject": subjects.get(c, "")} for c in commits],
            "lines": [{"path": p, "line": n} for p, ns in lines.items() for n in ns],
            "ledger": [{"type": r.type, "at": r.at, "by": r.by, "data": dict(r.data)}
                       for r in history],
        }, indent=2, ensure_ascii=False))
        return 0 if commits or history else 1
    if not commits and not history:
        print(f"dasct: no commit names {render.printable(defect)}{_did_you_mean(snap, defect)}")
        return 1
    print(f"{render.printable(defect)}: {render.plural(len(commits), 'linked commit')}")
    for c in commits:
        print(f"  {c[:12]} {render.printable(subjects.get(c, ''))}")
    if lines:
        print("  protects at HEAD:")
        for path, ns in lines.items():
            print(f"    {render.quote_path(path)}:{render.ranges(ns)}")
    else:
        print("  protects no line at HEAD any more")
    if history:
        print("  ledger:")
        for r in history:
            print(f"    {r.at} {r.type:<8} {render.printable(_describe(r))} "
                  f"(by {render.printable(r.by)})")
    return 0


def _ledger_history(repo: git.Repo, defect: str) -> list[Any]:
    """The ledger's records about defect: links, requests, tickets, decisions."""
    from dasct import config, qa

    book = qa.ledger_of(repo, config.load(repo.root))
    keys = {r.data.get("key") for r in book.records("request") if r.data.get("defect") == defect}
    return [r for r in book.records()
            if r.data.get("defect") == defect or (r.type in ("filed", "told")
                                                   and r.data.get("key") in keys)]


def _describe(r: Any) -> str:
    d = r.data
    commit = str(d.get("commit", ""))[:12]
    if r.type in ("link", "unlink"):
        return f"{d.get('path')}:{_spans(d.get('lines'))} of {commit} ({d.get('asked', '')})"
    if r.type == "request":
        return f"revalidation of {commit}: {d.get('ticket', {}).get('title', '')}"
    if r.type == "filed":
        return f"ticket {d.get('tracker')} {d.get('id')} {d.get('url', '')}".rstrip()
    if r.type == "accept":
        return f"touch by {commit} accepted: its new lines are the baseline" + (
            f" (in {d['via']})" if d.get("via") else "")
    if r.type == "reject":
        return f"touch by {commit} rejected: regression: {d.get('reason', '')}" + (
            f" (in {d['via']})" if d.get("via") else "")
    if r.type == "evidence":
        verified = len(d.get("verified", []))
        return f"trigger tests of {str(d.get('fix', ''))[:12]}: {verified} verified"
    return str(r.type)


def _spans(value: object) -> str:
    if isinstance(value, list):
        return ",".join(f"{a}-{b}" if a != b else f"{a}" for a, b in value)
    return "?"
