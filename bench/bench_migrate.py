"""Benchmark: archive and restore time after a migration that changed 10 files, in a
1,000-file and a 100,000-file target. The cost must follow the change, not the target.

    python bench/bench_migrate.py [--runs N] [--sizes 1000,100000]

Prints the medians of several runs in one process and the ratio large/small.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from dasct.migrate import archive, steps
from dasct.migrate import trigger as trig
from dasct.migrate import trigger_check as trigc
from dasct.migrate import trigger_write as trigw

CHANGED = 10


def build_target(root: Path, files: int) -> None:
    """files small files in directories of 100, like a source tree."""
    for i in range(files):
        folder = root / f"pkg{i // 100:04d}"
        if i % 100 == 0:
            folder.mkdir(parents=True)
        (folder / f"mod{i:06d}.py").write_bytes(f"# module {i}\nVALUE = {i}\n".encode() * 20)


def make_trigger(root: Path, staging: Path, files: int) -> trig.Trigger:
    changes = []
    step = max(1, files // CHANGED)
    for n in range(CHANGED):
        i = n * step
        rel = f"pkg{i // 100:04d}/mod{i:06d}.py"
        pre = trigc.file_sha256(root / rel)
        post = trigw.write_payload(staging, f"# changed {i}\n".encode())
        changes.append(trig.FileChange("modify", rel, None, pre, post, 0o644))
    now = datetime.now(timezone.utc)
    doc = trigw.document(id=f"BENCH{files}", system="app", environment="model",
                        not_before=now, expires=now + timedelta(days=1), defects=[],
                        commits=[], sql=[], files=changes, commands=[])
    return trigw.write(staging, doc, key=None)


def one_run(state: Path, root: Path, t: trig.Trigger) -> tuple[float, float]:
    """Archive, migrate the 10 files, restore and check: (archive s, restore s)."""
    start = time.perf_counter()
    a = archive.create(state, t, root=root, db=None)
    archived = time.perf_counter() - start
    for i in range(len(t.files)):
        steps.apply_file(t, i, root)
    start = time.perf_counter()
    archive.restore_files(a, root)
    problems = archive.check_files(a, root)
    restored = time.perf_counter() - start
    assert not problems, problems
    archive.remove(a)
    return archived, restored


def measure(sizes: list[int], runs: int) -> dict[int, tuple[float, float]]:
    """Medians per target size; the sizes take turns so that machine noise hits all alike."""
    with tempfile.TemporaryDirectory(prefix="dasct-bench.") as tmp:
        setups = {}
        for size in sizes:
            base = Path(tmp) / str(size)
            build_target(base / "target", size)
            t = make_trigger(base / "target", base / "staging", size)
            setups[size] = (base / "state", base / "target", t)
        times: dict[int, list[tuple[float, float]]] = {size: [] for size in sizes}
        for _ in range(runs):
            for size in sizes:
                times[size].append(one_run(*setups[size]))
        return {size: (statistics.median(a for a, _ in got), statistics.median(r for _, r in got))
                for size, got in times.items()}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--sizes", default="1000,100000")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"machine: {os.cpu_count()} CPUs ({cpu_model()}), Python {platform.python_version()}, "
          f"{platform.system()} {platform.release()}")
    print(f"{CHANGED} files changed; medians of {args.runs} runs")
    print(f"{'target files':>12}  {'archive ms':>10}  {'restore ms':>10}")
    results = measure(sizes, args.runs)
    for size in sizes:
        arch, rest = results[size]
        print(f"{size:>12,}  {arch * 1000:>10.2f}  {rest * 1000:>10.2f}")
    if len(sizes) >= 2:
        small, large = results[sizes[0]], results[sizes[-1]]
        print(f"ratio {sizes[-1]:,}/{sizes[0]:,}: archive {large[0] / small[0]:.2f}, "
              f"restore {large[1] / small[1]:.2f} (near 1: the cost follows the change)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
