"""Protected lines at a commit, kept as snapshots so that a commit never waits for blame.

A snapshot is the replayed state (replay.py) at one commit: for every line of every
file, the commit `git blame -w` names, run-length encoded, with the defects each fix
commit names. Snapshots of recent HEADs live in `<git common dir>/dasct/index/`, one
checked cache file (cache.py) per commit; moving HEAD replays only the commits since the
nearest snapshot on HEAD's first-parent chain. See docs/protected-lines.md.
"""

from __future__ import annotations

import os
import time
import zlib

from dasct import cache, git, index_checkpoints, refresh, replay, replay_log, snapfile
from dasct.linklines import LineLinks, with_aliases
from dasct.origins import FullState, IndexCorrupt
from dasct.refs import defect_keys
from dasct.replay import IGNORE_REVS_FILE
from dasct.snapshot import Snapshot, read_snapshot, write_snapshot

TYPE_CHECKING = False  # typing, dataclasses and hashlib cost import time on the hook path
if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    from dasct.settings import Settings

__all__ = ["IGNORE_REVS_FILE", "IndexCorrupt", "Snapshot", "index_dir", "read_snapshot",
           "snapshot_at", "write_snapshot"]

KIND, FORMAT = snapfile.KIND, snapfile.FORMAT  # of a snapshot file (snapfile.py)
MAX_LINES = snapfile.MAX_LINES
SHALLOW = ("shallow clone: protection is incomplete; fetch the full history "
           "(git fetch --unshallow; in CI, check out with fetch-depth 0)")
_told_shallow = False  # the shallow line is said once per command, however many snapshots
KEEP_SNAPSHOTS = 8
# Beyond this many commits between HEAD and the nearest snapshot a rebuild is as cheap.
MAX_INCREMENTAL = 20_000
# Of the commit-time budget, the part a command may wait for a running refresh to finish:
# all of it. Replaying beside the refresh would redo the same work on the same cores
# (bench/scale.py measured 200 commits: 1.26 s replayed, 1.05 s waited for; 2,000
# commits: past the 5 s budget either way), so the hook waits until the budget stops it.
WAIT_SHARE = 1.0


def history(repo: git.Repo) -> tuple[frozenset[str], frozenset[str], str]:
    """What blame sees besides the commits: the ignored revisions, the shallow boundary,
    and a fingerprint of those plus grafts and replace refs. A snapshot is only valid for
    the fingerprint it was built with: an unshallowed or grafted history under the same
    HEAD is another history."""
    path = repo.root / IGNORE_REVS_FILE
    try:
        data = path.read_bytes()
    except OSError:
        data = b""
    revs = set()
    for line in data.decode("utf-8", "replace").splitlines():
        word = line.split("#", 1)[0].strip()
        if word:
            revs.add(word.lower())
    inputs = repo.history_inputs()
    fingerprint = f"{zlib.crc32(data):08x}-{len(data)}-{zlib.crc32(inputs):08x}-{len(inputs)}"
    return frozenset(revs), repo.shallow_boundary(), fingerprint


def index_dir(repo: git.Repo) -> Path:
    """Where snapshots live: inside the git dir, never in the work tree."""
    return repo.state_dir / "index"


def _snapshot_path(repo: git.Repo, head: str) -> Path:
    return index_dir(repo) / f"{head}.snap"


def _save(repo: git.Repo, snap: Snapshot) -> bool:
    """Write snap as a snapshot file and evict old ones; False when the index dir cannot
    be written."""
    assert snap.head is not None
    if not write_snapshot(_snapshot_path(repo, snap.head), snap):
        return False
    directory = index_dir(repo)
    try:
        snaps = sorted(directory.glob("*.snap"), key=lambda p: p.stat().st_mtime,
                       reverse=True)
    except OSError:
        return True  # a snapshot evicted meanwhile by another dasct: evict next time
    # HEAD's snapshot is never evicted: a series of questions about old commits (CI
    # checking each commit of a push, oldest first) keeps its answers, each the next
    # one's base, without costing the next commit a replay at HEAD.
    head = f"{repo.head}.snap"
    snaps = [p for p in snaps if p.name != head]
    for old in snaps[KEEP_SNAPSHOTS - 1:]:
        cache.discard(old)
    return True


