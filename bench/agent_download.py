"""Benchmark: does the agent's background download slow a CPU-bound process beside it?

Issue 12's figure: the download of a 50 MB release must not slow a CPU-bound process
running beside it by more than 5%. One run measures, side by side:

- the throughput of CPU-bound worker processes (a pure-Python loop, counted in units of
  work) while nothing else runs, for as long as the download below took;
- the same while the agent's real background download runs: `dasct agent _download`, the
  child `dasct agent check` starts (nice +19, SCHED_IDLE where allowed), fetching a real
  TUF-signed 50 MB release through dasct.agent.client from a loopback HTTP server;
  with no bandwidth cap and with a cap;
- as a control, the same download at normal priority (no nice, no SCHED_IDLE).

The slowdown is 1 - (units/s beside the download) / (units/s alone), the alone rate being
the mean of a measure just before and one just after; median over runs.
With 1 worker on a 2-core machine the download has a core of its own; with as many
workers as cores it can only take CPU from them. The HTTP server stands in for a remote
CDN and runs at nice +19 in its own process, so that its CPU is not charged to the agent.

    python bench/agent_download.py [--runs 5] [--mb 50] [--cap-kib 16384]
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import http.server
import multiprocessing as mp
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from dasct import config
from dasct.agent import publish, tufkeys
from dasct.agentconfig import PublishConfig, RoleKeys
from dasct.commands.publish import staged
from dasct.migrate import trigger as trig
from dasct.migrate import trigger_write as trigw
from dasct.migrate.environment import environment

SRC = Path(__file__).resolve().parents[1] / "src"
ENV = "production"


def _unit() -> int:
    return sum(i * i for i in range(2000))


def _worker(go: Any, stop: Any, out: Any) -> None:
    while not go.is_set():  # busy, as a CPU-bound process is, until the measure starts
        _unit()
    n, start = 0, time.perf_counter()
    while not stop.is_set():
        _unit()
        n += 1
    out.put(n / (time.perf_counter() - start))


def _serve(root: Path, ready: Any) -> None:
    os.nice(19)
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    ready.put(server.server_address[1])
    server.serve_forever()


def _key(folder: Path, name: str) -> str:
    return tufkeys.new_key(folder / f"{name}.pem")


def _environment(folder: Path, extra: str = "") -> None:
    (folder / "target").mkdir(parents=True)
    (folder / ".dasct.toml").write_text(
        f'[environments.{ENV}]\nroot = "target"\nstate_dir = "state"\nstaging = "staging"\n'
        + extra)


def setup(tmp: Path, mb: int) -> tuple[Path, Path]:
    """A 50 MB release published as TUF in tmp/served; returns (served dir, trusted root)."""
    ci = tmp / "ci"
    _environment(ci)
    env = environment(config.load(ci), ENV, ci)
    blob = os.urandom(mb * 1_000_000)
    now = datetime.now(timezone.utc)
    change = trig.FileChange("add", "app/blob.bin", None, None,
                             trigw.write_payload(env.staging, blob), 0o644)
    doc = trigw.document(id="big-1", system="app", environment=ENV,
                         not_before=now - timedelta(hours=1), expires=now + timedelta(days=3),
                         defects=["PROJ-1"], commits=[], sql=[], files=[change], commands=[])
    trigw.write(env.staging, doc, key=None)
    keys = tmp / "keys"
    keys.mkdir()
    cfg = PublishConfig(repository=str(tmp / "served"), **{
        role: RoleKeys(keys=(_key(keys, role),))
        for role in ("root", "targets", "snapshot", "timestamp")})
    publish.publish(cfg, env=ENV, system="app", staged=staged(ENV, config.load(ci), ci),
                    base=ci, now=now)
    return tmp / "served", tmp / "served" / ENV / "metadata" / "1.root.json"


def agent_home(tmp: Path, port: int, root: Path, cap_kib: int) -> Path:
    home = tmp / f"agent-{cap_kib}"
    _environment(home, f'\n[agent]\nenvironment = "{ENV}"\n'
                       f'metadata_url = "http://127.0.0.1:{port}/{ENV}/metadata/"\n'
                       f'trusted_root = "{root}"\nbandwidth_kib = {cap_kib}\n')
    return home


def _fresh(home: Path) -> None:
    import shutil

    shutil.rmtree(home / "state" / "agent", ignore_errors=True)
    shutil.rmtree(home / ".dasct", ignore_errors=True)


def download(home: Path, *, low: bool) -> float:
    """One download as the agent does it (low: the background child); its seconds."""
    _fresh(home)
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    argv = ([sys.executable, "-m", "dasct", "agent", "_download", "--home", str(home)] if low
            else [sys.executable, "-c", "import sys; from pathlib import Path; "
                  "from dasct.agent import download, local; "
                  "print(download.fetch(local.locate(Path(sys.argv[1]))))", str(home)])
    start = time.perf_counter()
    r = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    log = home / "state" / "agent" / "download.log"
    if r.returncode != 0 or "downloaded version 1" not in (r.stdout + (
            log.read_text() if log.exists() else "")):
        sys.exit(f"the download failed: {r.stdout} {r.stderr}")
    return seconds


def side_by_side(workers: int, beside: object) -> tuple[float, float]:
    """(total units/s of workers while beside() runs, beside's seconds); beside is a
    callable returning nothing, or a number of seconds to sleep."""
    go, stop, out = mp.Event(), mp.Event(), mp.Queue()
    procs = [mp.Process(target=_worker, args=(go, stop, out)) for _ in range(workers)]
    for p in procs:
        p.start()
    time.sleep(0.3)  # the workers are running before the download starts
    go.set()
    start = time.perf_counter()
    if callable(beside):
        beside()
    else:
        time.sleep(float(beside))  # type: ignore[arg-type]
    seconds = time.perf_counter() - start
    stop.set()
    rates = [out.get() for _ in procs]
    for p in procs:
        p.join()
    return sum(rates), seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--mb", type=int, default=50)
    parser.add_argument("--cap-kib", type=int, default=16384)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    print(f"# {platform.platform()}, {cores} cores, Python {platform.python_version()}; "
          f"{args.mb} MB release, {args.runs} runs, medians; load average at start "
          f"{os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        served, root = setup(tmp, args.mb)
        tar = next((served / ENV / "targets").rglob("*.tar")).read_bytes()
        print(f"# release tar: {len(tar) / 1e6:.1f} MB, sha256 "
              f"{hashlib.sha256(tar).hexdigest()[:12]}")
        ready: Any = mp.Queue()
        server = mp.Process(target=_serve, args=(served, ready), daemon=True)
        server.start()
        port = ready.get()
        homes = {0: agent_home(tmp, port, root, 0),
                 args.cap_kib: agent_home(tmp, port, root, args.cap_kib)}
        scenarios = [("background, no cap", 0, True),
                     (f"background, cap {args.cap_kib} KiB/s", args.cap_kib, True),
                     ("control: normal priority, no cap", 0, False)]
        print("| workers | download | download s | slowdown (median) | runs |")
        print("|---|---|---|---|---|")
        guess: dict[tuple[int, str], float] = {}
        for workers in sorted({1, cores}):
            for name, cap, low in scenarios:
                slow, secs = [], []
                for _ in range(args.runs):
                    home = homes[cap]
                    # Alone just before and just after, so that load from outside the
                    # benchmark drifting during a run falls on both sides of the ratio.
                    before, _ = side_by_side(workers, guess.get((workers, name), 2.0))
                    with_rate, seconds = side_by_side(
                        workers, lambda h=home, lw=low: download(h, low=lw))
                    after, _ = side_by_side(workers, seconds)
                    guess[(workers, name)] = seconds
                    slow.append(100.0 * (1 - with_rate / ((before + after) / 2)))
                    secs.append(seconds)
                print(f"| {workers} | {name} | {statistics.median(secs):.2f} | "
                      f"{statistics.median(slow):+.1f}% | "
                      f"{', '.join(f'{s:+.1f}' for s in slow)} |", flush=True)
        server.terminate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
