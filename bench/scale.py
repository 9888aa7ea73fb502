"""Benchmarks of snapshot size and history (issue 8 §4), run from bench/run.py:

* `--only scale`: the same 10-hunk check on generated 1,000-file and 100,000-file
  repositories (the same 5 deep files with the same history, only the other files differ),
  side by side, each with its floor;
* `--only real --real PATH`: the 10-hunk check against the floor on a real repository
  (its index built beforehand), the 5 largest files with protected lines;
* `--only rss`: peak resident memory (ru_maxrss of the child) of a full build on the
  1,000- and 10,000-commit histories;
* `--only pull`: the hook right after a `git pull` that brought 200 commits and right after
  a `git checkout` of a branch 2,000 commits away (the background refresh in flight),
  then again once the refresh has finished.
"""

from __future__ import annotations

import fcntl
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import run as base  # bench/run.py

WIDE_COMMITS = 400
FORMAT3_COMMIT = "0867836"  # main before format 4: the last index.py reading format 3


def generate_wide(path: Path, files: int, commits: int = WIDE_COMMITS) -> None:
    """A repository of `files` files through git fast-import: the 5 deep files of
    bench/run.py with a history that depends only on the seed (identical at every width),
    and small files, some touched now and then by their own random stream."""
    deep_rng, wide_rng = random.Random(7), random.Random(files)
    deep = {n: [base._line(deep_rng) for _ in range(deep_rng.randint(5000, 6000))]
            for n in base.DEEP}
    small = [f"pkg{i % 500}/mod{i}.py" for i in range(files - len(base.DEEP))]
    subprocess.run(("git", "init", "-q", "-b", "main", str(path)), check=True)
    proc = subprocess.Popen(("git", "fast-import", "--quiet"), cwd=path,
                            stdin=subprocess.PIPE, env=base.ENV)
    assert proc.stdin is not None
    out = proc.stdin
    mark = 0

    def blob(text: str) -> int:
        nonlocal mark
        data = text.encode()
        mark += 1
        out.write(b"blob\nmark :%d\ndata %d\n" % (mark, len(data)) + data + b"\n")
        return mark

    def commit(n: int, message: str, changes: dict[str, int]) -> None:
        nonlocal mark
        mark += 1
        msg = message.encode()
        out.write(b"commit refs/heads/main\nmark :%d\n" % mark)
        out.write(b"committer Bench <b@example.com> %d +0000\n" % (1_600_000_000 + 60 * n))
        out.write(b"data %d\n%s\n" % (len(msg), msg))
        for name, m in changes.items():
            out.write(b"M 100644 :%d %s\n" % (m, name.encode()))
        out.write(b"\n")

    first = {n: blob("\n".join(lines) + "\n") for n, lines in deep.items()}
    for name in small:
        first[name] = blob(f"# {name}\n" + "".join(
            f"value_{i} = {wide_rng.randint(0, 999)}\n" for i in range(8)))
    commit(0, "initial import", first)
    for n in range(1, commits):
        changes = {}
        if deep_rng.random() < 0.6:
            name = deep_rng.choice(base.DEEP)
            base._edit(deep_rng, deep[name])
            changes[name] = blob("\n".join(deep[name]) + "\n")
        message = (f"Fix PROJ-{n}: a defect" if deep_rng.random() < 0.15 else f"change {n}")
        for name in wide_rng.sample(small, 2):
            changes[name] = blob(f"# {name} at {n}\n")
        commit(n, message, changes)
    out.close()
    if proc.wait() != 0:
        raise SystemExit("git fast-import failed")
    subprocess.run(("git", "reset", "-q", "--hard", "main"), cwd=path, check=True)


def wide_repo(files: int) -> Path:
    path = base.OUT / f"wide-{files}"
    if not (path / ".git").exists():
        print(f"generating a {files}-file repository in {path} ...", flush=True)
        started = time.perf_counter()
        generate_wide(path, files)
        print(f"  done in {time.perf_counter() - started:.1f}s", flush=True)
    return path


def _hook_and_floor(repos: dict[str, Path], runs: int, protected: bool,
                    names: dict[str, list[str]] | None = None) -> dict[str, float]:
    """Medians of the hook and of its floor in every repository, all interleaved."""
    for repo in repos.values():
        base.run((*base.DASCT, "index"), repo)
    found = {}
    for key, repo in repos.items():
        base.stage_ten_hunks(repo, protected, (names or {}).get(key, base.DEEP))
        found[key] = subprocess.run((*base.DASCT, "check", "--staged", "--format", "json"),
                                    cwd=repo, capture_output=True, text=True,
                                    check=True).stdout.count('"defect"')

    def floor(repo: Path) -> None:
        base.run((sys.executable, "-c", "pass"), repo)
        base.run(("git", "diff", "--cached", "-U0"), repo)

    named = {}
    for key, repo in repos.items():
        named[f"{key} check"] = (lambda r=repo: base.run(base.HOOK, r))
        named[f"{key} floor"] = (lambda r=repo: floor(r))
    result = base.medians(named, runs)
    for key, repo in repos.items():
        result[f"{key} findings"] = float(found[key])
        subprocess.run(("git", "reset", "-q", "--hard"), cwd=repo, check=True)
    return result