def _touch(path: Path) -> None:
    """Mark a snapshot recently used (eviction keeps the ones in use); best effort."""
    try:
        os.utime(path)
    except OSError:
        pass  # a read-only index dir: eviction order is all that is lost


def links_for(
    commits: Iterable[replay_log.Commit], builder: replay.Builder, settings: Settings
) -> dict[int, tuple[str, ...]]:
    patterns = settings.compiled()
    named: dict[str, tuple[str, ...]] = {}
    for c in commits:
        keys = defect_keys(c.message, patterns)
        # A boundary commit of a shallow clone owns no line that can be shown to be its
        # own: its lines have the unknown origin, which nothing links to. An ignored
        # commit ([defects] ignore_commits) links nothing by the team's choice.
        if keys and c.sha not in builder.boundary and not settings.ignored(c.sha):
            named[c.sha] = keys
    limit = settings.max_lines_per_commit
    if limit and named:
        sizes = _lines_added(builder.repo, list(named), settings)
        named = {sha: keys for sha, keys in named.items() if sizes.get(sha, 0) <= limit}
    return {builder.number(sha): keys for sha, keys in named.items()}


def _lines_added(repo: git.Repo, shas: list[str], settings: Settings) -> dict[str, int]:
    """How many lines each commit adds or rewrites (`git diff -w` against its first
    parent, the whole tree for a root commit), excluded paths left out."""
    out = git.run("log", "--no-walk=unsorted", "--stdin", "-z", "-w", "-m", "--first-parent",
                  "--numstat", "--format=%x01%H", "--", cwd=repo.root,
                  input="".join(f"{sha}\n" for sha in shas).encode())
    sizes: dict[str, int] = {}
    sha = ""
    fields = out.split(b"\0")
    i = 0
    while i < len(fields):
        record = fields[i].lstrip(b"\n")
        i += 1
        if record.startswith(b"\x01"):
            head, _, record = record[1:].partition(b"\n")
            sha = head.decode()
            sizes.setdefault(sha, 0)
        if not record:
            continue
        added, _, rest = record.partition(b"\t")
        _, _, path = rest.partition(b"\t")
        if not path and i + 1 < len(fields):  # a rename: old and new path follow
            path, i = fields[i + 1], i + 2
        name = path.decode("utf-8", "surrogateescape")
        if added.isdigit() and not settings.excluded(name):
            sizes[sha] += int(added)
    return sizes


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
    ignore, boundary, history_fp = history(repo)
    todo = replay_log.log_commits(repo, [head])
    builder = replay.Builder(repo, [c.sha for c in todo], ignore, boundary,
                             ledger_lines(repo, settings))
    points = index_checkpoints.Writer(repo, settings, builder, todo, {}, history_fp, 0)
    states = builder.replay(todo, replay_log.sections(repo, [head]), {}, progress=progress,
                            after=points.after)
    # A rebuild for HEAD replaces every checkpoint; one for an older commit (a question
    # on a cold index) adds its own beside HEAD's.
    points.finish(replace=head == repo.head)
    files = states[head]
    assert isinstance(files, FullState)
    links = with_aliases(links_for(todo, builder, settings), builder.lines.aliases)
    return Snapshot(head, builder.commits, files, links, history_fp,
                    settings.links_fingerprint, {"commits": len(todo), "blamed": builder.blamed,
                     "ignored_seconds": builder.ignored_seconds}, lines=builder.lines)


def _incremental(
    repo: git.Repo, settings: Settings, head: str, base: Snapshot, start: int | None = None
) -> Snapshot:
    assert base.head is not None
    ignore, boundary, _ = history(repo)
    todo = replay_log.log_commits(repo, [head, f"^{base.head}"])
    builder = replay.Builder(repo, base.commits, ignore, boundary, base.lines)
    points = None
    if head == repo.head:  # an update for HEAD may pass checkpoint boundaries
        # start: where base lies in the history (a checkpoint's name says; a snapshot's
        # table holds every commit before it)
        points = index_checkpoints.Writer.after_base(
            repo, settings, builder, todo, base, len(base.commits) if start is None else start)
    states = builder.replay(
        todo, replay_log.sections(repo, [head, f"^{base.head}"]), {base.head: base.files},
        after=points.after if points is not None else None,
    )
    if points is not None:
        points.finish(replace=False)
    files = states[head]
    if not isinstance(files, FullState):
        raise IndexCorrupt("HEAD is not reachable along first parents from the snapshot")
    links = dict(base.links)
    links.update(links_for(todo, builder, settings))
    return Snapshot(head, builder.commits, files, with_aliases(links, builder.lines.aliases),
                    base.history_fp, base.links_fp,
                    {"commits": len(todo), "blamed": builder.blamed,
                     "ignored_seconds": builder.ignored_seconds}, lines=builder.lines)


