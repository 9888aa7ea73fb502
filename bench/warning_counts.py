"""How many of a repository's recent commits warn, with every kind of line and with the
reported kinds only (issue 8 §5: comment, blank and import touches are noise). Not named
warnings.py: a script in bench/ would then shadow the standard library's warnings module.

    python bench/warning_counts.py REPO [--commits 150] [--verify] [--json OUT]

For each of the last N first-parent commits, runs `dasct check --commit C --format json
--all` (what every kind would report) and counts the findings of the kinds the repository
reports (`[check] kinds`, default code). `--verify` also runs the check without --all and
fails if it reports anything else. Run it on a clone of your own: dasct writes its index
under the repository's .git/dasct.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

DASCT = (sys.executable, "-m", "dasct")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(("git", "-C", str(repo), *args), capture_output=True, text=True,
                          check=True).stdout


def check(repo: Path, sha: str, *extra: str) -> dict[str, object]:
    proc = subprocess.run((*DASCT, "check", "--commit", sha, "--format", "json", *extra),
                          cwd=repo, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"dasct check --commit {sha[:12]} failed: {proc.stderr.strip()}")
    result: dict[str, object] = json.loads(proc.stdout)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("repo", type=Path)
    parser.add_argument("--commits", type=int, default=150)
    parser.add_argument("--verify", action="store_true",
                        help="also run the default check and compare")
    parser.add_argument("--json", type=Path, help="write the figures there too")
    args = parser.parse_args(argv)
    repo = args.repo.resolve()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
    from dasct import git as dgit
    from dasct import settings

    reported = set(settings.load(dgit.discover(repo)).kinds)
    # Oldest first: each check's base is then the commit before, whose snapshot the
    # previous check left, so every check replays one commit instead of rebuilding.
    shas = git(repo, "rev-list", "--first-parent", f"--max-count={args.commits}",
               "HEAD").split()[::-1]
    started = time.perf_counter()
    subprocess.run((*DASCT, "index", "--quiet"), cwd=repo, check=True)
    warn_all = warn_reported = only_other = 0
    lines_by_kind: Counter[str] = Counter()
    for i, sha in enumerate(shas, 1):
        findings = check(repo, sha, "--all")["findings"]
        assert isinstance(findings, list)
        lines = {(f["path"], f["line"]): f["kind"] for f in findings}
        lines_by_kind.update(lines.values())
        shown = [f for f in findings if f["kind"] in reported]
        warn_all += bool(findings)
        warn_reported += bool(shown)
        only_other += bool(findings) and not shown
        if args.verify:
            default = check(repo, sha)["findings"]
            if default != shown:
                raise SystemExit(f"{sha[:12]}: the default check reports {len(default)} "
                                 f"findings, the --all check's {sorted(reported)} lines "
                                 f"{len(shown)}")
        print(f"\r{i}/{len(shas)} commits", end="", file=sys.stderr)
    print(file=sys.stderr)
    figures = {
        "repository": str(args.repo), "head": shas[-1] if shas else None,
        "commits": len(shas), "reported_kinds": sorted(reported),
        "warn_all_kinds": warn_all, "warn_reported_kinds": warn_reported,
        "warn_only_other_kinds": only_other,
        "touched_protected_lines_by_kind": dict(lines_by_kind),
        "seconds": round(time.perf_counter() - started, 1), "verified": args.verify,
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
