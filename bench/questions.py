"""Questions about old commits (issue 8 §3), ratios measured side by side.

    python bench/questions.py [--repo PATH] [--depths 10,1000,5000,8000]
                              [--rebuild-seconds S] [--walk 1000]
                              [--runs 3] [--baseline-src /work/main/src]

On the generated 10,000-commit repository (bench/run.py makes it) or on a clone of a real
one (--repo; dasct writes its index into that clone's .git), with the index warm at HEAD,
measures in interleaved rounds (each round runs every command once, so the machine's
noise hits them alike) the medians of:

1. `dasct index --rebuild` (which writes the checkpoints too), and with --baseline-src the
   same rebuild by another source tree (the code before checkpoints): their cost. On a
   real repository whose rebuild takes many minutes, --rebuild-seconds gives the figure
   of a rebuild measured before (say when) instead;
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
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
# bench/ is no package: its scripts import one another from this directory.
from run import DASCT, ENV, OUT, machine, repo_with


def _cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _quiet(cmd: tuple[str, ...], cwd: Path, env: dict[str, str] | None = None
           ) -> tuple[float, float]:
    """Wall-clock and CPU seconds (user + system, git children included) of cmd: on a
    shared machine the CPU time is the steadier of the two."""
    started, cpu = time.perf_counter(), _cpu()
    subprocess.run(cmd, cwd=cwd, env=env or ENV, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - started, _cpu() - cpu


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(("git", *args), cwd=repo, capture_output=True, text=True,
                          check=True).stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repo", type=Path, help="a clone (default: the generated one)")
    parser.add_argument("--depths", default="10,1000,5000,8000")
    parser.add_argument("--walk", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rebuild-seconds", type=float,
                        help="a rebuild's time measured before: not rebuilt in the rounds")
    parser.add_argument("--rebuild-cpu", type=float, help="that rebuild's CPU seconds")
    parser.add_argument("--baseline-src", type=Path,
                        help="a src/ directory whose dasct rebuilds beside this one")
    args = parser.parse_args()
    if (args.rebuild_seconds is None) != (args.rebuild_cpu is None):
        parser.error("--rebuild-seconds and --rebuild-cpu go together")
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
    commands: dict[str, tuple[tuple[str, ...], dict[str, str] | None]] = {}
    if args.rebuild_seconds is None:
        commands["rebuild"] = ((*DASCT, "index", "--rebuild", "--quiet"), None)
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
    cpu_samples: dict[str, list[float]] = {k: [] for k in commands}
    for _ in range(args.runs):
        for name, (cmd, env) in commands.items():
            wall, cpu = _quiet(cmd, repo, env)
            samples[name].append(wall)
            cpu_samples[name].append(cpu)
        # The baseline's rebuild leaves the checkpoints of this one in place (it does not
        # know them); the next round's questions then use the same ones.
    med = {k: statistics.median(v) for k, v in samples.items()}
    cpu_med = {k: statistics.median(v) for k, v in cpu_samples.items()}
    rebuild = med.get("rebuild", args.rebuild_seconds or 0.0)
    rebuild_cpu = cpu_med.get("rebuild", args.rebuild_cpu or 0.0)
    if args.rebuild_seconds is not None:
        print(f"rebuild: {rebuild:.2f} s, {rebuild_cpu:.2f} s CPU as given "
              "(--rebuild-seconds, --rebuild-cpu), not measured here")
    log = med[f"git log -p {walk}"]
    log_cpu = cpu_med[f"git log -p {walk}"]
    each = f"check --each {walk}"
    rows = []
    print(f"\nmedians of {args.runs} interleaved runs, wall-clock | CPU (ratios: wall | CPU):")
    for name, seconds in med.items():
        cpu = cpu_med[name]
        if name.startswith("check --commit"):
            ratio = (f"{seconds / rebuild:.1%} | {cpu / rebuild_cpu:.1%} of the rebuild "
                     "(target <= 10%)")
        elif name.startswith("check --each"):
            ratio = f"{seconds / log:.2f}x | {cpu / log_cpu:.2f}x git log -p (target <= 2x)"
        elif name == "rebuild, baseline":
            ratio = (f"this rebuild is {rebuild / seconds:.2f}x | {rebuild_cpu / cpu:.2f}x "
                     "the baseline's")
        elif name.startswith("git log"):
            ratio = f"the walk is {med[each] / seconds:.2f}x | {cpu_med[each] / cpu:.2f}x this"
        else:
            ratio = ""
        rows.append({"what": name, "seconds": round(seconds, 3), "cpu": round(cpu, 3),
                     "ratio": ratio})
        print(f"  {name:<44} {seconds:8.2f} s | {cpu:8.2f} s  {ratio}")
    chain = int(_git(repo, "rev-list", "--count", walk))
    print(f"  ({walk} holds {chain} commits in all)")
    OUT.mkdir(exist_ok=True)
    out = OUT / f"questions-{repo.name}.json"
    out.write_text(json.dumps({"repo": str(repo), "head": _git(repo, "rev-parse", "HEAD"),
                               "index": report, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
