"""`dasct show DEFECT`: the commits linked to a defect and the lines it still protects."""

from __future__ import annotations

import argparse
import json
from collections import defaultdict

from dasct import check, git, index, render, settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("defect", help="a defect key, e.g. PROJ-7 or #12")
    parser.add_argument("--format", choices=("text", "json"), default="text")


def run(args: argparse.Namespace) -> int:
    return main(defect=args.defect, fmt=args.format)


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
        print(f"dasct: no commit names {defect}")
        return 1
    print(f"{defect}: {len(commits)} linked commit{'s' * (len(commits) != 1)}")
    for c in commits:
        print(f"  {c[:12]} {subjects.get(c, '')}")
    if lines:
        print("  protects at HEAD:")
        for path, ns in lines.items():
            print(f"    {path}:{render.ranges(ns)}")
    else:
        print("  protects no line at HEAD any more")
    return 0
