"""What the ledger costs at 10,000 records: reading it, adding one, the links' fingerprint.

    python bench/ledger.py [--records 10000] [--local 0.05] [--runs 9] [--loose]

Builds a ledger of N records (a realistic mix of types, ~40% links/accepts/unlinks) in a
temp clone of a temp bare remote: another clone appends and pushes (1 - LOCAL) of them, this
one fetches those (git keeps them as a pack, as a fresh clone has them) and appends the
rest itself in one call (fast-import: a pack too), so every read is the union of a local
branch and a remote-tracking one that differ. --loose unpacks every object of the clone
first: the worst case, a ledger grown by appends of fewer than 100 records each (which
fast-import writes as loose objects) that no `git gc` has packed yet. Then,
interleaved run by run (the machine's noise hits every operation alike): records(),
records("link"), append() of one new record, links_fingerprint(), and the floor of one
git process (`git rev-parse HEAD`). Medians and the spread, in milliseconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from dasct import git
from dasct.ledger import Ledger
from dasct.ledger_record import Record

TYPES = ("link", "accept", "unlink", "request", "filed", "owner", "evidence", "reject")
WEIGHTS = (30, 8, 2, 25, 20, 5, 8, 2)  # of 100


def _records(n: int, start: int) -> list[Record]:
    kinds = [t for t, w in zip(TYPES, WEIGHTS, strict=True) for _ in range(w)]
    return [Record(kinds[i % len(kinds)], {
        "defect": f"PROJ-{i % 997}", "commit": f"{i:040x}", "path": f"src/module_{i % 300}.py",
        "lines": [i % 400 + 1, i % 400 + 12], "note": "x" * (i % 50)},
        at=f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00Z", by="ci")
        for i in range(start, start + n)]


def build(where: Path, n: int, local: float) -> tuple[Ledger, float]:
    """A clone whose remote-tracking ledger holds (1 - local) of n records and whose local
    ledger the rest besides; also the time of the other clone's one big append."""
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@x",
           "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@x"}
    os.environ.update(env)
    bare, a, b = where / "remote.git", where / "a", where / "b"
    subprocess.run(("git", "init", "-q", "--bare", str(bare)), check=True)
    for clone in (a, b):
        subprocess.run(("git", "clone", "-q", str(bare), str(clone)), check=True,
                       capture_output=True)
        subprocess.run(("git", "commit", "-q", "--allow-empty", "-m", "init"), cwd=clone,
                       check=True)
    writer = Ledger(git.discover(b))
    t0 = time.perf_counter()
    pushed = n - int(n * local)
    writer.append(_records(pushed, 0))
    built = time.perf_counter() - t0
    writer.push()
    ledger = Ledger(git.discover(a))
    ledger.fetch()
    ledger.append(_records(n - pushed, pushed))
    return ledger, built


def unpack(git_dir: Path) -> None:
    """Turn every pack of the repository into loose objects."""
    packs = git_dir / "objects" / "pack"
    for pack in sorted(packs.glob("*.pack")):
        moved = git_dir / pack.name
        pack.rename(moved)
        for other in packs.glob(pack.stem + ".*"):
            other.unlink()
        with moved.open("rb") as data:
            subprocess.run(("git", "unpack-objects", "-q"), cwd=git_dir, stdin=data,
                           check=True)
        moved.unlink()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--local", type=float, default=0.05,
                        help="the share of records appended in this clone (loose objects)")
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--loose", action="store_true",
                        help="unpack every object first (no git gc since the appends)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dasct-ledger-bench-") as tmp:
        ledger, built = build(Path(tmp), args.records, args.local)
        if args.loose:
            unpack(ledger.repo.common_dir)
        total = len(ledger.records())
        assert total == args.records, total
        extra = iter(_records(args.runs, 10 * args.records))
        root = ledger.repo.root
        ops: dict[str, Callable[[], object]] = {
            "git rev-parse HEAD (floor)": lambda: git.run("rev-parse", "HEAD", cwd=root),
            "records()": ledger.records,
            'records("link")': lambda: ledger.records("link"),
            "append() of one": lambda: ledger.append([next(extra)]),
            "links_fingerprint()": ledger.links_fingerprint,
        }
        times: dict[str, list[float]] = {name: [] for name in ops}
        for _ in range(args.runs):
            for name, op in ops.items():
                t0 = time.perf_counter()
                op()
                times[name].append((time.perf_counter() - t0) * 1000)
        print(f"ledger of {total} records, {args.local:.0%} appended here, the rest fetched"
              f"{' (all loose objects)' if args.loose else ''}; {args.runs} interleaved runs; "
              "the other clone's append "
              f"of {total - int(total * args.local)} in one call: {built * 1000:.0f} ms")
        print(f"{'operation':<28} {'median ms':>10} {'min':>8} {'max':>8}")
        for name, values in times.items():
            print(f"{name:<28} {statistics.median(values):>10.1f} {min(values):>8.1f} "
                  f"{max(values):>8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
