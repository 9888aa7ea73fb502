"""Commits of `.git-blame-ignore-revs`: the origins blame gives their lines, one step.

replay.py replays every other commit from its diff; an ignored commit's lines go where
blame's own fuzzy matching sends them, so git is asked (docs/protected-lines.md).
"""

from __future__ import annotations

from dasct import diff, git
from dasct.origins import IndexCorrupt

TYPE_CHECKING = False  # typing costs import time on the hook path
if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from dasct.origins import Origins, State


def origins(
    root: Path, sha: str, own: int, paths: list[str], parents: Sequence[tuple[str, State]]
) -> dict[str, Origins]:
    """The origins blame gives the files an ignored commit sha changes (own: sha's index
    in the commit table), from its parents' states; a file git cannot blame is left out
    (the diff's answer stands).

    Blame passes each line of an ignored commit's hunks to a similar line of the
    parent's hunk (git's blame.c guesses it), and from there on the parent's blame
    holds. So one step of blame is enough: `git blame -w --ignore-rev X X ^P...` stops
    at the parents and names, for every line, the parent and the line number in it
    (or X for a line it could not pass on); the parent's state already holds that
    line's origin. Git's own matching, so exact; one short blame per file, not a
    blame of the file's whole history. The files are independent: both cores.
    """
    if not paths:
        return {}
    from concurrent.futures import ThreadPoolExecutor  # only an ignored commit pays

    states = dict(parents)
    negative = [f"^{p}" for p, _ in parents]

    def step(path: str) -> tuple[str, list[tuple[str, int, int, int, str]] | None]:
        code, out = git.run_code(
            "-c", "blame.ignoreRevsFile=", "blame", "-w", "--incremental",
            "--ignore-rev", sha, sha, *negative, "--", path, cwd=root)
        return path, _incremental_entries(out) if code == 0 else None

    out: dict[str, Origins] = {}
    with ThreadPoolExecutor(max_workers=2) as pool:
        for path, entries in pool.map(step, paths):
            if entries is None:
                continue  # git could not blame it: the diff's answer stands
            lines: dict[int, int] = {}
            for origin, source_line, line, count, source in entries:
                if origin == sha or origin not in states:
                    for k in range(count):
                        lines[line - 1 + k] = own
                    continue
                old = states[origin].get(source)
                if old is None or source_line - 1 + count > len(old):
                    raise IndexCorrupt(
                        f"blame of {sha}:{path} names lines {source} does not have")
                for k in range(count):
                    lines[line - 1 + k] = old[source_line - 1 + k]
            out[path] = tuple(lines[i] for i in range(len(lines)))
    return out


def _incremental_entries(out: bytes) -> list[tuple[str, int, int, int, str]]:
    """(commit, line in its file, line in the blamed file, count, its file's path) per
    entry of `git blame --incremental` output (each entry ends with its filename)."""
    entries = []
    head: tuple[str, int, int, int] | None = None
    for line in out.split(b"\n"):
        parts = line.split(b" ")
        if len(parts) == 4 and len(parts[0]) in (40, 64) and parts[3].isdigit():
            head = (parts[0].decode(), int(parts[1]), int(parts[2]), int(parts[3]))
        elif line.startswith(b"filename ") and head is not None:
            entries.append((*head, diff.unquote(line[9:])))
            head = None
    return entries
