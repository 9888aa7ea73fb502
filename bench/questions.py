"""Questions about old commits (issue 8 §3), ratios measured side by side.

    python bench/questions.py [--repo PATH] [--depths 10,1000,5000,8900] [--walk 1000]
                              [--runs 3] [--baseline-src /work/main/src]

On the generated 10,000-commit repository (bench/run.py makes it) or on a clone of a real
one (--repo; dasct writes its index into that clone's .git), with the index warm at HEAD,
measures in interleaved rounds (each round runs every command once, so the machine's
noise hits them alike) the medians of:

1. `dasct index --rebuild` (which writes the checkpoints too), and with --baseline-src the
   same rebuild by another source tree (the code before checkpoints): their cost;
2. `dasct check --commit HEAD~D --format json` for each depth D, against the rebuild
   (target: at most 10% of it);
3. `dasct check --each HEAD~N..HEAD --format json` against `git log -p HEAD~N..HEAD` (every
   commit of the range, as the walk replays them all; target at most 2x), with
   `git log -p --first-parent` and `git log -m -p` of the same range beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
# bench/ is no package: its scripts import one another from this directory.
from run import DASCT, ENV, OUT, machine, repo_with


def _quiet(cmd: tuple[str, ...], cwd: Path, env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env or ENV, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(("git", *args), cwd=repo, capture_output=True, text=True,
                          check=True).stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repo", type=Path, help="a clone (default: the generated one)")
    parser.add_argument("--depths", default="10,1000,5000,8900")
    parser.add_argument("--walk", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline-src", type=Path,
                        help="a src/ directory whose dasct rebuilds beside this one")
    args = parser.parse_args()
    repo = args.repo or repo_with(10_000)
    depths = [int(d) for d in args.depths.split(",")]
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.2f} at the start")
    print(f"repository: {repo} at {_git(repo, 'rev-parse', 'HEAD')}, "
          f"{_git(repo, 'rev-list', '--count', 'HEAD')} commits, "
          f"{_git(repo, 'rev-list', '--first-parent', '--count', 'HEAD')} on the first-parent "
          f"chain")
    warm = subprocess.run((*DASCT, "index", "--format", "json"), cwd=repo, env=ENV,
                          capture_output=True, text=True, check=True)
    report = json.loads(warm.stdout)
    print(f"index: {report['action']} in {report['seconds']} s; "
          f"{report['checkpoints']} checkpoints, {report['checkpoint_bytes']:,} bytes; "
          f"snapshots {report['bytes']:,} bytes")

    walk = f"HEAD~{args.walk}..HEAD"
    commands: dict[str, tuple[tuple[str, ...], dict[str, str] | None]] = {
        "rebuild": ((*DASCT, "index", "--rebuild", "--quiet"), None),
    }
    if args.baseline_src:
        baseline_env = {**ENV, "PYTHONPATH": str(args.baseline_src.resolve())}
        commands["rebuild, baseline"] = ((*DASCT, "index", "--rebuild", "--quiet"),
                                         baseline_env)
    for d in depths:
        commands[f"check --commit HEAD~{d}"] = (
            (*DASCT, "check", "--commit", f"HEAD~{d}", "--format", "json"), None)
    commands[f"check --each {walk}"] = (
        (*DASCT, "check", "--each", walk, "--format", "json"), None)
    commands[f"git log -p {walk}"] = (("git", "log", "-p", walk), None)
    commands[f"git log -p --first-parent {walk}"] = (
        ("git", "log", "-p", "--first-parent", walk), None)
    commands[f"git log -m -p {walk}"] = (("git", "log", "-m", "-p", walk), None)

    samples: dict[str, list[float]] = {k: [] for k in commands}
    for _ in range(args.runs):
        for name, (cmd, env) in commands.items():
            samples[name].append(_quiet(cmd, repo, env))
        # The baseline's rebuild leaves the checkpoints of this one in place (it does not
        # know them); the next round's questions then use the same ones.
    med = {k: statistics.median(v) for k, v in samples.items()}
    rebuild = med["rebuild"]
    log = med[f"git log -p {walk}"]
    rows = []
    print(f"\nmedians of {args.runs} interleaved runs:")
    for name, seconds in med.items():
        if name.startswith("check --commit"):
            ratio = f"{seconds / rebuild:.1%} of the rebuild (target <= 10%)"
        elif name.startswith("check --each"):
            ratio = f"{seconds / log:.2f}x git log -p (target <= 2x)"
        elif name == "rebuild, baseline":
            ratio = f"this rebuild is {rebuild / seconds:.2f}x the baseline's"
        elif name.startswith("git log"):
            ratio = f"the walk is {med[f'check --each {walk}'] / seconds:.2f}x this"
        else:
            ratio = ""
        rows.append({"what": name, "seconds": round(seconds, 3), "ratio": ratio})
        print(f"  {name:<44} {seconds:8.2f} s  {ratio}")
    chain = int(_git(repo, "rev-list", "--count", walk))
    print(f"  ({walk} holds {chain} commits in all)")
    OUT.mkdir(exist_ok=True)
    out = OUT / f"questions-{repo.name}.json"
    out.write_text(json.dumps({"repo": str(repo), "head": _git(repo, "rev-parse", "HEAD"),
                               "index": report, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
