"""A forward walk: the findings of each commit of A..B against its first parent, in one
replay.

The commits walked are B's first-parent chain back to (not including) the first commit
reachable from A, oldest first: the commits a push or a merge brought to a branch, each
as `dasct check --commit` sees it (a merge against its first parent, so it carries
everything its branch brought). The index at the first one's parent comes from
index.snapshot_at (the nearest checkpoint or snapshot, replayed forward); from there one
`git log -m -p` replays every commit of the range once, in memory, and each chain commit
is matched against its parent's state just before the replay moves past it.
"""

from __future__ import annotations

from dasct import catfile, check, diff, git, index, kinds, replay, replay_log
from dasct.errors import DasctError
from dasct.linklines import with_aliases
from dasct.origins import FullState

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from dasct.origins import State
    from dasct.replay_log import Commit
    from dasct.settings import Settings


CLASSIFY_BATCH = 50  # touching commits classified per batch, at most
# ... and a batch is asked for at least every 1/BATCHES of the range: what is left to
# classify when git's log ends (the last batch, and the one asked before it) is a small
# part of the walk, not up to two full batches (ci record's texts wait for it).
BATCHES = 16


class Step:
    """One walked commit: its sha, subject, first parent ("" for a root commit) and
    findings (as check --commit gives them)."""

    __slots__ = ("changes", "findings", "left_out", "parent", "sha", "subject")

    def __init__(self, sha: str, subject: str, findings: list[check.Finding],
                 left_out: list[check.Finding] | None = None, parent: str = "") -> None:
        self.sha = sha
        self.subject = subject
        self.parent = parent
        # The files of the commit's -w diff that hold a finding, as the walk parsed them:
        # what a revalidation ticket shows (tickets.change_texts), without diffing again.
        self.changes: list[diff.FileChange] = []
        self.findings = findings  # of the reported kinds (kinds.reported)
        self.left_out = left_out or []  # touched, but of kinds not reported

    def as_dict(self) -> dict[str, object]:
        """The JSON shape of a walked commit (docs/cli.md)."""
        return {"commit": self.sha, "subject": self.subject,
                "findings": [f.as_dict() for f in self.findings],
                "not_reported": len(self.left_out)}


def chain(repo: git.Repo, spec: str) -> list[str]:
    """B's first-parent commits not reachable from A, oldest first."""
    a, dots, b = spec.partition("..")
    if not dots or b.startswith("."):
        raise DasctError(f"--each wants A..B, got {spec!r}")
    a_sha, b_sha = git.rev_parse(repo, a or "HEAD"), git.rev_parse(repo, b or "HEAD")
    out = git.run("rev-list", "--first-parent", "--reverse", b_sha, f"^{a_sha}", "--",
                  cwd=repo.root)
    return out.decode().split()


def each(repo: git.Repo, settings: Settings, spec: str, *, all_kinds: bool = False,
         classified: Callable[[list[Step]], None] | None = None) -> list[Step]:
    """Every commit of chain(spec), oldest first, with what it touches: the findings of
    `[check] kinds` (every kind with all_kinds), as check --commit reports them.

    classified, when given, is called with each batch of touching commits as soon as
    their findings are final, still during the replay: what a caller starts then (ci
    record reads the blobs of its tickets) runs beside the rest of the walk."""
    commits = chain(repo, spec)
    if not commits:
        return []
    # The first commit's parent is the base; check.commit says when it lies beyond a
    # shallow boundary, as `--commit` does.
    base = check.commit(repo, commits[0]).base
    head = commits[-1]
    revs = [head, f"^{base}"] if base is not None else [head]
    log = replay_log.sections(repo, revs)  # git starts now, beside the start's replay
    try:
        return _walk(repo, settings, commits, base, revs, log, all_kinds, classified)
    finally:
        log.close()  # unless the replay read it


def _walk(repo: git.Repo, settings: Settings, commits: list[str], base: str | None,
          revs: list[str], log: replay_log.sections, all_kinds: bool,
          classified: Callable[[list[Step]], None] | None) -> list[Step]:
    start = index.snapshot_at(repo, settings, base)
    todo = replay_log.log_commits(repo, revs)
    ignore, boundary, _ = index.history(repo)
    builder = replay.Builder(repo, start.commits, ignore, boundary, start.lines)
    links = dict(start.links)
    wanted = set(commits)
    ready: list[Step] = []
    parent_of: dict[str, str] = {}
    pending: list[Step] = []  # touching commits whose files are not asked for yet
    span = max(CLASSIFY_BATCH, len(commits) // BATCHES)  # commits walked per batch, at most
    walked = 0  # since the last batch was asked for
    asked: list[tuple[list[Step], kinds.Annotation]] = []  # asked for, not classified
    # One cat-file for every batch (catfile.py: its delta cache stays warm across them);
    # killed when the replay fails with batches unread.
    blobs = catfile.Batches(repo.root)

    def classify(upto: int) -> None:
        # Every commit's touches are classified at its parent, CLASSIFY_BATCH touching
        # commits per batch asked of the one cat-file: not one question per commit, nor
        # every blob of a long walk held at once. A
        # batch's files are asked for as soon as it is full and classified when the next
        # one is: git finds them (and goes on writing the log, read ahead) while the
        # replay moves on, instead of the classification waiting for the end of the log.
        if pending:
            batch = pending[:]
            pending.clear()
            asked.append((batch, kinds.Annotation(
                repo.root, [(parent_of[s.sha], s.findings) for s in batch], batches=blobs)))
        while len(asked) > upto:
            batch, annotation = asked.pop(0)
            annotation.finish()
            for s in batch:
                s.findings, s.left_out = kinds.reported(s.findings, settings.kinds, all_kinds)
            if classified is not None:
                classified(batch)

    def before(commit: Commit, sections: dict[str | None, diff.Section],
               parents: list[State]) -> None:
        nonlocal walked
        if commit.sha not in wanted:
            return
        walked += 1
        found: list[check.Finding] = []
        if parents:
            first = parents[0]
            if not isinstance(first, FullState):
                raise index.IndexCorrupt(f"the parent of {commit.sha} was not replayed")
            section = sections.get(commit.parents[0]) or sections.get(None)
            at_parent = index.Snapshot(commit.parents[0], builder.commits, first, links,
                                       lines=builder.lines)
            found = check.touches(at_parent, section.files if section else [], settings)
            parent_of[commit.sha] = commit.parents[0]
        step = Step(commit.sha, commit.message.split("\n", 1)[0], found,
                    parent=commit.parents[0] if commit.parents else "")
        if found:
            paths = {f.path for f in found}
            step.changes = [c for c in (section.files if section else ())
                            if c.old_path in paths]
            pending.append(step)
        if pending and (len(pending) == CLASSIFY_BATCH or walked >= span):
            walked = 0
            classify(upto=1)
        ready.append(step)

    def after(commit: Commit, state: State) -> None:
        links.update(index.links_for([commit], builder, settings))
        if builder.lines.aliases:
            with_aliases(links, builder.lines.aliases)

    known: dict[str, State] = {base: start.files} if base is not None else {}
    with blobs:
        builder.replay(todo, log, known, before=before, after=after)
        classify(upto=0)
    return ready
