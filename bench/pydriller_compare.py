"""A peer side by side: PyDriller's SZZ against `dasct check --commit` on real commits.

    python bench/pydriller_compare.py REPO [--commits 150] [--examples 3] [--json OUT]

Needs the `bench` extra (`pip install -e '.[bench]'`: PyDriller). For each of the last N
first-parent non-merge commits C of REPO's HEAD, both sides answer "which fix commits does
C touch":

- PyDriller: `Git(REPO).get_commits_last_modified_lines(commit)` (with `.git-blame-ignore-
  revs` passed as `hashes_to_ignore_path` when the repository has one, as dasct honours
  it), the union over files of the commits it names, restricted to the fix commits of
  HEAD's history (messages matching REPO's dasct defect patterns, as bench/blame_oracle.py
  finds them);
- dasct: `dasct check --commit C --format json`, run as a user runs it, the linked commit
  of each finding.

The two run interleaved, commit by commit, alternating which goes first; each side's total
wall time is the sum over the N commits (PyDriller's includes `get_commit`; its `Git()`
is built once, outside the timing). The commits are checked oldest first, as CI checks each
new commit, so each dasct check replays from the snapshot the previous one left; the first
check, which builds the index at the oldest commit's parent, runs once before the loop and
is timed apart. Then every commit whose two sets differ is explained line by line: which
lines gave the difference and why (a comment or blank line PyDriller skips, a path dasct
excludes, a whitespace-only change dasct's `-w` diff does not see, an unblamable line, or
a line whose commit at C's parent the index and `git blame -w` disagree on).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import blame_oracle  # the bench directory is not a package

from dasct import diff, git
from dasct import settings as dasct_settings

IGNORE_REVS = ".git-blame-ignore-revs"


class Line(NamedTuple):
    """One line of C's parent that a side counts (path at the parent, 1-based number)."""

    path: str
    line: int
    commit: str  # the fix commit it leads to


class Answer(NamedTuple):
    commits: frozenset[str]
    seconds: float
    error: str | None = None  # PyDriller raised: what


def last_commits(repo: Path, n: int) -> list[str]:
    """The last n first-parent non-merge commits of HEAD, newest first."""
    out = blame_oracle._git(repo, "rev-list", "--first-parent", "--no-merges", f"-n{n}", "HEAD")
    return out.decode().split()


def run_dasct(repo: Path, sha: str) -> tuple[list[Line], float]:
    """The findings of `dasct check --commit sha --format json`, and its wall time."""
    started = time.perf_counter()
    proc = subprocess.run((sys.executable, "-m", "dasct", "check", "--commit", sha,
                           "--format", "json"), cwd=repo, capture_output=True, check=False)
    seconds = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        raise SystemExit(f"dasct check --commit {sha[:12]} failed: "
                         f"{proc.stderr.decode(errors='replace').strip()}")
    found = json.loads(proc.stdout)["findings"]
    return [Line(f["path"], f["line"], f["commit"]) for f in found], seconds


def python_floor() -> float:
    """What starting the interpreter costs a CLI: `python -c pass`, wall time."""
    started = time.perf_counter()
    subprocess.run((sys.executable, "-c", "pass"), check=True)
    return time.perf_counter() - started


def run_pydriller(gr: Any, sha: str, ignore: str | None, fixes: dict[str, tuple[str, ...]]
                  ) -> Answer:
    """PyDriller's SZZ for sha, restricted to fix commits, and its wall time."""
    started = time.perf_counter()
    try:
        named = gr.get_commits_last_modified_lines(gr.get_commit(sha),
                                                   hashes_to_ignore_path=ignore)
    except Exception as exc:  # a peer's crash is a finding of the comparison, not ours
        return Answer(frozenset(), time.perf_counter() - started, f"{type(exc).__name__}: {exc}")
    seconds = time.perf_counter() - started
    return Answer(frozenset(c for shas in named.values() for c in shas if c in fixes), seconds)


class Explainer:
    """Line-level view of one commit from both sides, to say why their answers differ."""

    def __init__(self, repo: Path, gr: Any) -> None:
        self.repo = repo
        self.gr = gr
        self.settings = dasct_settings.load(git.discover(repo))

    def explain(self, sha: str, ours: list[Line], extra: set[str], missing: set[str]
                ) -> list[tuple[str, str, str]]:
        """(side, cause, example) for each fix commit only one side names: `extra` only
        dasct, `missing` only PyDriller."""
        parent = f"{sha}^"
        blamed: dict[str, list[str] | None] = {}

        def blame_at(path: str, n: int) -> str | None:
            if path not in blamed:
                blamed[path] = blame_oracle.blame(self.repo, path, parent)
            shas = blamed[path]
            return shas[n - 1] if shas and n <= len(shas) else None

        # PyDriller's lines, re-derived from the objects it works on: the `-` lines of its
        # diff (no -w) at the path it blames, with the text it tests for "useless".
        theirs: dict[tuple[str, int], str] = {}
        commit = self.gr.get_commit(sha)
        for mod in commit.modified_files:
            path = mod.old_path if mod.change_type.name in ("RENAME", "DELETE") else mod.new_path
            for n, text in mod.diff_parsed["deleted"]:
                theirs[(path, n)] = text
        # dasct's lines: the `-` side of its own -w diff, parsed by its own parser.
        out = git.run("diff", parent, sha, *diff.PATCH_OPTIONS, "--", cwd=self.repo)
        minus: set[tuple[str, int]] = set()
        for section in diff.parse(diff.lines_of(out), commits=False):
            for change in section.files:
                if change.old_path is None or change.status == "C":
                    continue
                minus.update((change.old_path, n) for h in change.hunks for n in h.old_lines)

        causes: list[tuple[str, str, str]] = []
        for fix in sorted(extra):
            for path, n, _ in (x for x in ours if x.commit == fix):
                where = f"{sha[:12]} {path}:{n} -> {fix[:12]}"
                text = theirs.get((path, n))
                if text is not None and pydriller_skips(self.gr, text):
                    cause = "comment or blank line (PyDriller skips it)"
                elif text is None:
                    cause = "not on the - side of PyDriller's diff"
                elif blame_at(path, n) != fix:
                    cause = "index and blame -w of the parent disagree"
                    where += f" (blame: {(blame_at(path, n) or '?')[:12]})"
                else:
                    cause = "unblamable or unparsed line in PyDriller's blame"
                causes.append(("only dasct", cause, where))
                break  # one line per fix commit is enough to say why
        for fix in sorted(missing):
            hits = [(p, n, t) for (p, n), t in theirs.items()
                    if not pydriller_skips(self.gr, t.strip()) and blame_at(p, n) == fix]
            if not hits:
                causes.append(("only PyDriller", "no line of its diff blames to it with "
                               "--porcelain (renamed path?)", f"{sha[:12]} -> {fix[:12]}"))
                continue
            path, n, text = hits[0]
            where = f"{sha[:12]} {path}:{n} -> {fix[:12]} {text.strip()[:40]!r}"
            if self.settings.excluded(path):
                cause = "path excluded by dasct's [paths] exclude"
            elif all((p, m) not in minus for p, m, _ in hits):
                cause = "whitespace-only change (not on the - side of dasct's -w diff)"
            else:
                cause = "line on both - sides, blame -w names the fix, dasct reports nothing"
            causes.append(("only PyDriller", cause, where))
        return causes


