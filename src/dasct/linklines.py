"""Ledger links as the index applies them: lines of one commit linked to, or unlinked
from, a defect.

A ledger record (ledger.py) names lines in the coordinates of the commit that owns them:
the commit blame names, its path and its line numbers there. An accepted touch names the
touching commit's `+` lines in the touching hunks; `dasct link PATH:A-B` names, through
blame, the commits that own lines A-B at HEAD. The replay (replay.py) gives those lines an
origin of their own, an *alias* of the owning commit carrying the defects the records add
or remove, so that from then on they move exactly as blame moves the commit's other lines,
and the protected lines stay "the lines blame attributes to a linked commit".

An alias is a row of the snapshot's commit table like any commit; its id is derived from
the owning commit and the changes (no commit has it), and `aliases` maps it back to the
owning commit for everything that shows or reports a commit.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from typing import Any

# (owning commit, path at that commit, 1-based inclusive line ranges, "+KEY" or "-KEY")
Entry = tuple[str, str, tuple[tuple[int, int], ...], str]
# alias index -> (owning commit's index, its changes as sorted "+KEY"/"-KEY")
Aliases = dict[int, tuple[int, tuple[str, ...]]]
LINK_TYPES = ("link", "unlink", "accept")
MAX_LINE = 1 << 28  # snapfile.MAX_LINES: no file has more lines


class LineLinks:
    """The ledger's line links at one ledger state (`fp`), and the aliases a replay made
    for them (index -> owning commit index and changes)."""

    __slots__ = ("_by_commit", "aliases", "entries", "fp")

    def __init__(self, fp: str = "", entries: Sequence[Entry] = (),
                 aliases: Aliases | None = None) -> None:
        self.fp = fp
        self.entries = tuple(entries)
        self.aliases: Aliases = dict(aliases or {})
        self._by_commit: dict[str, dict[str, list[tuple[tuple[tuple[int, int], ...], str]]]
                              ] | None = None

    def __bool__(self) -> bool:
        return bool(self.entries or self.aliases)

    def commits(self) -> set[str]:
        """The commits whose lines the entries name."""
        return {e[0] for e in self.entries}

    def changes(self, sha: str, path: str, count: int) -> list[tuple[str, ...]] | None:
        """Per line of path at sha (0-based, `count` lines), the changes its entries make
        (sorted "+KEY"/"-KEY"; empty: none); None when no entry names path at sha. For each
        (line, defect) the last entry naming it wins (the ledger's order: oldest first)."""
        if self._by_commit is None:
            self._by_commit = {}
            for commit, where, ranges, change in self.entries:
                self._by_commit.setdefault(commit, {}).setdefault(where, []).append(
                    (ranges, change))
        named = self._by_commit.get(sha, {}).get(path)
        if not named:
            return None
        last: list[dict[str, str]] = [{} for _ in range(count)]
        for ranges, change in named:
            for start, end in ranges:
                for i in range(max(start, 1) - 1, min(end, count)):
                    last[i][change[1:]] = change[0]
        return [tuple(sorted(sign + key for key, sign in d.items())) for d in last]


def alias_id(sha: str, changes: tuple[str, ...]) -> str:
    """The commit-table id of an alias of sha: as wide as sha, and no commit's id."""
    import hashlib  # only when the ledger links lines: not on a plain commit's path

    digest = hashlib.sha256(f"dasct-alias\0{sha}\0{chr(0).join(changes)}".encode()).hexdigest()
    return (digest * 2)[: len(sha)]


def defects_of(links: Mapping[int, tuple[str, ...]], real: int,
               changes: tuple[str, ...]) -> tuple[str, ...]:
    """The defects of an alias: its commit's, with the changes applied."""
    keys = list(links.get(real, ()))
    for change in changes:
        key = change[1:]
        if change[0] == "+" and key not in keys:
            keys.append(key)
        elif change[0] == "-" and key in keys:
            keys.remove(key)
    return tuple(keys)


def with_aliases(links: dict[int, tuple[str, ...]], aliases: Aliases
                 ) -> dict[int, tuple[str, ...]]:
    """links (commit index -> defects) with every alias's entry recomputed from its
    commit's: after the fix commits were linked or relinked."""
    for index, (real, changes) in aliases.items():
        keys = defects_of(links, real, changes)
        if keys:
            links[index] = keys
        else:
            links.pop(index, None)
    return links


def _ranges(value: object) -> tuple[tuple[int, int], ...] | None:
    if not isinstance(value, (list, tuple)) or not value:
        return None
    out = []
    for item in value:
        if (not isinstance(item, (list, tuple)) or len(item) != 2
                or not all(type(n) is int for n in item)
                or not 1 <= item[0] <= item[1] <= MAX_LINE):
            return None
        out.append((int(item[0]), int(item[1])))
    return tuple(out)


def entries(records: Iterable[Any]) -> list[Entry]:
    """The line links of ledger records (link, unlink, accept; oldest first), in order.

    link / unlink: data {defect, commit, path, lines: [[start, end], ...]};
    accept: data {defect, commit, lines: {path: [[start, end], ...]}}. A record that does
    not have that shape is left out, with one line naming it (the ledger is read from
    disk: what it holds is checked before the index believes it).
    """
    from dasct.refs import valid_key

    out: list[Entry] = []
    for record in records:
        data = record.data
        defect, commit = data.get("defect"), data.get("commit")
        ok = (isinstance(defect, str) and valid_key(defect) and isinstance(commit, str)
              and len(commit) in (40, 64) and all(c in "0123456789abcdef" for c in commit))
        per_path: list[tuple[str, tuple[tuple[int, int], ...]]] = []
        if ok and record.type in ("link", "unlink"):
            path, ranges = data.get("path"), _ranges(data.get("lines"))
            ok = isinstance(path, str) and bool(path) and ranges is not None
            if ok:
                assert isinstance(path, str) and ranges is not None
                per_path.append((path, ranges))
        elif ok and record.type == "accept":
            lines = data.get("lines")
            ok = isinstance(lines, dict)
            for path, value in (lines.items() if isinstance(lines, dict) else ()):
                ranges = _ranges(value)
                if not isinstance(path, str) or not path or ranges is None:
                    ok = False
                    break
                per_path.append((path, ranges))
        else:
            ok = False
        if not ok:
            print(f"dasct: ledger record {getattr(record, 'id', '?')[:12]} ({record.type}) "
                  "does not name a defect, a commit and lines: left out", file=sys.stderr)
            continue
        sign = "-" if record.type == "unlink" else "+"
        assert isinstance(commit, str) and isinstance(defect, str)
        out.extend((commit, path, ranges, sign + defect) for path, ranges in per_path)
    return out
