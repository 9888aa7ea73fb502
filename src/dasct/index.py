"""Protected lines: which commit `git blame -w` gives every line at a commit, kept as an index.

The index replays history forward with exactly the rules blame applies backward, so that
it agrees with `git blame -w` line for line (PRODUCT.md, "Semantics of protected lines"):

* a non-merge commit passes the lines its -w diff leaves unchanged to its parent and owns
  the rest; whole-file renames are followed (blame follows them by default);
* a merge first looks for a parent whose blob is identical (same path first, then through
  a rename) and takes that parent's lines whole; otherwise each parent in order takes the
  lines its -w diff leaves unchanged, and the merge owns what no parent explains;
* a commit listed in `.git-blame-ignore-revs` gets, for the files it changes, exactly what
  `git blame -w --ignore-revs-file` says at that commit.

A state is, per path, a tuple holding for each line the index of the commit blame names.
Snapshots of the state at recent HEADs live in `<git common dir>/dasct/index/`, one
marshal file per commit; moving HEAD replays only the commits since the nearest snapshot
on HEAD's first-parent chain.
"""

from __future__ import annotations

import itertools
import marshal
import os
import sys
import time
import zlib
from array import array

from dasct import diff, git
from dasct.errors import DasctError
from dasct.refs import defect_keys

TYPE_CHECKING = False  # typing, dataclasses and hashlib cost import time on the hook path
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence
    from pathlib import Path
    from typing import Protocol

    from dasct.settings import Settings

    class State(Protocol):
        """The line origins of every path at one commit."""

        def get(self, path: str) -> Origins | None: ...

FORMAT = 1
KEEP_SNAPSHOTS = 8
IGNORE_REVS_FILE = ".git-blame-ignore-revs"
# Beyond this many commits between HEAD and the nearest snapshot a rebuild is as cheap.
MAX_INCREMENTAL = 20_000

Origins = tuple[int, ...]


class IndexCorrupt(DasctError):
    """A snapshot that cannot be read or does not fit the history: rebuilt, not trusted."""


# ----------------------------------------------------------------------------- states


class FullState(dict[str, "Origins | bytes"]):
    """Every path's origins; values may still be run-length encoded (decoded on access)."""

    def get(self, path: str) -> Origins | None:  # type: ignore[override]
        value = dict.get(self, path)
        if isinstance(value, bytes):
            value = _decode(value)
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


class BlameState:
    """The state of a commit outside the replayed range, asked of `git blame` per path."""

    def __init__(self, index: Builder, commit: str) -> None:
        self.index = index
        self.commit = commit
        self.cache: dict[str, Origins | None] = {}

    def get(self, path: str) -> Origins | None:
        if path not in self.cache:
            self.cache[path] = self.index.blame(self.commit, path)
        return self.cache[path]


def _encode(origins: Origins) -> bytes:
    runs = array("I")
    for origin, group in itertools.groupby(origins):
        runs.append(origin)
        runs.append(sum(1 for _ in group))
    return runs.tobytes()


def _decode(data: bytes) -> Origins:
    runs = array("I")
    runs.frombytes(data)
    out: list[int] = []
    for i in range(0, len(runs), 2):
        out.extend(itertools.repeat(runs[i], runs[i + 1]))
    return tuple(out)


def _apply(old: Origins, hunks: Sequence[diff.Hunk], origin: int, where: str) -> Origins:
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


def _unchanged(hunks: Sequence[diff.Hunk], old_count: int) -> Iterator[tuple[int, int]]:
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


# -------------------------------------------------------------------------- snapshot


