"""Checkpoints: snapshots along HEAD's first-parent chain, so that a question about an old
commit replays a few hundred commits instead of the whole history.

A rebuild from the whole history (and an update for HEAD that replays enough commits)
writes the state at commits of HEAD's first-parent chain into `<index dir>/checkpoints/`,
one snapshot file each (index.write_snapshot/read_snapshot: the same format, checks and
damage handling), named `<position>-<sha>.snap`. The position is how many commits the
replay had done there (in a rebuild, the commit's place in the topological order), how far
into the history it lies. The rule (docs/protected-lines.md):

* spacing: a checkpoint at the first chain commit at least `spacing(n)` positions past the
  previous one, with spacing(n) = max(MIN_SPACING, n / MAX_CHECKPOINTS) for a history of
  n commits: a question then replays at most about 1/MAX_CHECKPOINTS of the history;
* bound: at most MAX_CHECKPOINTS files; beyond that, the checkpoint whose removal leaves
  the smallest gap between its neighbours goes, so that the survivors stay evenly spread
  (the newest is never thinned);
* the snapshots' eviction (the 8 most recently used) never touches them; a rebuild for
  HEAD replaces them all. They belong to one history (index.history's fingerprint, kept
  in `checkpoints/history`): once blame sees another one (unshallowed, grafted, another
  `.git-blame-ignore-revs`), all of them are deleted at the next look.
"""

from __future__ import annotations

import os

from dasct import cache
from dasct.linklines import with_aliases
from dasct.origins import FullState, encode

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

    from dasct import git
    from dasct.index import Snapshot
    from dasct.origins import Origins, State
    from dasct.replay import Builder
    from dasct.replay_log import Commit
    from dasct.settings import Settings

MAX_CHECKPOINTS = 32
MIN_SPACING = 200  # fewer commits than this replay in ~0.1 s: no checkpoint is worth it
MARKER_KIND = b"cp"  # cache.py kind of the history marker


def directory(repo: git.Repo) -> Path:
    """Where checkpoints live: beside the snapshots, out of their eviction's reach."""
    from dasct import index

    return index.index_dir(repo) / "checkpoints"


def _marker(repo: git.Repo) -> Path:
    return directory(repo) / "history"


def _history_of(repo: git.Repo) -> str | None:
    try:
        value = cache.read(_marker(repo), MARKER_KIND, 1)
    except (OSError, cache.Damaged):
        return None
    return value if isinstance(value, str) else None


def listing(repo: git.Repo, history_fp: str | None = None) -> dict[str, tuple[int, Path]]:
    """Every checkpoint: {sha: (position, path)}; with history_fp, only if they belong to
    that history (else they are all deleted)."""
    where = directory(repo)
    try:
        names = os.listdir(where)
    except OSError:
        return {}  # none yet
    if history_fp is not None and names and _history_of(repo) != history_fp:
        for name in names:
            cache.discard(where / name)
        return {}
    out: dict[str, tuple[int, Path]] = {}
    for name in names:
        position, _, sha = name.removesuffix(".snap").partition("-")
        if name.endswith(".snap") and position.isdigit() and len(sha) in (40, 64):
            out[sha] = (int(position), where / name)
    return out


def usage(repo: git.Repo) -> tuple[int, int]:
    """How many checkpoints there are and their bytes (`dasct index` reports both)."""
    count = size = 0
    for _, path in listing(repo).values():
        try:
            size += path.stat().st_size
        except OSError:
            continue  # thinned by another dasct meanwhile
        count += 1
    return count, size


