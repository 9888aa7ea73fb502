"""Findings: which defects a change touches.

A change touches defect K when a line it removes or rewrites (its `-` side, whitespace
ignored) is a protected line of K at the change's base. Pure insertions touch nothing.
"""

from __future__ import annotations

import sys

from dasct import diff, git, index
from dasct.errors import DasctError

TYPE_CHECKING = False  # typing and dataclasses cost import time on the commit-time path
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import IO

    from dasct.settings import Settings

# The staged change as `git commit` will record it; GIT_INDEX_FILE (set by `git commit -a`
# and `git commit PATH`) is honoured because git reads it from the environment.
STAGED_DIFF = ("diff", "--cached", *diff.PATCH_OPTIONS, "--")


class Finding:
    """One protected line of one defect that a change removes or rewrites."""

    __slots__ = ("after_line", "after_path", "blob", "commit", "defect", "kind", "ledger",
                 "line", "path")

    def __init__(
        self, defect: str, path: str, line: int, commit: str,
        after_path: str | None = None, after_line: int | None = None, kind: str = "code",
        ledger: bool = False, blob: str = "",
    ) -> None:
        self.defect = defect
        self.path = path  # the path at the change's base
        self.line = line  # the protected line's number at the change's base
        self.commit = commit  # full sha of the linked commit that protects it
        # Where the change puts what replaced the line (None: the file is gone): pull
        # request annotations must point into the new version of the file.
        self.after_path = after_path
        self.after_line = after_line
        # What the line is at the base (kinds.py): code, comment, blank or import.
        self.kind = kind
        # The ledger linked the line to the defect (an accepted touch, a manual link), not
        # the commit's message: the commit is the baseline, not a fix.
        self.ledger = ledger
        self.blob = blob  # the file's blob at the base, as the diff names it ("": unknown)

    def as_dict(self) -> dict[str, str | int | None]:
        """The JSON shape of a finding (a contract: docs/cli.md)."""
        return {"defect": self.defect, "path": self.path, "line": self.line,
                "commit": self.commit, "after_path": self.after_path,
                "after_line": self.after_line, "kind": self.kind}

    def __repr__(self) -> str:
        return (f"Finding({self.defect} {self.path}:{self.line} {self.kind} "
                f"via {self.commit[:12]})")


class Change:
    """What to check: the diff arguments and the commit whose protected lines count."""

    __slots__ = ("base", "diff_args", "label", "ledger")

    def __init__(self, label: str, base: str | None, diff_args: tuple[str, ...],
                 ledger: bool = True) -> None:
        self.label = label
        self.base = base  # None: nothing existed before (initial commit), nothing to touch
        self.diff_args = diff_args
        # Whether the index is checked against the ledger's links now (index.snapshot_at):
        # not at commit time, where a refresh keeps it up to date instead.
        self.ledger = ledger


def staged(repo: git.Repo) -> Change:
    """The change about to be committed, against HEAD."""
    return Change("staged changes", repo.head, STAGED_DIFF, ledger=False)


def _beyond_boundary(what: str) -> DasctError:
    # In CI a base beyond a shallow boundary would be "nothing touched", silently: fail.
    return DasctError(f"{index.SHALLOW}; {what} lies beyond the shallow boundary")


def commit(repo: git.Repo, rev: str) -> Change:
    """What commit rev changed against its first parent."""
    sha = git.rev_parse(repo, rev)
    if sha in repo.shallow_boundary():
        raise _beyond_boundary(f"the parent of {sha[:12]}")
    code, out = git.run_code("rev-parse", "--verify", "-q", f"{sha}^1", cwd=repo.root)
    parent = out.decode().strip() if code == 0 else None
    if parent is None:
        return Change(f"commit {sha[:12]}", None, ())
    return Change(f"commit {sha[:12]}", parent, ("diff", parent, sha, *diff.PATCH_OPTIONS, "--"))


def range_(repo: git.Repo, spec: str) -> Change:
    """What A..B brings: B against its merge base with A (as a pull request shows it)."""
    if ".." not in spec:
        raise DasctError(f"--range wants A..B, got {spec!r}")
    a, _, b = spec.replace("...", "..").partition("..")
    boundary = repo.shallow_boundary()
    try:
        a_sha, b_sha = git.rev_parse(repo, a or "HEAD"), git.rev_parse(repo, b or "HEAD")
    except DasctError:
        if boundary:
            raise _beyond_boundary(f"{spec}'s start") from None
        raise
    code, out = git.run_code("merge-base", a_sha, b_sha, cwd=repo.root)
    base = out.decode().split()[0] if code == 0 and out.strip() else None
    if boundary and (base is None or base in boundary):
        raise _beyond_boundary(f"the merge base of {spec}")
    if base is None:
        return Change(f"range {spec}", None, ())
    return Change(f"range {spec}", base, ("diff", base, b_sha, *diff.PATCH_OPTIONS, "--"))


