"""Benchmark of the commit-time check and the index (issue 2), ratios measured side by side.

    ./dev bench [--commits 10000] [--runs 7]

Generates (once, cached in bench/out/) a synthetic repository with git fast-import:
10,000 commits of which 1,000 fix commits, merges of side branches, 5 deep files of
5,000+ lines among 200 files. Then measures, interleaving the commands so that machine
noise hits all of them alike, the medians of:

1. `dasct check --staged` touching 10 hunks in 5 deep files (index warm) against the
   floor `python -c pass` + `git diff --cached -U0`, and against `git blame -w -L` over
   the same ranges;
2. `dasct index --rebuild` against `git log -p --first-parent`, and against `git blame -w`
   of every file at HEAD run in parallel on all cores;
3. the incremental update after one new commit on a 1,000- and a 10,000-commit history.

`--only scale|real|rss|pull` run the benchmarks of bench/scale.py instead (issue 8 §4).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"
DASCT = (sys.executable, "-m", "dasct")
# Exactly what the installed pre-commit hook runs (src/dasct/hooks/pre-commit).
HOOK = (sys.executable, "-c", "from dasct.cli import entry; entry()",
        "check", "--staged")
# Installed packages carry compiled bytecode; a PYTHONDONTWRITEBYTECODE inherited from a
# sandbox would make every run recompile dasct and measure the compiler instead.
ENV = {**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
       "GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": "b@example.com",
       "GIT_COMMITTER_NAME": "Bench", "GIT_COMMITTER_EMAIL": "b@example.com"}
DEEP = [f"core/deep{i}.py" for i in range(5)]
WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota",
         "kappa", "lambda", "mu"]


def _line(rng: random.Random) -> str:
    return "    " + " = ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 6)))


def generate(path: Path, commits: int, seed: int = 1) -> None:
    """Write a repository with `commits` commits through git fast-import."""
    rng = random.Random(seed)
    files: dict[str, list[str]] = {}
    for name in DEEP:
        files[name] = [_line(rng) for _ in range(rng.randint(5000, 6000))]
    for i in range(195):
        files[f"pkg{i % 12}/mod{i}.py"] = [_line(rng) for _ in range(rng.randint(20, 400))]
    subprocess.run(("git", "init", "-q", "-b", "main", str(path)), check=True)
    proc = subprocess.Popen(("git", "fast-import", "--quiet"), cwd=path,
                            stdin=subprocess.PIPE, env=ENV)
    assert proc.stdin is not None
    out = proc.stdin
    mark = 0
    when = 1_600_000_000

    def blob(lines: list[str]) -> int:
        nonlocal mark
        data = ("\n".join(lines) + "\n").encode()
        mark += 1
        out.write(b"blob\nmark :%d\ndata %d\n" % (mark, len(data)) + data + b"\n")
        return mark

    def commit(ref: str, message: str, changes: dict[str, int], parents: list[int]) -> int:
        nonlocal mark, when
        mark += 1
        when += 60
        msg = message.encode()
        out.write(b"commit %s\nmark :%d\n" % (ref.encode(), mark))
        out.write(b"committer Bench <b@example.com> %d +0000\n" % when)
        out.write(b"data %d\n%s\n" % (len(msg), msg))
        for i, p in enumerate(parents):
            out.write(b"%s :%d\n" % (b"from" if i == 0 else b"merge", p))
        for name, m in changes.items():
            out.write(b"M 100644 :%d %s\n" % (m, name.encode()))
        out.write(b"\n")
        return mark

    names = sorted(files)
    head = commit("refs/heads/main", "initial import",
                  {n: blob(files[n]) for n in names}, [])
    made = 1
    fixes = 0
    while made < commits:
        if rng.random() < 0.05 and commits - made > 5:
            # A side branch of 2-3 commits on files main leaves alone meanwhile, merged.
            side_files = rng.sample(names[5:], 3)
            side = head
            for _ in range(rng.randint(2, 3)):
                name = rng.choice(side_files)
                _edit(rng, files[name])
                side = commit("refs/heads/side", f"side work {made}",
                              {name: blob(files[name])}, [side])
                made += 1
            main_name = rng.choice([n for n in names if n not in side_files])
            _edit(rng, files[main_name])
            head = commit("refs/heads/main", f"main work {made}",
                          {main_name: blob(files[main_name])}, [head])
            made += 1
            merged = {n: blob(files[n]) for n in side_files}
            head = commit("refs/heads/main", f"Merge side {made}", merged, [head, side])
            made += 1
            continue
        touched = rng.sample(DEEP, 1) if rng.random() < 0.3 else []
        touched += rng.sample(names[5:], rng.randint(1, 2))
        for name in touched:
            _edit(rng, files[name])
        message = f"change {made}"
        if fixes < commits // 10 and rng.random() < 0.16:
            fixes += 1
            message = f"Fix PROJ-{fixes}: a defect\n\nDetails of the fix."
        head = commit("refs/heads/main", message, {n: blob(files[n]) for n in touched}, [head])
        made += 1
    out.close()
    if proc.wait() != 0:
        raise SystemExit("git fast-import failed")
    subprocess.run(("git", "reset", "-q", "--hard", "main"), cwd=path, check=True)
    subprocess.run(("git", "branch", "-q", "-D", "side"), cwd=path, check=False)


def _edit(rng: random.Random, lines: list[str]) -> None:
    for _ in range(rng.randint(1, 4)):
        at = rng.randrange(len(lines))
        op = rng.random()
        if op < 0.6:
            lines[at] = _line(rng)
        elif op < 0.8:
            lines[at:at] = [_line(rng) for _ in range(rng.randint(1, 3))]
        elif len(lines) > 10:
            del lines[at : at + rng.randint(1, 2)]


def repo_with(commits: int) -> Path:
    path = OUT / f"repo-{commits}"
    if not (path / ".git").exists():
        print(f"generating a {commits}-commit repository in {path} ...", flush=True)
        started = time.perf_counter()
        generate(path, commits)
        print(f"  done in {time.perf_counter() - started:.1f}s", flush=True)
    return path


def run(cmd: tuple[str, ...] | list[str], cwd: Path) -> None:
    subprocess.run(cmd, cwd=cwd, env=ENV, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def timed(fn: Callable[[], None]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def medians(named: dict[str, Callable[[], None]], runs: int) -> dict[str, float]:
    """Run each callable `runs` times, interleaved, and return the medians in seconds."""
    samples: dict[str, list[float]] = {k: [] for k in named}
    for _ in range(runs):
        for name, fn in named.items():
            samples[name].append(timed(fn))
    return {k: statistics.median(v) for k, v in samples.items()}


def stage_ten_hunks(repo: Path, protected: bool, names: list[str] = DEEP, scan: bool = True
                    ) -> list[tuple[str, int]]:
    """Rewrite 2 lines in each of the 5 files `names` (10 hunks); return the lines touched.

    protected=True picks lines that fixed a defect (every hunk warns), else lines that
    did not (the common, silent commit); scan=False: lines at a third and two thirds,
    whatever they are (asking `dasct scan` would bring the index to HEAD first).
    """
    subprocess.run(("git", "reset", "-q", "--hard"), cwd=repo, check=True)
    hot: set[tuple[str, int]] = set()
    if scan:
        out = subprocess.run((*DASCT, "scan", "--format", "json"), cwd=repo, env=ENV,
                             capture_output=True, text=True, check=True).stdout
        hot = {(x["path"], x["line"]) for x in json.loads(out)["lines"]}
    ranges = []
    for name in names:
        path = repo / name
        lines = path.read_text(errors="surrogateescape").splitlines()
        candidates = [n for n in range(1, len(lines) + 1)
                      if not scan or ((name, n) in hot) == protected]
        for n in (candidates[len(candidates) // 3], candidates[2 * len(candidates) // 3]):
            lines[n - 1] = lines[n - 1] + " + 1"
            ranges.append((name, n))
        path.write_text("\n".join(lines) + "\n", errors="surrogateescape")
    subprocess.run(("git", "add", *names), cwd=repo, check=True)
    return ranges


def bench_check(repo: Path, runs: int, protected: bool) -> dict[str, float]:
    run((*DASCT, "index"), repo)  # warm
    ranges = stage_ten_hunks(repo, protected)

    def floor() -> None:
        run((sys.executable, "-c", "pass"), repo)
        run(("git", "diff", "--cached", "-U0"), repo)

    def blame() -> None:
        for name in DEEP:
            args = [a for n, line in ranges if n == name for a in ("-L", f"{line},{line}")]
            run(("git", "blame", "-w", *args, "HEAD", "--", name), repo)

    found = subprocess.run((*DASCT, "check", "--staged", "--format", "json"), cwd=repo,
                           capture_output=True, text=True, check=True).stdout
    result = medians({"check": lambda: run(HOOK, repo), "floor": floor, "blame": blame}, runs)
    result["findings"] = float(found.count('"defect"'))
    subprocess.run(("git", "reset", "-q", "--hard"), cwd=repo, check=True)
    return result


def bench_rebuild(repo: Path, runs: int) -> dict[str, float]:
    files = subprocess.run(("git", "ls-files"), cwd=repo, capture_output=True, text=True,
                           check=True).stdout.split()

    def parallel_blame() -> None:
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            list(pool.map(lambda f: run(("git", "blame", "-w", "HEAD", "--", f), repo), files))

    return medians({
        "rebuild": lambda: run((*DASCT, "index", "--rebuild"), repo),
        "log": lambda: run(("git", "log", "-p", "--first-parent"), repo),
        "blame_all": parallel_blame,
    }, runs)


def bench_incremental(repo: Path, runs: int) -> float:
    """Median time of `dasct index` after one new commit on top of an indexed HEAD."""
    start = subprocess.run(("git", "rev-parse", "HEAD"), cwd=repo, capture_output=True,
                           text=True, check=True).stdout.strip()
    run((*DASCT, "index"), repo)
    samples = []
    for i in range(runs):
        path = repo / DEEP[0]
        lines = path.read_text().splitlines()
        lines[100 + i] = lines[100 + i] + f" # {time.time_ns()}"
        path.write_text("\n".join(lines) + "\n")
        run(("git", "commit", "-q", "-am", f"Fix PROJ-{9000 + i}"), repo)
        samples.append(timed(lambda: run((*DASCT, "index"), repo)))
        run(("git", "reset", "-q", "--hard", start), repo)
    return statistics.median(samples)


def agreement(repo: Path) -> str:
    """Compare the index with `git blame -w` on every file at HEAD (the contract)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from dasct import git, index, settings

    r = git.discover(repo)
    snap = index.snapshot_at(r, settings.load(r), r.head)
    files = subprocess.run(("git", "ls-files"), cwd=repo, capture_output=True, text=True,
                           check=True).stdout.split()

    def blame(path: str) -> list[str]:
        out = subprocess.run(("git", "blame", "-w", "--porcelain", "HEAD", "--", path),
                             cwd=repo, capture_output=True, text=True, check=True).stdout
        shas: dict[int, str] = {}
        for line in out.splitlines():
            parts = line.split(" ")
            if len(parts) >= 3 and len(parts[0]) == 40 and parts[2].isdigit():
                shas[int(parts[2])] = parts[0]
        return [shas[i] for i in sorted(shas)]

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        expected = dict(zip(files, pool.map(blame, files), strict=True))
    lines = sum(len(v) for v in expected.values())
    bad = [f for f in files if [snap.sha(o) for o in snap.origins(f)] != expected[f]]
    return f"{len(files) - len(bad)}/{len(files)} files, {lines} lines identical" + (
        f"; DIFFER: {bad[:5]}" if bad else "")


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    git_version = subprocess.run(("git", "--version"), capture_output=True, text=True).stdout
    return (f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}, "
            f"{git_version.strip()}, {platform.system()} {platform.release()}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--commits", type=int, default=10_000)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--only", choices=("check", "rebuild", "incremental", "agreement",
                                           "scale", "real", "rss", "pull"))
    parser.add_argument("--real", type=Path, help="--only real: an indexed real repository")
    args = parser.parse_args()
    if args.only in ("scale", "real", "rss", "pull"):
        return scaled(args)
    big = repo_with(args.commits)
    small = repo_with(args.small)
    print(f"machine: {machine()}")
    count = subprocess.run(("git", "rev-list", "--count", "HEAD"), cwd=big,
                           capture_output=True, text=True).stdout.strip()
    fixes = subprocess.run(("git", "log", "--oneline", "--grep", "PROJ-"), cwd=big,
                           capture_output=True, text=True).stdout.count("\n")
    merges = subprocess.run(("git", "rev-list", "--count", "--merges", "HEAD"), cwd=big,
                            capture_output=True, text=True).stdout.strip()
    print(f"repository: {count} commits, {fixes} fix commits, {merges} merges, "
          f"deep files of {[len((big / d).read_text().splitlines()) for d in DEEP]} lines")

    if args.only in (None, "agreement"):
        print(f"\n0. index against git blame -w at HEAD: {agreement(big)}")
    if args.only in (None, "rebuild"):
        bench_and_print_rebuild(big, args.runs)
    if args.only in (None, "check"):
        bench_and_print_check(big, args.runs)
    if args.only in (None, "incremental"):
        bench_and_print_incremental(big, small, args.runs, count)
    return 0


