"""Does `dasct scan` agree with plain `git blame -w` on a real repository?

    python bench/blame_oracle.py REPO [--jobs N] [--examples 5] [--json OUT]

The oracle is computed without dasct's index: the fix commits are the commits of HEAD's
history whose full message matches the repository's dasct defect patterns (its
`.dasct.toml` / `[tool.dasct]`, or the defaults), and every file at HEAD that is not
excluded is blamed with `git blame -w --porcelain HEAD` (with `--ignore-revs-file
.git-blame-ignore-revs` when that file exists, exactly as dasct does), in parallel. Each
(path, line, defect) whose blamed commit names the defect is a protected pair. Then
`dasct scan --format json` is run in the same repository (index built or updated as a
user's would be) and the two sets are compared: precision, recall, and examples of every
difference with the commit blame names.

Configure the repository first, e.g. for apache/maven:
    printf '[defects]\\njira_projects = ["MNG"]\\n' > REPO/.dasct.toml
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

Pair = tuple[str, int, str]  # path, line, defect

# Pinned like dasct's own git runner, so that the user's config changes neither side.
GIT = ("git", "-c", "core.quotePath=false", "-c", "diff.algorithm=myers",
       "-c", "diff.indentHeuristic=true", "-c", "blame.ignoreRevsFile=",
       "-c", "i18n.logOutputEncoding=UTF-8")


def _git(repo: Path, *args: str) -> bytes:
    return subprocess.run((*GIT, *args), cwd=repo, capture_output=True, check=True).stdout


def fix_commits(repo: Path) -> dict[str, tuple[str, ...]]:
    """sha -> defect keys, for every commit of HEAD's history that is a fix commit."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from dasct import config
    from dasct.refs import defect_keys

    cfg = config.load(repo)
    patterns = cfg.defects.compiled()
    out = _git(repo, "log", "-z", "--format=%H%x00%B", "HEAD")
    fixes: dict[str, tuple[str, ...]] = {}
    fields = out.decode("utf-8", "replace").split("\0")
    for i in range(0, len(fields) - 1, 2):
        sha, message = fields[i].strip(), fields[i + 1]
        keys = defect_keys(message, patterns)
        if keys:
            fixes[sha] = keys
    return fixes