def _relink(repo: git.Repo, settings: Settings, snap: Snapshot) -> None:
    """Recompute which commits are fix commits after the defect patterns changed."""
    assert snap.head is not None
    _, boundary, _ = history(repo)
    builder = replay.Builder(repo, snap.commits, frozenset(), boundary)
    known = set(snap.commits)
    commits = [c for c in replay_log.log_commits(repo, [snap.head]) if c.sha in known]
    snap.links = with_aliases(links_for(commits, builder, settings), snap.lines.aliases)
    snap.links_fp = settings.links_fingerprint


def _cached(repo: git.Repo, settings: Settings, commit: str, history_fp: str
            ) -> Snapshot | None:
    """The saved snapshot of commit for this history, or None (a damaged one discarded)."""
    path = _snapshot_path(repo, commit)
    try:
        snap = read_snapshot(path)
    except IndexCorrupt as exc:
        cache.discard(path, str(exc))
        return None
    except OSError:
        return None  # no snapshot of commit (or an unreadable one): computed anew
    # A part read later that is damaged: discarded (one line) and rebuilt.
    snap.recover = lambda: snapshot_at(repo, settings, commit, rebuild=True)
    _touch(path)
    if snap.head != commit or snap.history_fp != history_fp:
        return None
    return snap


def snapshot_at(
    repo: git.Repo,
    settings: Settings,
    commit: str | None,
    *,
    rebuild: bool = False,
    progress: bool = False,
    ledger: bool = True,
) -> Snapshot:
    """The protected-lines index at commit (None: before the first commit), kept fresh.

    Reuses the snapshot of commit when there is one, else replays the commits since the
    nearest snapshot on commit's first-parent chain, else rebuilds from the whole history.
    A corrupt or stale snapshot is rebuilt, never trusted. With ledger (every command but
    the commit-time check), a snapshot replayed with other ledger links than the ledger
    holds now is rebuilt; the commit-time check takes it as it is (a refresh after the
    ledger moved brings it up to date: docs/qa.md).
    """
    if commit is None:
        return Snapshot(None, [], FullState(), {})
    started = time.perf_counter()
    _, _, history_fp = history(repo)
    links_fp = settings.links_fingerprint
    snap: Snapshot | None = None
    kind = "cached"
    from_checkpoint = False
    want = ledger_fp(repo, settings) if ledger else None
    if not rebuild:
        snap = _cached(repo, settings, commit, history_fp)
        if snap is None and commit == repo.head and refresh.wait_running(
                repo, WAIT_SHARE * settings.budget):
            # A refresh was bringing the index to HEAD (a commit right after a pull):
            # its snapshot, rather than the same replay a second time beside it.
            snap = _cached(repo, settings, commit, history_fp)
        if snap is not None and want is not None and snap.lines.fp != want:
            snap = None  # the ledger's links moved: _update sees whether it still holds
        if snap is None:
            found = _update(repo, settings, commit, history_fp, want)
            if found is not None:
                (snap, from_checkpoint), kind = found, "incremental"
    if snap is None:
        snap, kind = _full(repo, settings, commit, progress), "rebuilt"
    changed = kind != "cached"
    if snap.links_fp != links_fp:
        _relink(repo, settings, snap)
        changed = True
    if changed:
        snap.saved = _save(repo, snap)
    snap.shallow = bool(repo.shallow_boundary())
    if snap.shallow:
        _tell_shallow()
    snap.stats.update(seconds=time.perf_counter() - started)
    snap.stats["kind"] = {"cached": 0, "incremental": 1, "rebuilt": 2}[kind]
    snap.stats["checkpoint"] = int(from_checkpoint)  # replayed from a checkpoint
    return snap


