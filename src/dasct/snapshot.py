"""A snapshot: the protected-lines index at one commit, and its file.

In memory (built or replayed: replay.py) or read from its snapshot file part by part as
questions come (snapfile.py's format, each part checked before it is believed). When and
how snapshots are made, kept and evicted is index.py's.
"""

from __future__ import annotations

from bisect import bisect_left

from dasct import cache, snapfile
from dasct.linklines import LineLinks
from dasct.origins import FullState, IndexCorrupt, decode, u32s

TYPE_CHECKING = False  # typing costs import time on the hook path
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from pathlib import Path

    from dasct.origins import Origins


class Snapshot:
    """The protected-lines index at one commit: in memory (built or replayed), or read
    from its snapshot file part by part as questions come (see snapfile.py)."""

    __slots__ = ("_commits", "_file", "_files", "_table", "head", "history_fp", "lines",
                 "links", "links_fp", "recover", "saved", "shallow", "stats")

    def __init__(
        self,
        head: str | None,
        commits: list[str] | str,
        files: FullState | None,
        links: dict[int, tuple[str, ...]],
        history_fp: str = "",
        links_fp: str = "",
        stats: dict[str, float] | None = None,
        file: snapfile.SnapFile | None = None,
        lines: LineLinks | None = None,
    ) -> None:
        self.head = head
        # A snapshot from a file keeps its commit ids there until a replay needs the list:
        # a commit needs a few (sha). A table given as one string is split on demand too.
        self._table = commits if isinstance(commits, str) else ""
        self._commits: list[str] | None = None if isinstance(commits, str) else commits
        self._files = files
        self._file = file
        self.links = links
        # The ledger's line links this snapshot was replayed with, and their aliases.
        self.lines = lines if lines is not None else LineLinks()
        self.history_fp = history_fp
        self.links_fp = links_fp
        self.stats: dict[str, float] = stats or {}
        self.saved = True  # False: computed, but the index dir could not keep it
        self.shallow = False  # computed in a shallow clone: lines beyond it protect nothing
        # What answers instead when a part of the file read later turns out damaged (the
        # file is discarded, saying so once); None: IndexCorrupt is raised to the caller.
        self.recover: Callable[[], Snapshot] | None = None

    @classmethod
    def opened(cls, file: snapfile.SnapFile) -> Snapshot:
        """The snapshot in an open, head-checked snapshot file."""
        return cls(file.head, "", None, file.links, file.history_fp, file.links_fp,
                   file=file, lines=file.lines)

    def _damaged(self, exc: IndexCorrupt) -> None:
        """A part read from the file did not check out: answer from the recovery."""
        if self.recover is None or self._file is None:
            raise exc
        recover, self.recover = self.recover, None
        cache.discard(self._file.path, str(exc))
        other = recover()
        self._files, self._commits, self._table = other.files, other.commits, ""
        self.links, self.history_fp, self.links_fp = other.links, other.history_fp, other.links_fp
        self.lines = other.lines
        self.saved, self._file = other.saved, None

    def _value(self, path: str) -> Origins | bytes | None:
        if self._files is None and self._file is not None:
            try:
                return self._file.runs(path)
            except IndexCorrupt as exc:
                self._damaged(exc)
        return dict.get(self.files, path)

    @property
    def files(self) -> FullState:
        """Every path's origins (a snapshot from a file reads, and checks, all of it)."""
        if self._files is None:
            assert self._file is not None
            try:
                self._files = self._file.all_files()
            except IndexCorrupt as exc:
                self._damaged(exc)
                assert self._files is not None
        return self._files

    def line_count(self, path: str) -> int:
        """How many lines path has, without expanding its encoding."""
        value = self._value(path)
        if isinstance(value, bytes):
            return sum(u32s(value)[1::2])
        return len(value or ())

    def origins(self, path: str) -> Origins:
        """Per line of path (index 0 = line 1), the index of the commit blame names."""
        value = self._value(path)
        if isinstance(value, bytes):
            return decode(value)
        return value or ()

    def protected(
        self, path: str, among: Sequence[int] | None = None
    ) -> dict[int, tuple[int, tuple[str, ...]]]:
        """Protected lines of path: {1-based line: (commit index, defects)}; with among
        (sorted line numbers), only those of them that are protected: a change asks about
        the lines it touches, not a whole file where most lines are protected."""
        links = self.links
        value = self._value(path)
        if isinstance(value, bytes):
            # Straight from the run-length encoding: the commit-time path never expands
            # a 5,000-line file into a tuple just to find its few protected lines.
            runs = u32s(value)
            out: dict[int, tuple[int, tuple[str, ...]]] = {}
            line = 1
            for i in range(0, len(runs), 2):
                origin, count = runs[i], runs[i + 1]
                defects = links.get(origin)
                if defects is not None:
                    if among is None:
                        span: Iterable[int] = range(line, line + count)
                    else:
                        span = among[bisect_left(among, line):bisect_left(among, line + count)]
                    for n in span:
                        out[n] = (origin, defects)
                line += count
            return out
        if among is not None:
            value = value or ()
            return {n: (o, links[o]) for n in among
                    if 0 < n <= len(value) and (o := value[n - 1]) in links}
        return {n: (o, links[o]) for n, o in enumerate(value or (), 1) if o in links}

    def ledger_linked(self, origin: int) -> tuple[str, ...]:
        """The defects the ledger, not the commit's message, links origin's lines to."""
        alias = self.lines.aliases.get(origin)
        if alias is None:
            return ()
        own = self.links.get(alias[0], ())
        return tuple(c[1:] for c in alias[1] if c[0] == "+" and c[1:] not in own)

    def fix_commits(self) -> int:
        """How many commits link lines (a commit linked through the ledger counts once)."""
        aliases = self.lines.aliases
        return len({aliases[i][0] if i in aliases else i for i in self.links})

    @property
    def commits(self) -> list[str]:
        """Every commit id, by index (the list the replay extends)."""
        if self._commits is None:
            table = self.commit_table()
            width = len(self.head or "")
            self._commits = [table[i : i + width] for i in range(0, len(table), width)]
        return self._commits

    def commit_table(self) -> str:
        """The commit ids concatenated, as snapshots store them."""
        if self._commits is not None:
            return "".join(self._commits)
        if self._file is not None and not self._table:
            try:
                self._table = self._file.commit_table()
            except IndexCorrupt as exc:
                self._damaged(exc)
                return self.commit_table()
        return self._table

    def sha(self, index: int) -> str:
        """The full sha of a commit index (of the commit an alias stands for:
        linklines.py)."""
        alias = self.lines.aliases.get(index)
        if alias is not None:
            index = alias[0]
        if self._commits is not None:
            return self._commits[index]
        if self._file is not None and not self._table:
            try:
                return self._file.sha(index)
            except IndexCorrupt as exc:
                self._damaged(exc)
                return self.sha(index)
        width = len(self.head or "")
        if not 0 <= index < len(self._table) // width:
            raise IndexError(index)
        return self._table[index * width : (index + 1) * width]


def write_snapshot(path: Path, snap: Snapshot) -> bool:
    """Write snap to path atomically (snapfile.py's format); False (and one line after
    the command's answer, cache.failed_writes) when it cannot."""
    assert snap.head is not None
    return cache.write_parts(path, snapfile.parts(
        snap.head, snap.commit_table(), snap.links, snap.files, snap.history_fp,
        snap.links_fp, snap.lines))


def read_snapshot(path: Path) -> Snapshot:
    """The snapshot in path, its head checked; its other parts are checked as they are
    read. IndexCorrupt (with the reason) when the head does not check out, OSError when
    the file cannot be read."""
    return Snapshot.opened(snapfile.SnapFile(path))