def files_at_head(repo: Path) -> list[str]:
    """Every blob at HEAD (regular files and symlinks; submodules have no lines)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from dasct import config
    from dasct.settings import Settings

    cfg = config.load(repo)
    settings = Settings(exclude=cfg.paths.exclude, strict=False, patterns=(), source="")
    out = _git(repo, "ls-tree", "-r", "-z", "--full-tree", "HEAD")
    paths = []
    for record in out.split(b"\0"):
        if not record:
            continue
        info, _, name = record.partition(b"\t")
        _mode, kind, _ = info.decode().split(" ")
        path = name.decode("utf-8", "surrogateescape")
        if kind == "blob" and not settings.excluded(path):
            paths.append(path)
    return paths


def blame(repo: Path, path: str, rev: str = "HEAD") -> list[str] | None:
    """The commit blame -w names for each line of path at rev (None: blame failed)."""
    args = ["blame", "-w", "--porcelain"]
    if (repo / ".git-blame-ignore-revs").exists():
        args += ["--ignore-revs-file", ".git-blame-ignore-revs"]
    try:
        out = _git(repo, *args, rev, "--", path)
    except subprocess.CalledProcessError:
        return None
    shas: dict[int, str] = {}
    for line in out.split(b"\n"):
        parts = line.split(b" ")
        if len(parts) >= 3 and len(parts[0]) == 40 and parts[1].isdigit() and parts[2].isdigit():
            shas[int(parts[2])] = parts[0].decode()
    return [shas[i] for i in range(1, len(shas) + 1)]


def oracle(repo: Path, jobs: int
           ) -> tuple[set[Pair], dict[tuple[str, int], str], list[str], float]:
    """Every protected pair at HEAD by plain blame; the blamed commit of each line; the
    paths blame failed on (left out of the comparison)."""
    started = time.perf_counter()
    fixes = fix_commits(repo)
    paths = files_at_head(repo)
    pairs: set[Pair] = set()
    origin: dict[tuple[str, int], str] = {}
    failed: list[str] = []
    with ThreadPoolExecutor(jobs) as pool:
        for path, shas in zip(paths, pool.map(lambda p: blame(repo, p), paths), strict=True):
            if shas is None:
                failed.append(path)
                continue
            for n, sha in enumerate(shas, 1):
                origin[(path, n)] = sha
                for key in fixes.get(sha, ()):
                    pairs.add((path, n, key))
    return pairs, origin, failed, time.perf_counter() - started


def scan(repo: Path) -> tuple[set[Pair], float]:
    """The protected pairs `dasct scan --format json` reports."""
    started = time.perf_counter()
    proc = subprocess.run((sys.executable, "-m", "dasct", "scan", "--format", "json"),
                          cwd=repo, capture_output=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"dasct scan failed: {proc.stderr.decode(errors='replace')}")
    data = json.loads(proc.stdout)
    pairs = {(e["path"], e["line"], d) for e in data["lines"] for d in e["defects"]}
    return pairs, time.perf_counter() - started


def _save_cache(path: Path, head: str, pairs: set[Pair], origin: dict[tuple[str, int], str],
                failed: list[str], seconds: float) -> None:
    path.write_text(json.dumps({
        "head": head, "pairs": sorted(pairs), "failed": failed, "seconds": seconds,
        "origin": [[p, n, sha] for (p, n), sha in origin.items()],
    }))


def _load_cache(path: Path, head: str
                ) -> tuple[set[Pair], dict[tuple[str, int], str], list[str], float] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if data.get("head") != head:
        return None
    pairs = {(p, n, d) for p, n, d in data["pairs"]}
    origin = {(p, n): sha for p, n, sha in data["origin"]}
    return pairs, origin, list(data["failed"]), float(data["seconds"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("repo", type=Path)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--examples", type=int, default=5, help="per kind of difference")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--blame-cache", type=Path,
                        help="keep blame's answer here and reuse it while HEAD is the same")
    args = parser.parse_args(argv)
    repo = args.repo.resolve()
    head = _git(repo, "rev-parse", "HEAD").decode().strip()
    commits = int(_git(repo, "rev-list", "--count", "HEAD"))
    cached = _load_cache(args.blame_cache, head) if args.blame_cache else None
    if cached is None:
        theirs, origin, failed, blame_s = oracle(repo, args.jobs)
        if args.blame_cache:
            _save_cache(args.blame_cache, head, theirs, origin, failed, blame_s)
    else:
        theirs, origin, failed, blame_s = cached
    ours, scan_s = scan(repo)
    left_out = set(failed)
    ours = {pair for pair in ours if pair[0] not in left_out}
    if failed:
        print(f"blame failed on {len(failed)} file(s), left out: {', '.join(failed[:5])}")
    both = ours & theirs
    precision = 100.0 * len(both) / len(ours) if ours else 100.0
    recall = 100.0 * len(both) / len(theirs) if theirs else 100.0
    print(f"{repo.name} at {head[:12]} ({commits} commits): blame -w {len(theirs)} protected "
          f"(line, defect) pairs in {blame_s:.1f}s on {args.jobs} jobs; dasct scan "
          f"{len(ours)} in {scan_s:.1f}s")
    print(f"precision {precision:.2f}%  recall {recall:.2f}%  (agree on {len(both)})")
    for title, diff in (("only dasct (false positives)", ours - theirs),
                        ("only blame (missed)", theirs - ours)):
        if not diff:
            continue
        by_file = Counter(p for p, _, _ in diff)
        by_commit: dict[str, int] = defaultdict(int)
        for p, n, _ in diff:
            by_commit[origin.get((p, n), "?")] += 1
        print(f"{title}: {len(diff)} pairs in {len(by_file)} files; blamed commits: "
              + ", ".join(f"{c[:12]} ({k})" for c, k in
                          sorted(by_commit.items(), key=lambda x: -x[1])[:5]))
        for p, n, d in sorted(diff)[: args.examples]:
            print(f"  {p}:{n} {d} (blame: {origin.get((p, n), '?')[:12]})")
    if args.json:
        args.json.write_text(json.dumps({
            "repo": repo.name, "head": head, "commits": commits, "blame_pairs": len(theirs),
            "scan_pairs": len(ours), "agree": len(both), "precision": round(precision, 4),
            "recall": round(recall, 4), "blame_seconds": round(blame_s, 1),
            "scan_seconds": round(scan_s, 1),
        }, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