def spacing(commits: int) -> int:
    """Positions between checkpoints for a history of `commits` commits."""
    return max(MIN_SPACING, -(-commits // MAX_CHECKPOINTS))


def to_thin(positions: list[int], keep: int) -> list[int]:
    """Which of the (sorted) positions go so that `keep` remain, spread evenly: each time
    the one whose removal leaves the smallest gap, the oldest on a tie, never the newest."""
    alive = list(positions)
    gone: list[int] = []
    while len(alive) > max(keep, 1):
        gaps = [alive[i + 1] - (alive[i - 1] if i else 0) for i in range(len(alive) - 1)]
        victim = gaps.index(min(gaps))
        gone.append(alive.pop(victim))
    return gone


class Writer:
    """The replay's `after` hook of a build: saves a checkpoint at every chain commit
    `every` positions past the previous one."""

    def __init__(self, repo: git.Repo, settings: Settings, builder: Builder,
                 todo: list[Commit], links: dict[int, tuple[str, ...]], history_fp: str,
                 last: int, every: int | None = None, start: int = 0) -> None:
        self.repo = repo
        self.settings = settings
        self.builder = builder
        self.links = dict(links)
        self.history_fp = history_fp
        self.last = last
        self.position = start
        # A rebuild numbers every commit before replaying (parents first): the table of a
        # checkpoint is then the prefix replayed so far, unless the replay added a commit
        # after them (a shallow clone's unknown origin).
        self.numbered = len(builder.commits) if start == 0 else 0
        self.every = every if every is not None else spacing(len(todo))
        self.written: set[str] = set()
        # HEAD's first-parent chain inside todo: the only commits a checkpoint is for.
        by_sha = {c.sha: c for c in todo}
        self.chain: set[str] = set()
        at = by_sha.get(todo[-1].sha) if todo else None
        while at is not None:
            self.chain.add(at.sha)
            at = by_sha.get(at.parents[0]) if at.parents else None
        # Per path the origins last encoded and their encoding: a file keeps its tuple
        # object until a commit changes it, so most of a checkpoint is encoded already.
        self.encoded: dict[str, tuple[Origins, bytes]] = {}

    @classmethod
    def after_base(cls, repo: git.Repo, settings: Settings, builder: Builder,
                   todo: list[Commit], base: Snapshot, start: int) -> Writer:
        """The writer of an update from base (at position start): spaced as a rebuild of
        the whole would be, counting from the newest checkpoint before base."""
        earlier = [p for p, _ in listing(repo).values() if p <= start]
        return cls(repo, settings, builder, todo, base.links, base.history_fp,
                   max(earlier, default=0), spacing(start + len(todo)), start)

    def after(self, commit: Commit, state: State) -> None:
        from dasct import index

        self.links.update(index.links_for([commit], self.builder, self.settings))
        if self.builder.lines.aliases:
            with_aliases(self.links, self.builder.lines.aliases)
        self.position += 1
        position = self.position
        if (commit.sha not in self.chain or position - self.last < self.every
                or not isinstance(state, FullState)):
            return
        self.last = position
        if not self.written and _history_of(self.repo) != self.history_fp:
            listing(self.repo, self.history_fp)  # another history's go first
            if not cache.write(_marker(self.repo), self.history_fp, MARKER_KIND, 1):
                return
        files = FullState()
        encoded: dict[str, tuple[Origins, bytes]] = {}
        for path, value in dict.items(state):
            if isinstance(value, bytes):
                files[path] = value  # still as loaded: its encoding is at hand
                continue
            if not value:
                continue  # an empty file has no entry in a saved snapshot
            known = self.encoded.get(path)
            data = known[1] if known is not None and known[0] is value else encode(value)
            encoded[path] = (value, data)
            files[path] = data
        self.encoded = encoded
        table = self.builder.commits
        table = table[:position] if len(table) == self.numbered else table[:]
        links = {k: v for k, v in self.links.items() if k < len(table)}
        snap = index.Snapshot(commit.sha, table, files, links, self.history_fp,
                              self.settings.links_fingerprint, lines=self.builder.lines)
        where = directory(self.repo) / f"{position:09d}-{commit.sha}.snap"
        if index.write_snapshot(where, snap):
            self.written.add(commit.sha)

    def finish(self, *, replace: bool) -> None:
        """Keep the checkpoints within their bound (and only this build's, if replace)."""
        found = listing(self.repo)
        if replace:
            for sha, (_, path) in list(found.items()):
                if sha not in self.written:
                    cache.discard(path)
                    del found[sha]
        by_position = sorted(found.values())
        gone = set(to_thin([p for p, _ in by_position], MAX_CHECKPOINTS))
        for position, path in by_position:
            if position in gone:
                gone.discard(position)
                cache.discard(path)