def ledger_fp(repo: git.Repo, settings: Settings) -> str:
    """The fingerprint of the ledger's line links now ("" : none); one git call."""
    from dasct.ledger import Ledger  # not on the commit-time path: the hook never asks

    branch, remote = settings.ledger
    return Ledger(repo, branch, remote).links_fingerprint()


def ledger_lines(repo: git.Repo, settings: Settings) -> LineLinks:
    """The ledger's line links now, as the replay applies them (linklines.py)."""
    from dasct import linklines
    from dasct.ledger import Ledger

    branch, remote = settings.ledger
    book = Ledger(repo, branch, remote)
    fp = book.links_fingerprint()
    if not fp:
        return LineLinks()
    return LineLinks(fp, linklines.entries(book.records(*linklines.LINK_TYPES)))


def _tell_shallow() -> None:
    # Every command that answers from the index goes through snapshot_at: the one place
    # that says, once, that lines beyond the boundary protect nothing.
    global _told_shallow
    if not _told_shallow:
        _told_shallow = True
        import sys

        print(f"dasct: {SHALLOW}", file=sys.stderr)


def _update(repo: git.Repo, settings: Settings, commit: str, history_fp: str,
            ledger: str | None = None) -> tuple[Snapshot, bool] | None:
    """The snapshot of commit replayed from the nearest snapshot or checkpoint on its
    first-parent chain, and whether a checkpoint it was; None: rebuild. With ledger (the
    ledger links' fingerprint now), only from one replayed with those links."""
    directory = index_dir(repo)
    snaps = {p.stem: p for p in directory.glob("*.snap")} if directory.is_dir() else {}
    listed = index_checkpoints.listing(repo, history_fp)
    fresh: LineLinks | None = None
    points = {sha: path for sha, (_, path) in listed.items() if sha not in snaps}
    while snaps or points:
        found = _nearest_snapshot(repo, commit, set(snaps) | set(points))
        if found is None:
            return None
        sha, distance = found
        is_point = sha in points
        path = points.pop(sha) if is_point else snaps.pop(sha)
        try:
            base = read_snapshot(path)
        except IndexCorrupt as exc:
            cache.discard(path, str(exc))
            continue  # the next nearest serves
        except OSError:
            continue  # evicted by another dasct meanwhile, or unreadable
        if base.head != sha:
            cache.discard(path, "it holds another commit than its name says")
            continue
        if base.history_fp != history_fp:
            if not is_point:
                return None  # the history changed: a rebuild replaces everything
            cache.discard(path)  # left over from another history: useless now
            continue
        if ledger is not None and base.lines.fp != ledger:
            fresh = fresh or ledger_lines(repo, settings)
            if not _still_holds(repo, base, sha, fresh):
                if is_point:
                    cache.discard(path)  # replayed with links the ledger no longer holds
                continue
            # No commit whose links changed is in base's history: base is what a replay
            # with the new links gives, and the commits after it are replayed with them.
            base.lines = LineLinks(fresh.fp, fresh.entries, base.lines.aliases)
        if not is_point:
            _touch(path)
        if distance == 0:
            base.stats = {"commits": 0, "blamed": 0}
            return base, is_point
        try:
            start = listed[sha][0] if is_point else None
            return _incremental(repo, settings, commit, base, start), is_point
        except IndexCorrupt as exc:
            cache.discard(path, str(exc))
    return None


def _still_holds(repo: git.Repo, base: Snapshot, sha: str, fresh: LineLinks) -> bool:
    """Whether base (at sha), replayed with other ledger links, is what fresh's give: no
    commit whose entries differ is sha or one of its ancestors (a commit's links change
    only the lines of that commit and of its descendants)."""
    changed = {e[0] for e in set(base.lines.entries) ^ set(fresh.entries)}
    for commit in changed:
        code, _ = git.run_code("merge-base", "--is-ancestor", commit, sha, cwd=repo.root)
        if code == 0:
            return False  # (1: not an ancestor; 128: a commit this clone lacks)
    return True


def snapshot_size(repo: git.Repo) -> int:
    """Bytes used by all snapshots."""
    directory = index_dir(repo)
    if not directory.is_dir():
        return 0
    return sum(p.stat().st_size for p in directory.glob("*.snap"))
