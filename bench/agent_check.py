"""Benchmark: what an agent check costs when there is nothing new (issue 12's goal).

A repository of one environment with one release (`dasct publish`'s code, real Ed25519
keys) is served over loopback HTTP by the tests' server, which counts requests per path.
An agent that already has release 1 checks again and again: `client.check(installed=1)`
in-process (one Updater per check, as the agent makes one per check), and the same check
as a fresh `python -c` process, beside a `python -c pass` floor.

    python bench/agent_check.py [--runs 30]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests" / "agent"))

from agent_kit import Kit, staged  # noqa: E402
from tuf_server import serving  # noqa: E402

from dasct.agent import client  # noqa: E402

PROCESS = """
import sys
from pathlib import Path
from dasct.agent.client import Source, check
src = Source(env="production", system="app", metadata_url=sys.argv[1], targets_url=sys.argv[2],
             metadata_dir=Path(sys.argv[3]), max_release_bytes=1 << 30)
assert check(src, installed=1) is None
"""


def timed(runs: int, call: Callable[[], object]) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        out.append((time.perf_counter() - start) * 1000)
    return out


def row(name: str, ms: list[float]) -> str:
    p90 = statistics.quantiles(ms, n=10)[-1]
    return f"| {name} | {len(ms)} | {statistics.median(ms):.1f} | {p90:.1f} |"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, serving(Path(tmp) / "served") as server:
        kit = Kit(Path(tmp), server)
        kit.publish(staged("E1", b"x" * 10_000))
        src = kit.source()
        assert client.check(src, installed=0) is not None  # the agent now trusts release 1
        server.requests.clear()
        assert client.check(src, installed=1) is None
        one = dict(server.requests)
        sizes = {p: len(server.body(p) or b"") for p in one}
        inproc = timed(args.runs, lambda: client.check(src, installed=1))
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        argv = [sys.executable, "-c", PROCESS, src.metadata_url, src.targets_url,
                str(src.metadata_dir)]
        proc = timed(args.runs, lambda: subprocess.run(argv, env=env, check=True))
        imports = timed(args.runs, lambda: subprocess.run(
            [sys.executable, "-c", "import dasct.agent.client, tuf.ngclient.updater, "
             "tuf.ngclient.urllib3_fetcher"], env=env, check=True))
        floor = timed(args.runs, lambda: subprocess.run([sys.executable, "-c", "pass"],
                                                         check=True))
    print(f"python {platform.python_version()}, {platform.machine()}, "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
    print("requests of one check with nothing new:")
    for path, count in sorted(one.items()):
        print(f"  {count} x {path} ({sizes[path]} bytes served"
              f"{', 404' if not sizes[path] else ''})")
    print("| case | runs | median (ms) | p90 (ms) |\n|---|---:|---:|---:|")
    print(row("client.check, in-process", inproc))
    print(row("the same check, a fresh `python -c` process", proc))
    print(row("its imports alone (tuf.ngclient, urllib3, securesystemslib)", imports))
    print(row("floor: `python -c pass`", floor))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