def _format3_loader() -> object:
    """index.py as it was at format 3 (one checked marshal payload), from git, to time
    its loading beside format 4's on the same state."""
    import importlib.util
    import tempfile

    root = Path(__file__).resolve().parents[1]
    source = subprocess.run(("git", "show", f"{FORMAT3_COMMIT}:src/dasct/index.py"),
                            cwd=root, capture_output=True, text=True, check=True).stdout
    path = Path(tempfile.mkdtemp()) / "index_format3.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("index_format3", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def bench_reading(repos: dict[str, Path], runs: int) -> None:
    """In-process: open the snapshot at HEAD and ask the 5 deep files' protected lines,
    format 4 (read in parts) against format 3 (everything loaded), same state."""
    import tempfile

    from dasct import cache, git, index

    old = _format3_loader()
    named = {}
    for key, repo in repos.items():
        r = git.discover(repo)
        path = index.index_dir(r) / f"{r.head}.snap"
        snap = index.read_snapshot(path)
        payload = {"head": snap.head, "commits": snap.commit_table(),
                   "width": len(snap.head or ""),
                   "links": {k: list(v) for k, v in snap.links.items()},
                   "files": dict(snap.files), "history": snap.history_fp,
                   "links_fp": snap.links_fp}
        v3 = Path(tempfile.mkdtemp()) / "v3.snap"
        assert cache.write(v3, payload, index.KIND, 3)

        def new(path: Path = path) -> None:
            s = index.read_snapshot(path)
            for name in base.DEEP:
                s.protected(name)

        def three(v3: Path = v3) -> None:
            s = old._load(v3)  # type: ignore[attr-defined]
            for name in base.DEEP:
                s.protected(name)

        named[f"{key} format 4"] = new
        named[f"{key} format 3"] = three
    result = base.medians(named, runs * 3)
    print("   in-process, open the snapshot and ask 5 files' protected lines:")
    for key in repos:
        print(f"   {key}: format 4 {result[f'{key} format 4'] * 1000:.2f} ms, format 3 "
              f"{result[f'{key} format 3'] * 1000:.2f} ms")


def bench_scale(runs: int) -> None:
    repos = {"1,000 files": wide_repo(1_000), "100,000 files": wide_repo(100_000)}
    for repo in repos.values():
        size = sum(p.stat().st_size for p in (repo / ".git" / "dasct" / "index").glob("*.snap")
                   ) if (repo / ".git" / "dasct" / "index").is_dir() else 0
        if not size:
            started = time.perf_counter()
            base.run((*base.DASCT, "index"), repo)
            print(f"  index of {repo.name} built in {time.perf_counter() - started:.1f}s")
    for protected in (False, True):
        r = _hook_and_floor(repos, runs, protected)
        small, big = (f"{k} check" for k in repos)
        print(f"\n4. check --staged, 10 hunks in the same 5 deep files "
              f"({'every hunk on a protected line' if protected else 'no protected line'})")
        for key in repos:
            c, f = r[f"{key} check"], r[f"{key} floor"]
            print(f"   {key}: {c * 1000:.1f} ms ({int(r[f'{key} findings'])} findings); floor "
                  f"{f * 1000:.1f} ms -> {c / f:.2f}x the floor; dasct's own "
                  f"{(c - f) * 1000:.1f} ms")
        own = [r[f"{k} check"] - r[f"{k} floor"] for k in repos]
        print(f"   100,000 / 1,000 files: {r[big] / r[small]:.2f}x (target <= 1.2x); "
              f"dasct's own time {own[1] / own[0]:.2f}x")
    bench_reading(repos, runs)
    for repo in repos.values():
        snaps = list((repo / ".git" / "dasct" / "index").glob("*.snap"))
        print(f"   snapshot of {repo.name}: {max(p.stat().st_size for p in snaps):,} bytes")


def largest_protected(repo: Path, count: int = 5) -> list[str]:
    """The `count` longest text files with both protected and other lines (a real
    repository has no designated deep files)."""
    import json

    scan = subprocess.run((*base.DASCT, "scan", "--format", "json"), cwd=repo, env=base.ENV,
                          capture_output=True, text=True, check=True).stdout
    hot: dict[str, int] = {}
    for x in json.loads(scan)["lines"]:
        hot[x["path"]] = hot.get(x["path"], 0) + 1
    sizes = []
    for name in hot:
        try:
            data = (repo / name).read_bytes()
            data.decode("utf-8")
        except (OSError, UnicodeDecodeError):
            continue  # a binary file is no place for a 10-hunk edit
        if b"\0" in data:
            continue
        lines = len(data.splitlines())
        if lines > hot[name] + 2 and hot[name] >= 2:
            sizes.append((lines, name))
    return [name for _, name in sorted(sizes, reverse=True)[:count]]


