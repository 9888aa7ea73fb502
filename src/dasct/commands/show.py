"""`dasct show DEFECT`: the commits linked to a defect and the lines it still protects."""

from __future__ import annotations

import argparse
import json
from collections import defaultdict

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
    commits = [snap.sha(i) for i, keys in sorted(snap.links.items()) if defect in keys]
    lines: dict[str, list[int]] = defaultdict(list)
    for path, n, defects, _ in check.protected_lines(snap, cfg):
        if defect in defects:
            lines[path].append(n)
    subjects = git.subjects(repo, commits)
    if fmt == "json":
        print(json.dumps({
            "defect": defect,
            "commits": [{"commit": c, "subject": subjects.get(c, "")} for c in commits],
            "lines": [{"path": p, "line": n} for p, ns in lines.items() for n in ns],
        }, indent=2, ensure_ascii=False))
        return 0 if commits else 1
    if not commits:
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
    return 0
