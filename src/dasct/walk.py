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

from dasct import check, diff, git, index, replay, replay_log
from dasct.errors import DasctError
from dasct.linklines import with_aliases
from dasct.origins import FullState

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dasct.origins import State
    from dasct.replay_log import Commit
    from dasct.settings import Settings


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


def each(repo: git.Repo, settings: Settings, spec: str, *, all_kinds: bool = False
         ) -> list[Step]:
    """Every commit of chain(spec), oldest first, with what it touches: the findings of
    `[check] kinds` (every kind with all_kinds), as check --commit reports them."""
    commits = chain(repo, spec)
    if not commits:
        return []
    # The first commit's parent is the base; check.commit says when it lies beyond a
    # shallow boundary, as `--commit` does.
    base = check.commit(repo, commits[0]).base
    start = index.snapshot_at(repo, settings, base)
    head = commits[-1]
    revs = [head, f"^{base}"] if base is not None else [head]
    todo = replay_log.log_commits(repo, revs)
    ignore, boundary, _ = index.history(repo)
    builder = replay.Builder(repo, start.commits, ignore, boundary, start.lines)
    links = dict(start.links)
    wanted = set(commits)
    ready: list[Step] = []
    parent_of: dict[str, str] = {}

    def before(commit: Commit, sections: dict[str | None, diff.Section],
               parents: list[State]) -> None:
        if commit.sha not in wanted:
            return
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
        ready.append(step)

    def after(commit: Commit, state: State) -> None:
        links.update(index.links_for([commit], builder, settings))
        if builder.lines.aliases:
            with_aliases(links, builder.lines.aliases)

    known: dict[str, State] = {base: start.files} if base is not None else {}
    builder.replay(todo, replay_log.sections(repo, revs), known, before=before, after=after)
    touched = [s for s in ready if s.findings]
    if touched:
        from dasct import kinds  # only a walk that touches something pays

        # Every commit's touches classified at its parent: one cat-file per 200 touching
        # commits, not one per commit (whose process start was most of a maven walk's
        # classification), nor one holding every blob of a long walk in memory.
        for i in range(0, len(touched), 200):
            kinds.annotate_all(repo.root, [(parent_of[s.sha], s.findings)
                                           for s in touched[i : i + 200]])
        for s in touched:
            s.findings, s.left_out = kinds.reported(s.findings, settings.kinds, all_kinds)
    return ready