def bench_real(repo: Path, runs: int) -> None:
    names = largest_protected(repo)
    print(f"\n5. {repo}: 10 hunks in {names}")
    for protected in (False, True):
        r = _hook_and_floor({"real": repo}, runs, protected, {"real": names})
        c, f = r["real check"], r["real floor"]
        print(f"   {'protected' if protected else 'not protected'}: check {c * 1000:.1f} ms "
              f"({int(r['real findings'])} findings); floor {f * 1000:.1f} ms -> "
              f"{c / f:.2f}x the floor (target <= 1.5x)")


def max_rss(cmd: tuple[str, ...], cwd: Path) -> tuple[float, int]:
    """Seconds and peak resident KiB of cmd, measured in a fresh process that runs it (so
    that RUSAGE_CHILDREN holds that command's tree only)."""
    probe = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
             "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, "
             "stderr=subprocess.DEVNULL); "
             "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN)"
             ".ru_maxrss)")
    out = subprocess.run((sys.executable, "-c", probe, *cmd), cwd=cwd, env=base.ENV,
                         capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), int(out[1])


RSS_PROBE = """
import resource, time
from dasct import git, index, settings
r = git.discover()
t = time.perf_counter()
index.snapshot_at(r, settings.load(r), r.head, rebuild=True)
print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
      resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def bench_rss(small: Path, big: Path) -> None:
    """Peak resident memory of a full build, dasct's Python process and its largest git
    child apart (ru_maxrss: of one process, the largest)."""
    print("\n6. peak memory (ru_maxrss) of a full build (dasct index --rebuild):")
    for repo in (small, big):
        out = subprocess.run((sys.executable, "-c", RSS_PROBE), cwd=repo, env=base.ENV,
                             capture_output=True, text=True, check=True).stdout.split()
        seconds, own, child = float(out[0]), int(out[1]), int(out[2])
        count = subprocess.run(("git", "rev-list", "--count", "HEAD"), cwd=repo,
                               capture_output=True, text=True).stdout.strip()
        print(f"   {count} commits: dasct's process {own / 1024:.0f} MiB, its largest git "
              f"child {child / 1024:.0f} MiB, in {seconds:.1f}s")


def _refresh_running(repo: Path) -> bool:
    try:
        fd = os.open(repo / ".git" / "dasct" / "refresh.lock", os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _wait_refresh(repo: Path) -> float:
    started = time.perf_counter()
    time.sleep(0.2)  # the refresh shim forks; its child takes the lock a moment later
    while _refresh_running(repo):
        time.sleep(0.05)
    return time.perf_counter() - started


def _head(repo: Path) -> str:
    return subprocess.run(("git", "rev-parse", "HEAD"), cwd=repo, capture_output=True,
                          text=True, check=True).stdout.strip()


def bench_pull(big: Path, runs: int) -> None:
    """The hook right after HEAD moved by 200 commits (a pull) and 2,000 (a checkout),
    with only the old HEAD's snapshot kept, as a developer's clone has it."""
    work = base.OUT / "pull-work"
    shutil.rmtree(work, ignore_errors=True)
    subprocess.run(("git", "clone", "-q", str(big), str(work)), check=True)
    base.run((*base.DASCT, "install"), work)
    head = _head(work)
    print("\n7. the hook right after HEAD moved (background refresh in flight), "
          "and after the refresh finished:")
    for label, back, move in (("git pull of 200 commits", 200, ("merge", "-q", "--ff-only", head)),
                              ("git checkout 2,000 commits away", 2000, ("checkout", "-q", "far"))):
        during, after, refresh, alone = [], [], [], []
        base.run(("git", "branch", "-f", "far", head), work)
        for _ in range(runs):
            base.run(("git", "checkout", "-q", "-B", "main", f"{head}~{back}"), work)
            _wait_refresh(work)
            base.run((*base.DASCT, "index"), work)  # warm at the old HEAD
            old = _head(work)
            for skip in ("1", ""):  # without the refresh (the hook replays), then with it
                for p in (work / ".git" / "dasct" / "index").glob("*.snap"):
                    if p.stem != old:
                        p.unlink()
                # runs the post-merge / post-checkout shim, which DASCT_SKIP=1 silences
                subprocess.run(("git", *move), cwd=work, env={**base.ENV, "DASCT_SKIP": skip},
                               check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                base.stage_ten_hunks(work, False, base.DEEP, scan=False)
                took = base.timed(lambda: base.run(base.HOOK, work))
                if skip:
                    alone.append(took)
                    subprocess.run(("git", "reset", "-q", "--hard"), cwd=work, check=True)
                    base.run(("git", "checkout", "-q", "-B", "main", old), work)
                    _wait_refresh(work)
                    continue
                during.append(took)
                refresh.append(_wait_refresh(work))
                after.append(base.timed(lambda: base.run(base.HOOK, work)))
                subprocess.run(("git", "reset", "-q", "--hard"), cwd=work, check=True)
        med = base.statistics.median
        print(f"   {label}: hook {med(alone) * 1000:.0f} ms without a refresh (it replays); "
              f"{med(during) * 1000:.0f} ms with the refresh in flight; "
              f"{med(after) * 1000:.0f} ms after it finished "
              f"(the refresh ended {med(refresh):.1f}s after that hook)")
