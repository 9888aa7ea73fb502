"""What a full index rebuild costs against the git it reads and against blaming HEAD.

    python bench/rebuild.py REPO [--runs 3] [--jobs N] [--json OUT]

Interleaves, `--runs` times, so that machine noise hits all of them alike:

1. `dasct index --rebuild --format json` in REPO (its `ignored_revs_seconds`: the time
   spent on the commits of `.git-blame-ignore-revs`);
2. the git stream the index reads, exactly as replay_log.py asks for it (`git log
   --topo-order --reverse -m -p --raw -U0 -w -M ...` through dasct's own git runner, so
   with the same pinned settings), read to the end;
3. `git log -p --first-parent` of HEAD (what a person calls "the history");
4. `git blame -w` of every file at HEAD (ignore-revs honoured as dasct does), on `--jobs`
   workers: the obvious alternative to an index.

Prints medians and the ratios rebuild/stream and rebuild/blame-all. Issue 8 §7's goal:
at most 2x the stream, and less than blaming every file at HEAD in parallel.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from blame_oracle import blame, files_at_head

from dasct import diff, git

DASCT = (sys.executable, "-m", "dasct")


def rebuild(repo: Path) -> tuple[float, dict[str, object]]:
    started = time.perf_counter()
    out = subprocess.run((*DASCT, "index", "--rebuild", "--format", "json"), cwd=repo,
                         capture_output=True, check=True, text=True).stdout
    return time.perf_counter() - started, json.loads(out)


def _drain(*args: str, repo: Path) -> float:
    started = time.perf_counter()
    with git.stream(*args, cwd=repo) as out:
        while out.read(1 << 20):
            pass
    return time.perf_counter() - started


def stream(repo: Path) -> float:
    # replay_log.sections' command, word for word.
    return _drain("log", "--topo-order", "--reverse", "-m", "--oneline", "--no-abbrev-commit",
                  "--no-decorate", *diff.PATCH_OPTIONS, "HEAD", "--", repo=repo)


def first_parent(repo: Path) -> float:
    return _drain("log", "-p", "--first-parent", "HEAD", "--", repo=repo)


def blame_all(repo: Path, jobs: int) -> float:
    started = time.perf_counter()
    files = files_at_head(repo)
    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(lambda p: blame(repo, p), files))
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("repo", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--json", type=Path, help="write the figures here too")
    parser.add_argument("--no-blame", action="store_true",
                        help="leave out blaming HEAD (minutes on a large repository)")
    args = parser.parse_args(argv)
    repo = args.repo.resolve()
    times: dict[str, list[float]] = {"rebuild": [], "stream": [], "first_parent": [],
                                     "blame_all": [], "ignored_revs": []}
    report: dict[str, object] = {}
    for run in range(args.runs):
        seconds, report = rebuild(repo)
        times["rebuild"].append(seconds)
        times["ignored_revs"].append(float(report.get("ignored_revs_seconds", 0.0)))
        times["stream"].append(stream(repo))
        times["first_parent"].append(first_parent(repo))
        if not args.no_blame:
            times["blame_all"].append(blame_all(repo, args.jobs))
        print(f"run {run + 1}: " + ", ".join(f"{k} {v[-1]:.1f}s" for k, v in times.items() if v),
              file=sys.stderr)
    med = {k: statistics.median(v) for k, v in times.items() if v}
    head = git.run("rev-parse", "HEAD", cwd=repo).decode().strip()
    figures = {
        "repo": str(repo), "head": head, "runs": args.runs, "jobs": args.jobs,
        "commits": report.get("commits_replayed"), "files": report.get("files"),
        "seconds": {k: round(v, 2) for k, v in med.items()},
        "rebuild_over_stream": round(med["rebuild"] / med["stream"], 2),
        "rebuild_over_blame_all": (round(med["rebuild"] / med["blame_all"], 2)
                                   if "blame_all" in med else None),
        "rebuild_over_first_parent": round(med["rebuild"] / med["first_parent"], 2),
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
