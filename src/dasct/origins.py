"""Line origins: the per-path state the replay builds, its run-length encoding, and how a
diff carries a file's origins forward.

An origin is the index, in the commit table, of the commit blame names for a line; a
state is, per path, a tuple of them. Separate from the replay loop (replay.py) because it
is plain data and arithmetic, no git: snapshots (snapshot.py, snapfile.py), checkpoints
and the walk hold and encode states without replaying anything.
"""

from __future__ import annotations

import itertools

from dasct.errors import DasctError

TYPE_CHECKING = False  # typing costs import time on the hook path
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence
    from typing import Protocol

    from dasct import diff

    class State(Protocol):
        """The line origins of every path at one commit."""

        def get(self, path: str) -> Origins | None: ...


Origins = tuple[int, ...]


class IndexCorrupt(DasctError):
    """A snapshot that cannot be read or does not fit the history: rebuilt, not trusted."""


class FullState(dict[str, "Origins | bytes"]):
    """Every path's origins; values may still be run-length encoded (decoded on access)."""

    def get(self, path: str) -> Origins | None:  # type: ignore[override]
        value = dict.get(self, path)
        if isinstance(value, bytes):
            value = decode(value)
            self[path] = value
        return value

    def paths(self) -> Iterable[str]:
        """All paths with lines."""
        return self.keys()


class Overlay(dict[str, "Origins | None"]):
    """A state derived from a lazily known one: own changes first (None = deleted)."""

    def __init__(self, base: State) -> None:
        super().__init__()
        self.base = base

    def get(self, path: str) -> Origins | None:  # type: ignore[override]
        if path in self:
            return dict.__getitem__(self, path)
        return self.base.get(path)



def encode(origins: Origins) -> bytes:
    """Run-length encoding of a file's origins, as snapshots store it."""
    from array import array  # not at the top: it imports collections (the hook reads only)

    runs = array("I")
    for origin, group in itertools.groupby(origins):
        runs.append(origin)
        runs.append(sum(1 for _ in group))
    return runs.tobytes()


def u32s(data: bytes | memoryview) -> memoryview:
    """data read as native unsigned 32-bit numbers (what encode writes), without a copy.
    Not array("I"): the array module imports collections, which the commit-time path
    would pay for before it starts git."""
    if len(data) % 4:
        raise IndexCorrupt("a table of numbers is cut short")
    return memoryview(data).cast("I")


def decode(data: bytes) -> Origins:
    """The origins back from their run-length encoding."""
    runs = u32s(data)
    out: list[int] = []
    for i in range(0, len(runs), 2):
        out.extend(itertools.repeat(runs[i], runs[i + 1]))
    return tuple(out)


def apply_hunks(old: Origins, hunks: Sequence[diff.Hunk], origin: int, where: str) -> Origins:
    """The origins after a diff: unchanged lines keep theirs, new lines get `origin`."""
    pieces: list[Origins] = []
    pos = 0
    for h in hunks:
        begin = h.old_start - 1 if h.old_len else h.old_start
        if begin < pos or begin + h.old_len > len(old):
            raise IndexCorrupt(f"diff of {where} does not fit the indexed file")
        pieces.append(old[pos:begin])
        pieces.append((origin,) * h.new_len)
        pos = begin + h.old_len
    pieces.append(old[pos:])
    return tuple(itertools.chain.from_iterable(pieces))


def unchanged_lines(hunks: Sequence[diff.Hunk], old_count: int) -> Iterator[tuple[int, int]]:
    """(new line, old line) pairs, 0-based, of the lines a diff leaves unchanged."""
    old_pos = new_pos = 0
    for h in hunks:
        old_begin = h.old_start - 1 if h.old_len else h.old_start
        for k in range(old_begin - old_pos):
            yield new_pos + k, old_pos + k
        new_pos += old_begin - old_pos + h.new_len
        old_pos = old_begin + h.old_len
    for k in range(old_count - old_pos):
        yield new_pos + k, old_pos + k