class Snapshot:
    """The protected-lines index at one commit."""

    __slots__ = ("commits", "files", "head", "ignore_fp", "links", "links_fp", "stats")

    def __init__(
        self,
        head: str | None,
        commits: list[str],
        files: FullState,
        links: dict[int, tuple[str, ...]],
        ignore_fp: str = "",
        links_fp: str = "",
        stats: dict[str, float] | None = None,
    ) -> None:
        self.head = head
        self.commits = commits
        self.files = files
        self.links = links
        self.ignore_fp = ignore_fp
        self.links_fp = links_fp
        self.stats: dict[str, float] = stats or {}

    def line_count(self, path: str) -> int:
        """How many lines path has, without expanding its encoding."""
        value = dict.get(self.files, path)
        if isinstance(value, bytes):
            runs = array("I")
            runs.frombytes(value)
            return sum(runs[1::2])
        return len(value or ())

    def origins(self, path: str) -> Origins:
        """Per line of path (index 0 = line 1), the index of the commit blame names."""
        return self.files.get(path) or ()

    def protected(self, path: str) -> dict[int, tuple[int, tuple[str, ...]]]:
        """Protected lines of path: {1-based line: (commit index, defects)}."""
        links = self.links
        value = dict.get(self.files, path)
        if isinstance(value, bytes):
            # Straight from the run-length encoding: the commit-time path never expands
            # a 5,000-line file into a tuple just to find its few protected lines.
            runs = array("I")
            runs.frombytes(value)
            out: dict[int, tuple[int, tuple[str, ...]]] = {}
            line = 1
            for i in range(0, len(runs), 2):
                origin, count = runs[i], runs[i + 1]
                defects = links.get(origin)
                if defects is not None:
                    for n in range(line, line + count):
                        out[n] = (origin, defects)
                line += count
            return out
        return {
            n: (o, links[o]) for n, o in enumerate(self.origins(path), 1) if o in links
        }

    def sha(self, index: int) -> str:
        """The full sha of a commit index."""
        return self.commits[index]


def _ignore_revs(repo: git.Repo) -> tuple[frozenset[str], str]:
    path = repo.root / IGNORE_REVS_FILE
    try:
        data = path.read_bytes()
    except OSError:
        return frozenset(), ""
    revs = set()
    for line in data.decode("utf-8", "replace").splitlines():
        word = line.split("#", 1)[0].strip()
        if word:
            revs.add(word.lower())
    return frozenset(revs), f"{zlib.crc32(data):08x}-{len(data)}"


def index_dir(repo: git.Repo) -> Path:
    """Where snapshots live: inside the git dir, never in the work tree."""
    return repo.state_dir / "index"


def _snapshot_path(repo: git.Repo, head: str) -> Path:
    return index_dir(repo) / f"{head}.snap"


