"""The history the replay reads: the commits of a range, parents first, with their full
messages, and their per-parent diffs in the same order.

Separate from the replay (replay.py) because it is only the git side: the two streams the
index and the walk open for a range before replaying it.
"""

from __future__ import annotations

from dasct import diff, git

TYPE_CHECKING = False  # typing costs import time on the hook path
if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence


READ_AHEAD = 32 << 20  # bytes of git log held ahead of the replay, at most


class Commit:
    """A commit to replay: its sha, parents and full message."""

    __slots__ = ("message", "parents", "sha")

    def __init__(self, sha: str, parents: list[str], message: str) -> None:
        self.sha = sha
        self.parents = parents
        self.message = message


def log_commits(repo: git.Repo, revs: Sequence[str]) -> list[Commit]:
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
        commits.append(Commit(sha, parents, tokens[i + 2].decode("utf-8", "replace")))
    return commits


class sections:
    """The per-parent diffs of revs, parents first, as the replay consumes them: git
    starts now and is read ahead of the replay (git.stream's `ahead`), so it goes on
    while the replay works, and while the caller prepares it (the walk loads its start
    snapshot meanwhile). Iterated once; close() stops a git never read."""

    def __init__(self, repo: git.Repo, revs: Sequence[str]) -> None:
        self._proc: git.stream | None = git.stream(
            "log", "--topo-order", "--reverse", "-m", "--oneline", "--no-abbrev-commit",
            "--no-decorate", *diff.PATCH_OPTIONS, *revs, "--", cwd=repo.root,
            ahead=READ_AHEAD)

    def __iter__(self) -> Iterator[diff.Section]:
        proc, self._proc = self._proc, None
        if proc is None:
            raise RuntimeError("replay_log.sections is read once")
        with proc as out:
            yield from diff.parse(out, commits=True)

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            with proc:
                proc.kill()
