"""Findings: which defects a change touches.

A change touches defect K when a line it removes or rewrites (its `-` side, whitespace
ignored) is a protected line of K at the change's base. Pure insertions touch nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from dasct import diff, git, index
from dasct.config import Config, PathsConfig
from dasct.errors import DasctError


class Finding(NamedTuple):
    """One protected line of one defect that a change removes or rewrites."""

    defect: str
    path: str
    line: int  # the protected line's number at the change's base
    commit: str  # full sha of the linked commit that protects it


@dataclass(frozen=True)
class Change:
    """What to check: the diff arguments and the commit whose protected lines count."""

    label: str
    base: str | None  # None: nothing existed before (initial commit), nothing to touch
    diff_args: tuple[str, ...]


def staged(repo: git.Repo) -> Change:
    """The change about to be committed (honours GIT_INDEX_FILE set by `git commit -a`)."""
    return Change("staged changes", repo.head, ("diff", "--cached", "HEAD"))


def commit(repo: git.Repo, rev: str) -> Change:
    """What commit rev changed against its first parent."""
    sha = git.rev_parse(repo, rev)
    code, out = git.run_code("rev-parse", "--verify", "-q", f"{sha}^1", cwd=repo.root)
    parent = out.decode().strip() if code == 0 else None
    if parent is None:
        return Change(f"commit {sha[:12]}", None, ())
    return Change(f"commit {sha[:12]}", parent, ("diff", parent, sha))


def range_(repo: git.Repo, spec: str) -> Change:
    """What A..B brings: B against its merge base with A (as a pull request shows it)."""
    if ".." not in spec:
        raise DasctError(f"--range wants A..B, got {spec!r}")
    a, _, b = spec.replace("...", "..").partition("..")
    a_sha, b_sha = git.rev_parse(repo, a or "HEAD"), git.rev_parse(repo, b or "HEAD")
    code, out = git.run_code("merge-base", a_sha, b_sha, cwd=repo.root)
    base = out.decode().split()[0] if code == 0 and out.strip() else None
    if base is None:
        return Change(f"range {spec}", None, ())
    return Change(f"range {spec}", base, ("diff", base, b_sha))


def touches(
    snapshot: index.Snapshot, files: Iterable[diff.FileChange], paths: PathsConfig
) -> list[Finding]:
    """Every (defect, protected line) the removed or rewritten lines of files hit."""
    found: list[Finding] = []
    for change in files:
        old = change.old_path
        if old is None or change.status == "C" or change.is_gitlink or paths.excluded(old):
            continue
        protected = snapshot.protected(old)
        if not protected:
            continue
        if change.status == "T":
            lines: Iterable[int] = protected.keys()  # the old file goes away whole
        else:
            lines = (n for h in change.hunks for n in h.old_lines)
        for n in lines:
            hit = protected.get(n)
            if hit is not None:
                origin, defects = hit
                sha = snapshot.sha(origin)
                found.extend(Finding(d, old, n, sha) for d in defects)
    found.sort(key=lambda f: (f.defect, f.path, f.line))
    return found


def run_check(repo: git.Repo, config: Config, change: Change) -> list[Finding]:
    """Run the diff and load the index side by side, then match them."""
    if change.base is None:
        return []
    with git.stream(*change.diff_args, *diff.PATCH_OPTIONS, "--", cwd=repo.root) as out:
        # git computes the diff while we load the snapshot: the two overlap.
        snapshot = index.snapshot_at(repo, config, change.base)
        files = [f for s in diff.parse(out, commits=False) for f in s.files]
    return touches(snapshot, files, config.paths)


def protected_lines(
    snapshot: index.Snapshot, paths: PathsConfig
) -> Iterable[tuple[str, int, tuple[str, ...], str]]:
    """Every protected line: (path, line, defects, linked commit sha), path order."""
    for path in sorted(snapshot.files.paths()):
        if paths.excluded(path):
            continue
        for n, (origin, defects) in sorted(snapshot.protected(path).items()):
            yield path, n, defects, snapshot.sha(origin)
