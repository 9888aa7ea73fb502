"""Benchmark: the 10-file migration of bench_migrate.py over loopback SSH.

    . ci/services.sh && start_sshd && python bench/remote.py [--runs N] [--large 100000]

Each timed run is a whole `dasct migrate run` (a new process, as CI calls it) of a fresh
10-file trigger: locally into a 1,000-file target; over SSH into one host with a 1,000-file
and one with a LARGE-file target; and into a fleet of 4 hosts (1,000 files each,
batch_size 4, no canary wave). The cases take turns in each round, so the machine's noise
hits them alike; medians are printed with the ratios the issue names.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_migrate import CHANGED, build_target

from dasct.migrate import trigger as trig
from dasct.migrate import trigger_check as trigc
from dasct.migrate import trigger_write as trigw

SRC = Path(__file__).resolve().parents[1] / "src"


def stage(staging: Path, env: str, root: Path, files: int, tid: str) -> None:
    """A trigger for env changing 10 of root's files (pre-images: their content now)."""
    changes = []
    step = max(1, files // CHANGED)
    for n in range(CHANGED):
        i = n * step
        rel = f"pkg{i // 100:04d}/mod{i:06d}.py"
        pre = trigc.file_sha256(root / rel)
        post = trigw.write_payload(staging, f"# {tid} {i}\n".encode())
        changes.append(trig.FileChange("modify", rel, None, pre, post, 0o644))
    now = datetime.now(timezone.utc) - timedelta(minutes=1)
    doc = trigw.document(id=tid, system="app", environment=env, not_before=now,
                         expires=now + timedelta(days=1), defects=[], commits=[], sql=[],
                         files=changes, commands=[])
    trigw.write(staging, doc, key=None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--large", type=int, default=100_000)
    opts = ap.parse_args()
    ports = [int(p) for p in os.environ["DASCT_TEST_SSHD_PORTS"].split(",")]
    user, key = os.environ["DASCT_TEST_SSH_USER"], os.environ["DASCT_TEST_SSH_KEY"]
    known = os.environ["DASCT_TEST_SSH_KNOWN_HOSTS"]
    tmp = Path(tempfile.mkdtemp(prefix="dasct-bench-remote."))
    repo = tmp / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    sizes = {"local": 1000, "one": 1000, "large": opts.large}
    roots = {name: tmp / name / "root" for name in sizes}
    fleet_roots = [tmp / f"fleet{i}" / "root" for i in range(4)]
    for name, files in sizes.items():
        build_target(roots[name], files)
    for root in fleet_roots:
        build_target(root, 1000)

    def url(i: int, root: Path) -> str:
        return f"ssh://{user}@127.0.0.1:{ports[i % len(ports)]}{root}"

    common = (f'known_hosts = "{known}"\nremote_base = "{{root}}.dasct"\n'
              'staging = "staging"\npromote_from = "none"\n')
    hosts = ", ".join(f'"{url(i, r)}"' for i, r in enumerate(fleet_roots))
    (repo / ".dasct.toml").write_text(
        f'[environments.local]\nroot = "{roots["local"]}"\nstaging = "staging"\n'
        f'state_dir = "{tmp}/local/state"\npromote_from = "none"\n'
        f'[environments.one]\ntarget = "{url(0, roots["one"])}"\n{common}'
        f'[environments.large]\ntarget = "{url(1, roots["large"])}"\n{common}'
        f'[environments.fleet]\nhosts = [{hosts}]\ncanary = 0\nbatch_size = 4\n{common}')
    env = {**os.environ, "PYTHONPATH": str(SRC), "DASCT_SSH_KEY": key}
    cases = {"local": roots["local"], "one": roots["one"], "large": roots["large"],
             "fleet": fleet_roots[0]}
    times: dict[str, list[float]] = {name: [] for name in cases}
    for n in range(opts.runs + 1):  # round 0 installs the runtime on every host: not timed
        for name, root in cases.items():
            files = sizes.get(name, 1000)
            stage(repo / "staging", name, root, files, f"R{n}")
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "dasct", "migrate", "run", "--env",
                                   name], cwd=repo, env=env, capture_output=True, text=True,
                                  check=False)
            took = time.perf_counter() - start
            if done.returncode != 0:
                raise SystemExit(f"{name}: {done.stdout}{done.stderr}")
            if n:
                times[name].append(took)
    med = {name: statistics.median(ts) for name, ts in times.items()}
    print(f"runs {opts.runs}, medians (s): " + ", ".join(f"{k} {v:.2f}" for k, v in med.items()))
    print(f"one SSH host / local (1,000 files): {med['one'] / med['local']:.2f}")
    print(f"SSH {opts.large:,} files / 1,000 files: {med['large'] / med['one']:.2f}")
    print(f"fleet of 4 (batch_size 4) / one host: {med['fleet'] / med['one']:.2f}")
    print(f"(temp dir {tmp}; remove it when done)")


if __name__ == "__main__":
    main()