def touches(
    snapshot: index.Snapshot, files: Iterable[diff.FileChange], settings: Settings
) -> list[Finding]:
    """Every (defect, protected line) the removed or rewritten lines of files hit."""
    found: list[Finding] = []
    for change in files:
        old = change.old_path
        if old is None or change.status == "C" or change.is_gitlink:
            continue
        # Hunks come in order and never overlap: their old lines are sorted. A file that
        # goes away whole (T) touches all its protected lines.
        among = None if change.status == "T" else [
            n for h in change.hunks for n in h.old_lines]
        protected = snapshot.protected(old, among)
        if not protected or settings.excluded(old):
            continue
        after = None if change.status in ("D", "T") else change.new_path
        if change.status == "T":
            lines: Iterable[tuple[int, int | None]] = ((n, None) for n in protected)
        else:
            lines = ((n, _after_line(h, n)) for h in change.hunks for n in h.old_lines)
        for n, after_line in lines:
            hit = protected.get(n)
            if hit is not None:
                origin, defects = hit
                sha = snapshot.sha(origin)
                linked = snapshot.ledger_linked(origin)
                found.extend(
                    Finding(d, old, n, sha, after, after_line if after else None,
                            ledger=d in linked, blob=change.old_blob)
                    for d in defects
                )
    found.sort(key=lambda f: (f.defect, f.path, f.line))
    return found


def _after_line(hunk: diff.Hunk, old_line: int) -> int:
    """The new-side line standing where old_line was: its rewrite, or the line after
    which it was deleted (1 at the top of the file)."""
    if hunk.new_len:
        return hunk.new_start + min(old_line - hunk.old_start, hunk.new_len - 1)
    return max(hunk.new_start, 1)


def findings(
    repo: git.Repo, settings: Settings, change: Change, out: IO[bytes]
) -> list[Finding]:
    """Match the diff git is writing to `out` against the index at the change's base,
    each finding with its kind (classify)."""
    found = touched(repo, settings, change, out)
    classify(repo, change, found)
    return found


def touched(
    repo: git.Repo, settings: Settings, change: Change, out: IO[bytes]
) -> list[Finding]:
    """findings, their kinds not known yet.

    The caller starts git first, so git computes the diff while the index loads.
    """
    if change.base is None:
        return []
    # The first check after `dasct install` builds the index: show progress on a terminal.
    snapshot = index.snapshot_at(repo, settings, change.base, progress=sys.stderr.isatty(),
                                 ledger=change.ledger)
    files = [f for s in diff.parse(out, commits=False) for f in s.files]
    return touches(snapshot, files, settings)


def classify(repo: git.Repo, change: Change, found: list[Finding]) -> None:
    """Set each finding's kind from its file at the change's base."""
    if found and change.base is not None:
        # Only a touch pays for its kind: the kinds the refresh keeps for the files at
        # HEAD (kindcache.py), else the classifier's import and one cat-file of the
        # touched files at the base. Starting cat-file early, beside the index load, was
        # measured and not kept: it cost every silent commit 18% (bench/kinds_cost.py).
        from dasct import kindcache

        left = kindcache.annotate(str(repo.state_dir), found)
        if left:
            from dasct import kinds

            kinds.annotate(repo.root, change.base, left)


def run_check(repo: git.Repo, settings: Settings, change: Change, *, with_kinds: bool = True
              ) -> list[Finding]:
    """Check a change that is not the staged one (a commit, a range); without with_kinds,
    the findings' kinds are left to the caller (check.classify)."""
    if change.base is None:
        return []
    with git.stream(*change.diff_args, cwd=repo.root) as out:
        return (findings if with_kinds else touched)(repo, settings, change, out)


class Protected:
    """A protected line: where, its defects, the commit it comes from, and which of the
    defects the ledger (not that commit's message) linked it to. (A plain class: no
    typing import on the commit-time path.)"""

    __slots__ = ("commit", "defects", "ledger", "line", "path")

    def __init__(self, path: str, line: int, defects: tuple[str, ...], commit: str,
                 ledger: tuple[str, ...]) -> None:
        self.path, self.line, self.defects, self.commit, self.ledger = (
            path, line, defects, commit, ledger)


def protected_lines(snapshot: index.Snapshot, settings: Settings) -> Iterable[Protected]:
    """Every protected line, path order."""
    for path in sorted(snapshot.files.paths()):
        if settings.excluded(path):
            continue
        for n, (origin, defects) in sorted(snapshot.protected(path).items()):
            yield Protected(path, n, defects, snapshot.sha(origin),
                            snapshot.ledger_linked(origin))
