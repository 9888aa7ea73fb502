"""`dasct stats`: where the protected lines at HEAD are, so a team can see its noise.

Protected lines by defect, by kind (kinds.py), by path class (`[stats] tests` and `docs`
globs; the rest is source), and the fix commits that protect the most lines: the ones a
team may unlink with `[defects] ignore_commits` or cap with `max_lines_per_commit`.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter

from dasct import config, git, kinds, render, settings

CLASSES = ("source", "tests", "docs")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--top", type=int, default=10, metavar="N",
                        help="how many defects and fix commits the text lists (default 10)")


def run(args: argparse.Namespace) -> int:
    return main(fmt=args.format, top=max(args.top, 0))


def path_class(path: str, stats: config.StatsConfig) -> str:
    """tests, docs or source, by the first `[stats]` glob list path matches."""
    if settings.matches_glob(path, stats.tests):
        return "tests"
    if settings.matches_glob(path, stats.docs):
        return "docs"
    return "source"


def gather(repo: git.Repo, cfg: settings.Settings, stats: config.StatsConfig) -> dict[str, object]:
    """The figures of `dasct stats --format json` at HEAD."""
    lines = kinds.protected_at_head(repo, cfg)
    files = {x.path for x, _ in lines}
    by_defect: Counter[str] = Counter()
    by_kind: Counter[str] = Counter({k: 0 for k in kinds.KINDS})
    by_class: Counter[str] = Counter({c: 0 for c in CLASSES})
    by_commit: Counter[str] = Counter()
    commit_defects: dict[str, tuple[str, ...]] = {}
    classes = {path: path_class(path, stats) for path in files}
    for x, kind in lines:
        by_defect.update(x.defects)
        by_kind[kind] += 1
        by_class[classes[x.path]] += 1
        by_commit[x.commit] += 1
        commit_defects[x.commit] = x.defects
    subjects = git.subjects(repo, by_commit)
    return {
        "head": repo.head,
        "lines": len(lines),
        "files": len(files),
        "by_kind": dict(by_kind),
        "by_class": dict(by_class),
        "by_defect": [{"defect": d, "lines": c} for d, c in _ranked(by_defect)],
        "commits": [{"commit": sha, "lines": c, "defects": list(commit_defects[sha]),
                     "subject": subjects.get(sha, "")} for sha, c in _ranked(by_commit)],
    }


def _ranked(counts: Counter[str]) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def _figures(counts: object) -> str:
    assert isinstance(counts, dict)
    return ", ".join(f"{name} {count:,}" for name, count in counts.items())


def main(*, fmt: str, top: int = 10) -> int:
    """Print the figures; exit 0 (an empty index is a figure too)."""
    repo = git.discover()
    cfg = settings.load(repo)
    stats = config.load(repo.root).stats
    figures = gather(repo, cfg, stats)
    if fmt == "json":
        print(json.dumps(figures, indent=2, ensure_ascii=False))
        return 0
    by_defect, commits = figures["by_defect"], figures["commits"]
    assert isinstance(by_defect, list) and isinstance(commits, list)
    head = str(figures["head"] or "")[:12]
    print(f"dasct: {figures['lines']:,} protected lines in {figures['files']:,} files at "
          f"HEAD {head} ({render.plural(len(by_defect), 'defect')}, "
          f"{render.plural(len(commits), 'fix commit')})".replace(" at HEAD  (", " ("))
    print(f"  by kind: {_figures(figures['by_kind'])}")
    print(f"  by path: {_figures(figures['by_class'])}")
    if commits and top:
        print("  fix commits protecting the most lines:")
        for item in commits[:top]:
            defects = ", ".join(render.printable(d) for d in item["defects"])
            print(f"    {item['lines']:>7,}  {item['commit'][:12]}  {defects}  "
                  f"{render.printable(item['subject'])}".rstrip())
        print("  defects protecting the most lines:")
        for item in by_defect[:top]:
            print(f"    {item['lines']:>7,}  {render.printable(item['defect'])}")
        more = max(len(commits), len(by_defect)) - top
        if more > 0:
            print(f"  ({more:,} more; --top N or --format json)")
        print("  (a bulk commit that named a defect: [defects] ignore_commits = [\"SHA\"], "
              "or max_lines_per_commit = N; see docs/protected-lines.md)")
    return 0