def pydriller_skips(gr: Any, text: str) -> bool:
    """PyDriller's own test of a line it skips (blank, or starting like a comment)."""
    return bool(gr._useless_line(text.strip()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("repo", type=Path)
    parser.add_argument("--commits", type=int, default=150)
    parser.add_argument("--examples", type=int, default=3, help="per difference class")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    repo = args.repo.resolve()
    from pydriller import Git  # the bench extra; GitPython comes with it

    head = blame_oracle._git(repo, "rev-parse", "HEAD").decode().strip()
    fixes = blame_oracle.fix_commits(repo)
    commits = last_commits(repo, args.commits)
    ignore = str(repo / IGNORE_REVS) if (repo / IGNORE_REVS).exists() else None
    # Oldest first, as CI checks each new commit: every check then finds the snapshot the
    # previous one left at its parent's first-parent ancestor and replays a commit or two.
    # The first check builds the index at the oldest commit's parent: timed apart.
    commits.reverse()
    _, index_s = run_dasct(repo, commits[0])
    gr = Git(str(repo))

    dasct_s = pyd_s = floor_s = 0.0
    errors: dict[str, str] = {}
    results: list[tuple[str, list[Line], frozenset[str], frozenset[str]]] = []
    for i, sha in enumerate(commits):
        if i % 2:
            theirs = run_pydriller(gr, sha, ignore, fixes)
            ours, seconds = run_dasct(repo, sha)
        else:
            ours, seconds = run_dasct(repo, sha)
            theirs = run_pydriller(gr, sha, ignore, fixes)
        dasct_s += seconds
        floor_s += python_floor()
        pyd_s += theirs.seconds
        if theirs.error:
            errors[sha] = theirs.error
        results.append((sha, ours, frozenset(x.commit for x in ours), theirs.commits))
        if sys.stderr.isatty():
            print(f"\r{i + 1}/{len(commits)}", end="", file=sys.stderr, flush=True)
    if sys.stderr.isatty():
        print(file=sys.stderr)

    agree = [r for r in results if r[2] == r[3]]
    touching = sum(1 for r in results if r[2] or r[3])
    print(f"{repo.name} at {head[:12]}: {len(commits)} commits, {len(fixes)} fix commits in "
          f"history; dasct index built at the oldest one's parent first in {index_s:.1f}s")
    print(f"same set of fix commits on {len(agree)}/{len(results)} commits "
          f"({touching} touch a fix commit on at least one side)")
    print(f"wall time over {len(results)} commits (interleaved): dasct check --commit "
          f"{dasct_s:.1f}s ({1000 * dasct_s / len(results):.0f} ms each), PyDriller "
          f"{pyd_s:.1f}s ({1000 * pyd_s / len(results):.0f} ms each); "
          f"PyDriller / dasct = {pyd_s / dasct_s:.2f}; `python -c pass` beside them "
          f"{floor_s:.1f}s")
    explainer = Explainer(repo, gr)
    classes: dict[tuple[str, str], list[str]] = defaultdict(list)
    for sha, ours, mine, theirs_set in results:
        if sha in errors:
            classes[("PyDriller raised", errors[sha])].append(sha[:12])
        elif mine != theirs_set:
            for side, cause, where in explainer.explain(sha, ours, set(mine - theirs_set),
                                                        set(theirs_set - mine)):
                classes[(side, cause)].append(where)
    pairs = Counter({k: len(v) for k, v in classes.items()})
    for (side, cause), count in pairs.most_common():
        print(f"{side}: {cause}: {count} (commit, fix) pair(s)")
        for where in classes[(side, cause)][: args.examples]:
            print(f"  {where}")
    if args.json:
        args.json.write_text(json.dumps({
            "repo": repo.name, "head": head, "commits": len(results), "agree": len(agree),
            "touching": touching, "dasct_seconds": round(dasct_s, 2),
            "pydriller_seconds": round(pyd_s, 2),
            "python_floor_seconds": round(floor_s, 2), "index_seconds": round(index_s, 1),
            "differences": [{"side": s, "cause": c, "count": len(v), "examples": v[:5]}
                            for (s, c), v in classes.items()],
        }, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
