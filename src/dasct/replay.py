"""Blame's rules replayed forward: the line origins of every file, commit after commit.

`git blame -w` walks backward from one commit; the index needs the answer for every line
at every HEAD, so this module replays history forward with exactly the rules blame
applies (see docs/protected-lines.md):

* a non-merge commit passes the lines its -w diff leaves unchanged to its parent and owns
  the rest; whole-file renames are followed (blame follows them by default), and an added
  file is followed to a deleted one the way blame searches, per destination;
* a merge first looks for a parent whose blob is identical (same path first, then through
  a rename) and takes that parent's lines whole; otherwise each parent in order takes the
  lines its -w diff leaves unchanged, and the merge owns what no parent explains;
* a commit listed in `.git-blame-ignore-revs` gets, for the files it changes, exactly what
  `git blame -w --ignore-revs-file` says at that commit.

A state is, per path, a tuple holding for each line the index of the commit blame names
(origins.py: the state types, their encoding, a diff applied to a file's origins).
"""

from __future__ import annotations

import sys
import time

from dasct import diff, git, ignored, linklines, renames
from dasct.origins import FullState, IndexCorrupt, Overlay, apply_hunks, unchanged_lines

TYPE_CHECKING = False  # typing costs import time on the hook path
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence

    from dasct.origins import Origins, State
    from dasct.replay_log import Commit


IGNORE_REVS_FILE = ".git-blame-ignore-revs"


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


def unknown_origin(width: int) -> str:
    """The commit id standing for "beyond the shallow boundary": no commit has it."""
    return "0" * width