def scaled(args: argparse.Namespace) -> int:
    """Issue 8 §4: snapshots read in parts, the hook after a pull (bench/scale.py)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import scale

    print(f"machine: {machine()}")
    if args.only == "scale":
        scale.bench_scale(args.runs)
    elif args.only == "real":
        if args.real is None:
            raise SystemExit("--only real needs --real PATH (an indexed clone)")
        scale.bench_real(args.real.resolve(), args.runs)
    elif args.only == "rss":
        scale.bench_rss(repo_with(args.small), repo_with(args.commits))
    else:
        scale.bench_pull(repo_with(args.commits), args.runs)
    return 0


def bench_and_print_rebuild(big: Path, runs: int) -> None:
    r = bench_rebuild(big, max(3, runs // 2))
    print(f"\n2. index rebuild: {r['rebuild']:.2f}s; git log -p --first-parent {r['log']:.2f}s "
          f"-> {r['rebuild'] / r['log']:.2f}x (target <= 2x); parallel git blame -w of all "
          f"{len(subprocess.run(('git', 'ls-files'), cwd=big, capture_output=True).stdout.split())}"
          f" files {r['blame_all']:.2f}s -> dasct is {r['blame_all'] / r['rebuild']:.1f}x faster")



def bench_and_print_check(big: Path, runs: int) -> None:
    for protected in (False, True):
        c = bench_check(big, runs * 3, protected)
        _print_check(c, "every hunk on a protected line" if protected else "no protected line")


def _print_check(c: dict[str, float], what: str) -> None:
    print(f"\n1. check --staged (10 hunks in 5 deep files, {what}: "
          f"{int(c['findings'])} findings): "
          f"{c['check'] * 1000:.1f} ms; floor (python -c pass + git diff --cached -U0) "
          f"{c['floor'] * 1000:.1f} ms -> {c['check'] / c['floor']:.2f}x (target <= 2x); "
          f"git blame -w -L {c['blame'] * 1000:.1f} ms -> dasct is "
          f"{c['blame'] / c['check']:.1f}x faster (target >= 10x)")



def bench_and_print_incremental(big: Path, small: Path, runs: int, count: str) -> None:
    inc_small = bench_incremental(small, runs)
    inc_big = bench_incremental(big, runs)
    print(f"\n3. incremental update after one commit: {small.name[5:]} commits "
          f"{inc_small * 1000:.1f} ms, {count} commits {inc_big * 1000:.1f} ms -> "
          f"{max(inc_big, inc_small) / min(inc_big, inc_small):.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    raise SystemExit(main())