def _save(repo: git.Repo, snap: Snapshot) -> None:
    assert snap.head is not None
    directory = index_dir(repo)
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        p: (v if isinstance(v, bytes) else _encode(v))
        for p, v in dict.items(snap.files)
        if v
    }
    payload = {
        "format": FORMAT,
        "head": snap.head,
        "commits": "".join(snap.commits),
        "width": len(snap.head),
        "links": {k: list(v) for k, v in snap.links.items()},
        "files": files,
        "ignore": snap.ignore_fp,
        "links_fp": snap.links_fp,
    }
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            marshal.dump(payload, f)
        os.replace(tmp, _snapshot_path(repo, snap.head))
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    snaps = sorted(directory.glob("*.snap"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in snaps[KEEP_SNAPSHOTS:]:
        old.unlink(missing_ok=True)


def _load(path: Path) -> Snapshot:
    try:
        with path.open("rb") as f:
            payload = marshal.load(f)
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise IndexCorrupt(f"{path} has an unknown format")
        width = payload["width"]
        blob = payload["commits"]
        commits = [blob[i : i + width] for i in range(0, len(blob), width)]
        files = FullState(payload["files"])
        links = {int(k): tuple(v) for k, v in payload["links"].items()}
        return Snapshot(
            head=payload["head"], commits=commits, files=files, links=links,
            ignore_fp=payload["ignore"], links_fp=payload["links_fp"],
        )
    except (OSError, EOFError, ValueError, TypeError, KeyError) as exc:
        raise IndexCorrupt(f"{path} is unreadable: {exc}") from None


# --------------------------------------------------------------------------- builder


class _Commit:
    __slots__ = ("message", "parents", "sha")

    def __init__(self, sha: str, parents: list[str], message: str) -> None:
        self.sha = sha
        self.parents = parents
        self.message = message


def _log_commits(repo: git.Repo, revs: Sequence[str]) -> list[_Commit]:
    """Commits of revs, parents before children, with their full messages."""
    out = git.run(
        "log", "-z", "--topo-order", "--reverse", "--format=%H%x00%P%x00%B", *revs, "--",
        cwd=repo.root,
    )
    tokens = out.split(b"\0")
    commits = []
    for i in range(0, len(tokens) - 2, 3):
        sha = tokens[i].decode().strip()
        if not sha:
            continue
        parents = tokens[i + 1].decode().split()
        commits.append(_Commit(sha, parents, tokens[i + 2].decode("utf-8", "replace")))
    return commits


class Builder:
    """Replays commits forward into states (see the module docstring for the rules)."""

    def __init__(self, repo: git.Repo, commits: list[str], ignore: frozenset[str]) -> None:
        self.repo = repo
        self.commits = commits
        self.position = {sha: i for i, sha in enumerate(commits)}
        self.ignore = ignore
        self.ignore_file = repo.root / IGNORE_REVS_FILE if ignore else None
        self.blamed = 0

    def number(self, sha: str) -> int:
        """The index of a commit, added to the table when new."""
        n = self.position.get(sha)
        if n is None:
            n = self.position[sha] = len(self.commits)
            self.commits.append(sha)
        return n

    def blame(self, commit: str, path: str) -> Origins | None:
        """What `git blame -w` says of every line of path at commit (None: no such file)."""
        self.blamed += 1
        args = ["-c", "blame.ignoreRevsFile=", "blame", "-w", "--incremental"]
        if self.ignore_file is not None:
            args += ["--ignore-revs-file", str(self.ignore_file)]
        code, out = git.run_code(*args, commit, "--", path, cwd=self.repo.root)
        if code != 0:
            return None
        lines: dict[int, int] = {}
        for line in out.split(b"\n"):
            parts = line.split(b" ")
            if len(parts) == 4 and len(parts[0]) in (40, 64) and parts[3].isdigit():
                n = self.number(parts[0].decode())
                start = int(parts[2]) - 1
                for k in range(int(parts[3])):
                    lines[start + k] = n
        return tuple(lines[i] for i in range(len(lines)))

    def replay(
        self,
        todo: list[_Commit],
        sections: Iterator[diff.Section],
        known: dict[str, State],
        progress: bool = False,
    ) -> dict[str, State]:
        """Replay todo (parents first); `known` holds the states of outside parents."""
        remaining: dict[str, int] = {}
        for c in todo:
            for p in c.parents:
                remaining[p] = remaining.get(p, 0) + 1
        states: dict[str, State] = dict(known)
        pending = _Peekable(sections)
        total = len(todo)
        shown = time.monotonic()
        for done, commit in enumerate(todo, 1):
            mine: dict[str | None, diff.Section] = {}
            while pending.peek() is not None and pending.peek().commit == commit.sha:  # type: ignore[union-attr]
                s = next(pending)
                mine[s.parent] = s
            parents = [self._state(p, states) for p in commit.parents]
            base = self._derive(commit, parents, remaining, states)
            if len(commit.parents) <= 1:
                section = mine.get(None) or next(iter(mine.values()), None)
                files = section.files if section else []
                self._linear(commit.sha, base, parents[0] if parents else None, files)
            else:
                self._merge(commit, base, parents, mine)
            states[commit.sha] = base
            for p in commit.parents:
                remaining[p] -= 1
                if remaining[p] == 0 and p != todo[-1].sha:
                    states.pop(p, None)
            if progress and time.monotonic() - shown > 0.25:
                shown = time.monotonic()
                sys.stderr.write(f"\rdasct: indexing history {done}/{total} commits")
                sys.stderr.flush()
        if progress and total:
            sys.stderr.write(f"\rdasct: indexed {total} commits{' ' * 20}\n")
        if pending.peek() is not None:
            raise IndexCorrupt("git log returned diffs for commits out of order")
        return states

    def _state(self, sha: str, states: dict[str, State]) -> State:
        state = states.get(sha)
        if state is None:
            state = states[sha] = BlameState(self, sha)
        return state

    def _derive(
        self, commit: _Commit, parents: list[State], remaining: dict[str, int],
        states: dict[str, State],
    ) -> State:
        """The starting state of commit: its first parent's, shared or taken over."""
        if not parents:
            return FullState()
        first = parents[0]
        if isinstance(first, FullState):
            if remaining[commit.parents[0]] == 1:
                states.pop(commit.parents[0], None)
                return first  # the last child takes the dict over: no copy on a line
            return FullState(first)
        return Overlay(first)

    def _lines(self, change: diff.FileChange) -> int:
        return sum(h.new_len for h in change.hunks)

    def _linear(
        self, sha: str, state: State, parent: State | None, files: list[diff.FileChange]
    ) -> None:
        n = self.number(sha)
        reads: dict[str, Origins] = {}
        drops: list[str] = []
        for change in files:
            if change.is_gitlink:
                if change.old_path and change.old_mode != diff.GITLINK_MODE:
                    drops.append(change.old_path)
                continue
            status = change.status
            if status == "D":
                assert change.old_path is not None
                drops.append(change.old_path)
                continue
            assert change.new_path is not None
            if status in ("A", "T") or parent is None:
                reads[change.new_path] = (n,) * self._lines(change)
                continue
            assert change.old_path is not None
            old = parent.get(change.old_path)
            if old is None:
                raise IndexCorrupt(f"{change.old_path} at the parent of {sha} is not indexed")
            if status == "R":
                drops.append(change.old_path)
            reads[change.new_path] = _apply(old, change.hunks, n, f"{sha}:{change.new_path}")
        self._write(sha, state, drops, reads)

    def _write(
        self, sha: str, state: State, drops: list[str], reads: dict[str, Origins]
    ) -> None:
        if sha in self.ignore:
            for path in reads:
                blamed = self.blame(sha, path)
                if blamed is not None:
                    reads[path] = blamed
        assert isinstance(state, (FullState, Overlay))
        for path in drops:
            if path not in reads:
                if isinstance(state, Overlay):
                    state[path] = None
                else:
                    state.pop(path, None)
        for path, origins in reads.items():
            state[path] = origins

    def _merge(
        self,
        commit: _Commit,
        state: State,
        parents: list[State],
        sections: dict[str | None, diff.Section],
    ) -> None:
        n = self.number(commit.sha)
        per_parent: list[dict[str, diff.FileChange] | None] = []
        for p in commit.parents:
            section = sections.get(p)
            if section is None:
                per_parent.append(None)  # no diff at all: the trees are identical
                continue
            by_dest = {}
            for change in section.files:
                if change.new_path is not None and not change.is_gitlink:
                    by_dest[change.new_path] = change
            per_parent.append(by_dest)
        first = sections.get(commit.parents[0])
        if first is None:
            return  # identical to the first parent: blame passes every line to it
        drops: list[str] = []
        reads: dict[str, Origins] = {}
        for change in first.files:
            if change.is_gitlink:
                continue
            if change.status in ("D", "R") and change.old_path is not None:
                drops.append(change.old_path)
            if change.new_path is None:
                continue
            reads[change.new_path] = self._merge_file(
                n, change.new_path, parents, per_parent, commit.sha
            )
        self._write(commit.sha, state, drops, reads)

    def _merge_file(
        self,
        n: int,
        path: str,
        parents: list[State],
        per_parent: list[dict[str, diff.FileChange] | None],
        sha: str,
    ) -> Origins:
        # Pass 0: the same path in each parent; pass 1: a rename. An identical blob
        # takes the whole file (blame's pass_whole_blame).
        candidates: list[tuple[int, str, Sequence[diff.Hunk]]] = []
        for i, changes in enumerate(per_parent):
            change = None if changes is None else changes.get(path)
            if change is None:
                whole = parents[i].get(path)
                if whole is not None:
                    return whole
                continue
            if change.status == "M":
                if change.old_blob == change.new_blob:
                    whole = parents[i].get(path)
                    if whole is not None:
                        return whole
                candidates.append((i, path, change.hunks))
        renames: list[tuple[int, str, Sequence[diff.Hunk]]] = []
        for i, changes in enumerate(per_parent):
            change = None if changes is None else changes.get(path)
            if change is None or change.status not in ("R", "C") or change.old_path is None:
                continue
            if change.old_blob == change.new_blob:
                whole = parents[i].get(change.old_path)
                if whole is not None:
                    return whole
            renames.append((i, change.old_path, change.hunks))
        chosen = sorted(candidates + renames, key=lambda c: c[0])
        count = None
        result: list[int | None] = []
        for i, old_path, hunks in chosen:
            old = parents[i].get(old_path)
            if old is None:
                raise IndexCorrupt(f"{old_path} at a parent of {sha} is not indexed")
            if count is None:
                count = len(old) + sum(h.new_len - h.old_len for h in hunks)
                result = [None] * count
            for new_line, old_line in _unchanged(hunks, len(old)):
                if new_line >= count or old_line >= len(old):
                    raise IndexCorrupt(f"diff of {sha}:{path} does not fit the indexed file")
                if result[new_line] is None:
                    result[new_line] = old[old_line]
        if count is None:
            # No parent had the file: every line is the merge's own.
            any_change = next(
                (c[path] for c in per_parent if c is not None and path in c), None
            )
            count = self._lines(any_change) if any_change is not None else 0
            return (n,) * count
        return tuple(n if o is None else o for o in result)


class _Peekable:
    def __init__(self, it: Iterator[diff.Section]) -> None:
        self.it = it
        self.head: diff.Section | None = None
        self.loaded = False

    def peek(self) -> diff.Section | None:
        if not self.loaded:
            self.head = next(self.it, None)
            self.loaded = True
        return self.head

    def __next__(self) -> diff.Section:
        value = self.peek()
        if value is None:
            raise StopIteration
        self.loaded = False
        return value


def _sections(repo: git.Repo, revs: Sequence[str]) -> Iterator[diff.Section]:
    with git.stream(
        "log", "--topo-order", "--reverse", "-m", "--oneline", "--no-abbrev-commit",
        "--no-decorate", *diff.PATCH_OPTIONS, *revs, "--", cwd=repo.root,
    ) as out:
        yield from diff.parse(out, commits=True)


# ------------------------------------------------------------------------ public API


def _links_for(
    commits: Iterable[_Commit], builder: Builder, settings: Settings
) -> dict[int, tuple[str, ...]]:
    patterns = settings.compiled()
    links = {}
    for c in commits:
        keys = defect_keys(c.message, patterns)
        if keys:
            links[builder.number(c.sha)] = keys
    return links


def _nearest_snapshot(repo: git.Repo, head: str, have: set[str]) -> tuple[str, int] | None:
    """The snapshot nearest to head on its first-parent chain, with the distance."""
    if not have:
        return None
    walk = git.stream("rev-list", "--first-parent", f"--max-count={MAX_INCREMENTAL}", head,
                      "--", cwd=repo.root)
    with walk as out:
        for distance, line in enumerate(out):
            sha = line.strip().decode()
            if sha in have:
                walk.kill()  # found: the rest of a long history is not needed
                return sha, distance
    return None


def _full(repo: git.Repo, settings: Settings, head: str, progress: bool) -> Snapshot:
    ignore, ignore_fp = _ignore_revs(repo)
    todo = _log_commits(repo, [head])
    builder = Builder(repo, [c.sha for c in todo], ignore)
    states = builder.replay(todo, _sections(repo, [head]), {}, progress=progress)
    files = states[head]
    assert isinstance(files, FullState)
    links = _links_for(todo, builder, settings)
    return Snapshot(head, builder.commits, files, links, ignore_fp, settings.links_fingerprint,
                    {"commits": len(todo), "blamed": builder.blamed})


def _incremental(
    repo: git.Repo, settings: Settings, head: str, base: Snapshot
) -> Snapshot:
    assert base.head is not None
    ignore, _ = _ignore_revs(repo)
    todo = _log_commits(repo, [head, f"^{base.head}"])
    builder = Builder(repo, base.commits, ignore)
    states = builder.replay(
        todo, _sections(repo, [head, f"^{base.head}"]), {base.head: base.files}
    )
    files = states[head]
    if not isinstance(files, FullState):
        raise IndexCorrupt("HEAD is not reachable along first parents from the snapshot")
    links = dict(base.links)
    links.update(_links_for(todo, builder, settings))
    return Snapshot(head, builder.commits, files, links, base.ignore_fp, base.links_fp,
                    {"commits": len(todo), "blamed": builder.blamed})


def _relink(repo: git.Repo, settings: Settings, snap: Snapshot) -> None:
    """Recompute which commits are fix commits after the defect patterns changed."""
    assert snap.head is not None
    builder = Builder(repo, snap.commits, frozenset())
    known = set(snap.commits)
    commits = [c for c in _log_commits(repo, [snap.head]) if c.sha in known]
    snap.links = _links_for(commits, builder, settings)
    snap.links_fp = settings.links_fingerprint


def snapshot_at(
    repo: git.Repo,
    settings: Settings,
    commit: str | None,
    *,
    rebuild: bool = False,
    progress: bool = False,
) -> Snapshot:
    """The protected-lines index at commit (None: before the first commit), kept fresh.

    Reuses the snapshot of commit when there is one, else replays the commits since the
    nearest snapshot on commit's first-parent chain, else rebuilds from the whole history.
    A corrupt or stale snapshot is rebuilt, never trusted.
    """
    if commit is None:
        return Snapshot(None, [], FullState(), {})
    started = time.perf_counter()
    _, ignore_fp = _ignore_revs(repo)
    links_fp = settings.links_fingerprint
    snap: Snapshot | None = None
    kind = "cached"
    if not rebuild:
        path = _snapshot_path(repo, commit)
        if path.exists():
            try:
                snap = _load(path)
            except IndexCorrupt:
                path.unlink(missing_ok=True)
            if snap is not None and (snap.head != commit or snap.ignore_fp != ignore_fp):
                snap = None
        if snap is None:
            snap, kind = _update(repo, settings, commit, ignore_fp), "incremental"
    if snap is None:
        snap, kind = _full(repo, settings, commit, progress), "rebuilt"
    changed = kind != "cached"
    if snap.links_fp != links_fp:
        _relink(repo, settings, snap)
        changed = True
    if changed:
        _save(repo, snap)
    snap.stats.update(seconds=time.perf_counter() - started)
    snap.stats["kind"] = {"cached": 0, "incremental": 1, "rebuilt": 2}[kind]
    return snap


def _update(repo: git.Repo, settings: Settings, commit: str, ignore_fp: str) -> Snapshot | None:
    directory = index_dir(repo)
    have = {p.stem for p in directory.glob("*.snap")} if directory.is_dir() else set()
    found = _nearest_snapshot(repo, commit, have)
    if found is None:
        return None
    try:
        base = _load(_snapshot_path(repo, found[0]))
        if base.ignore_fp != ignore_fp:
            return None
        return _incremental(repo, settings, commit, base)
    except IndexCorrupt:
        _snapshot_path(repo, found[0]).unlink(missing_ok=True)
        return None


def snapshot_size(repo: git.Repo) -> int:
    """Bytes used by all snapshots."""
    directory = index_dir(repo)
    if not directory.is_dir():
        return 0
    return sum(p.stat().st_size for p in directory.glob("*.snap"))