class Builder:
    """Replays commits forward into states (see the module docstring for the rules)."""

    def __init__(self, repo: git.Repo, commits: list[str], ignore: frozenset[str],
                 boundary: frozenset[str] = frozenset(),
                 lines: linklines.LineLinks | None = None) -> None:
        self.repo = repo
        self.commits = commits
        self.position = {sha: i for i, sha in enumerate(commits)}
        self.ignore = ignore
        # A shallow clone's boundary commits: git shows them as roots, but their lines
        # come from history that is not here. Their origin is unknown (UNKNOWN's index),
        # which no defect is linked to.
        self.boundary = boundary
        self.ignore_file = repo.root / IGNORE_REVS_FILE if ignore else None
        self.blamed = 0
        self.renames = renames.Search(repo)  # blame's rename searches, one git for all
        self.ignored_seconds = 0.0  # spent on the commits of the ignore-revs file
        # The ledger's line links (linklines.py): lines of a named commit get an alias of
        # it as their origin. The aliases made so far are reused (one per commit and set
        # of changes), those of the base snapshot included.
        self.lines = lines if lines is not None else linklines.LineLinks()
        self._linked = self.lines.commits()
        self._alias_at = {(real, changes): i for i, (real, changes)
                          in self.lines.aliases.items()}

    def number(self, sha: str) -> int:
        """The index of a commit, added to the table when new (a boundary commit of a
        shallow clone: the index of the unknown origin)."""
        if sha in self.boundary:
            sha = unknown_origin(len(sha))
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
        todo: list[Commit],
        sections: Iterable[diff.Section],
        known: dict[str, State],
        progress: bool = False,
        before: Callable[[Commit, dict[str | None, diff.Section], list[State]], None]
        | None = None,
        after: Callable[[Commit, State], None] | None = None,
    ) -> dict[str, State]:
        """Replay todo (parents first); `known` holds the states of outside parents.

        `before(commit, its diffs by parent, its parents' states)` and `after(commit, its
        state)` see each commit while those states are whole: a state is handed over to
        the next commit (no copy) once its last child is replayed.
        """
        remaining: dict[str, int] = {}
        for c in todo:
            for p in c.parents:
                remaining[p] = remaining.get(p, 0) + 1
        states: dict[str, State] = dict(known)
        pending = _Peekable(iter(sections))
        total = len(todo)
        shown = time.monotonic()
        try:
            for done, commit in enumerate(todo, 1):
                mine: dict[str | None, diff.Section] = {}
                while (ahead := pending.peek()) is not None and ahead.commit == commit.sha:
                    mine[ahead.parent] = next(pending)
                parents = [self._state(p, states) for p in commit.parents]
                if before is not None:
                    before(commit, mine, parents)
                base = self._derive(commit, parents, remaining, states)
                if len(commit.parents) <= 1:
                    section = mine.get(None) or next(iter(mine.values()), None)
                    files = section.files if section else []
                    self._linear(commit.sha, base, parents[0] if parents else None, files,
                                 commit.parents[0] if commit.parents else None)
                else:
                    self._merge(commit, base, parents, mine)
                states[commit.sha] = base
                if after is not None:
                    after(commit, base)
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
        finally:
            self.renames.close()
        return states

    def _state(self, sha: str, states: dict[str, State]) -> State:
        state = states.get(sha)
        if state is None:
            state = states[sha] = BlameState(self, sha)
        return state

    def _derive(
        self, commit: Commit, parents: list[State], remaining: dict[str, int],
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
        self, sha: str, state: State, parent: State | None, files: list[diff.FileChange],
        parent_sha: str | None = None,
    ) -> None:
        n = self.number(sha)
        reads: dict[str, Origins] = {}
        drops: list[str] = []
        if parent_sha is not None:
            files = renames.per_destination(self.renames, files)
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
            reads[change.new_path] = apply_hunks(old, change.hunks, n, f"{sha}:{change.new_path}")
        self._write(sha, state, drops, reads,
                    [] if parent is None or parent_sha is None else [(parent_sha, parent)])

    def _write(
        self, sha: str, state: State, drops: list[str], reads: dict[str, Origins],
        parents: Sequence[tuple[str, State]] = (),
    ) -> None:
        if sha in self.ignore:
            # Before any drop: a state taken over from the parent is the parent's state.
            reads.update(self._ignored(sha, list(reads), parents))
        if sha in self._linked:
            self._link_lines(sha, reads)
        assert isinstance(state, (FullState, Overlay))
        for path in drops:
            if path not in reads:
                if isinstance(state, Overlay):
                    state[path] = None
                else:
                    state.pop(path, None)
        for path, origins in reads.items():
            state[path] = origins

    def _link_lines(self, sha: str, reads: dict[str, Origins]) -> None:
        """The lines of sha that ledger entries name, given their alias as origin (only
        lines sha owns: a line blame passes to a parent is that parent's to link)."""
        n = self.number(sha)
        for path, origins in reads.items():
            per_line = self.lines.changes(sha, path, len(origins))
            if per_line is None:
                continue
            reads[path] = tuple(
                self._alias(sha, n, changes) if changes and origin == n else origin
                for origin, changes in zip(origins, per_line, strict=True))

    def _alias(self, sha: str, n: int, changes: tuple[str, ...]) -> int:
        at = self._alias_at.get((n, changes))
        if at is None:
            at = self._alias_at[(n, changes)] = self.number(linklines.alias_id(sha, changes))
            self.lines.aliases[at] = (n, changes)
        return at

    def _ignored(
        self, sha: str, paths: list[str], parents: Sequence[tuple[str, State]]
    ) -> dict[str, Origins]:
        """The origins blame gives the files an ignored commit changes (ignored.py)."""
        started = time.perf_counter()
        out = ignored.origins(self.repo.root, sha, self.number(sha), paths, parents)
        self.blamed += len(paths)
        self.ignored_seconds += time.perf_counter() - started
        return out

    def _merge(
        self,
        commit: Commit,
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
        self._write(commit.sha, state, drops, reads,
                    list(zip(commit.parents, parents, strict=True)))

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
            for new_line, old_line in unchanged_lines(hunks, len(old)):
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
