"""Revalidation tickets: what QA reads when a change to a defect's protected lines lands.

A ticket names the defect and the touching commit; its body holds the protected lines
before and the change (the -w hunks that touched them, rebuilt from the hunk positions of
the one diff parser and the blobs on both sides), the fix commits with their subjects,
the change's author, the evidence (evidence.py) and how to accept or reject. Its key is
derived from the defect and the commit alone: the same request always has the same key,
which is what makes filing it idempotent everywhere (outbox, trackers, ledger).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from dasct import diff, git
from dasct.check import Finding
from dasct.trackers import Ticket

CONTEXT = 2  # unchanged lines shown around a touching hunk
MAX_HUNK_LINES = 60  # a hunk longer than this is cut (the commit has the rest)
# The whole change shown is cut past this many characters: Jira refuses a description
# over 32,767 and GitHub an issue body over 65,536, and a ticket for a commit that
# rewrote a thousand protected lines is read in the commit, not in the ticket.
MAX_CHANGE_CHARS = 20_000
LABEL = "dasct-revalidation"


def ticket_key(defect: str, commit: str) -> str:
    """The idempotency key of the revalidation request for defect touched by commit."""
    digest = hashlib.sha256(f"{defect}\0{commit}".encode()).hexdigest()
    return f"dasct-{digest[:20]}"


class CommitInfo:
    """What a ticket says of a commit: sha, subject, author name and email, date."""

    __slots__ = ("author", "date", "email", "sha", "subject")

    def __init__(self, sha: str, subject: str, author: str, email: str, date: str) -> None:
        self.sha, self.subject, self.author, self.email, self.date = (
            sha, subject, author, email, date)

    def short(self) -> str:
        return f"{self.sha[:12]} \"{self.subject}\""


def commit_info(repo: git.Repo, shas: Sequence[str]) -> dict[str, CommitInfo]:
    """Subject, author and date of each commit, in one git call."""
    wanted = list(dict.fromkeys(shas))
    if not wanted:
        return {}
    out = git.run("log", "--no-walk=unsorted", "--stdin", "-z",
                  "--format=%H%x1f%s%x1f%an%x1f%ae%x1f%aI", cwd=repo.root,
                  input="".join(f"{s}\n" for s in wanted).encode())
    info: dict[str, CommitInfo] = {}
    for record in out.decode("utf-8", "replace").split("\0"):
        fields = record.strip("\n").split("\x1f")
        if len(fields) == 5:
            info[fields[0]] = CommitInfo(*fields)
    return info


def _hunks_touching(repo: git.Repo, parent: str, commit: str, found: Sequence[Finding],
                    changes: Sequence[diff.FileChange] | None = None
                    ) -> list[tuple[diff.FileChange, diff.Hunk]]:
    """The -w hunks of commit (against parent) that remove or rewrite a found line; from
    changes when the caller parsed that diff already (walk.Step.changes)."""
    if changes is None:
        paths = sorted({f.path for f in found} | {f.after_path for f in found if f.after_path})
        with git.stream("diff", *diff.PATCH_OPTIONS, parent, commit, "--", *paths,
                        cwd=repo.root) as out:
            changes = [c for s in diff.parse(out, commits=False) for c in s.files]
    lines = {(f.path, f.line) for f in found}
    picked = []
    for change in changes:
        for hunk in change.hunks:
            if any((change.old_path, n) in lines for n in hunk.old_lines):
                picked.append((change, hunk))
    return picked


def change_text(repo: git.Repo, parent: str, commit: str, found: Sequence[Finding]) -> str:
    """The touching hunks as a unified diff, each protected line marked `# protected`."""
    return change_texts(repo, parent, commit, {"": found})[""]


def change_texts(repo: git.Repo, parent: str, commit: str,
                 by_defect: Mapping[str, Sequence[Finding]], *,
                 changes: Sequence[diff.FileChange] | None = None,
                 blobs: Mapping[str, bytes] | None = None) -> dict[str, str]:
    """change_text for each defect commit touched, from one diff and one cat-file for the
    whole commit (a commit touching twenty defects is one pair of git calls, not twenty);
    none when the caller has the diff (changes) and the blobs (blobs_of) already."""
    everything = [f for found in by_defect.values() for f in found]
    picked = _hunks_touching(repo, parent, commit, everything, changes)
    if blobs is None:
        blobs = git.cat_blobs(repo.root, blobs_of(c for c, _ in picked))
    texts = _Texts(blobs)
    # Which picked hunk holds each old line (-U0 hunks of a file never overlap): a commit
    # touching many defects finds each one's hunks by its lines, not by testing every
    # hunk for every defect (apache/maven: 2.6 million tests for 4,676 tickets).
    holder: dict[tuple[str | None, int], int] = {}
    for i, (change, hunk) in enumerate(picked):
        for n in hunk.old_lines:
            holder[change.old_path, n] = i
    out: dict[str, str] = {}
    for defect, found in by_defect.items():
        mine = sorted({held for f in found
                       if (held := holder.get((f.path, f.line))) is not None})
        out[defect] = _render([picked[k] for k in mine], texts, parent, commit, found)
    return out


class _Texts:
    """Each blob's lines, decoded once: a commit's tickets show many hunks of one file
    (curl: 5,682 tickets split their files 28,000 times when each hunk did)."""

    def __init__(self, blobs: Mapping[str, bytes]) -> None:
        self.blobs = blobs
        self._lines: dict[str, list[str]] = {}

    def lines(self, blob: str) -> list[str]:
        if blob not in self._lines:
            self._lines[blob] = self.blobs.get(blob, b"").decode("utf-8", "replace").splitlines()
        return self._lines[blob]


def blobs_of(changes: Iterable[diff.FileChange]) -> list[str]:
    """The blobs change_texts reads for changes (both sides, none for an absent side)."""
    return [b for c in changes for b in (c.old_blob, c.new_blob) if b and set(b) != {"0"}]


def line_ranges(found: Sequence[Finding]) -> dict[str, list[list[int]]]:
    """The found lines by path, as 1-based inclusive ranges: a compact record of what a
    ticket is about (a commit may touch thousands of protected lines)."""
    by_path: dict[str, list[int]] = {}
    for f in found:
        by_path.setdefault(f.path, []).append(f.line)
    out: dict[str, list[list[int]]] = {}
    for path, numbers in sorted(by_path.items()):
        spans: list[list[int]] = []
        for n in sorted(set(numbers)):
            if spans and n == spans[-1][1] + 1:
                spans[-1][1] = n
            else:
                spans.append([n, n])
        out[path] = spans
    return out


def _render(picked: Sequence[tuple[diff.FileChange, diff.Hunk]], texts: _Texts,
            parent: str, commit: str, found: Sequence[Finding]) -> str:
    protected = {(f.path, f.line): f for f in found}
    out: list[str] = []
    last_path = None
    for change, hunk in picked:
        old = texts.lines(change.old_blob)
        new = texts.lines(change.new_blob)
        if change.old_path != last_path:
            out += [f"--- a/{change.old_path} (at {parent[:12]})",
                    f"+++ b/{change.new_path or '/dev/null'} (at {commit[:12]})"]
            last_path = change.old_path
        begin = hunk.old_start - 1 if hunk.old_len else hunk.old_start
        before = range(max(0, begin - CONTEXT), begin)
        after_begin = begin + hunk.old_len
        after = range(after_begin, min(len(old), after_begin + CONTEXT))
        out.append(f"@@ -{hunk.old_start},{hunk.old_len} +{hunk.new_start},{hunk.new_len} @@")
        body = [f" {old[i]}" for i in before]
        for n in hunk.old_lines:
            text = old[n - 1] if 0 < n <= len(old) else ""
            mark = protected.get((change.old_path or "", n))
            body.append(f"-{text}" + (f"    # protected: {mark.defect} via {mark.commit[:12]}"
                                      if mark is not None else ""))
        new_begin = hunk.new_start - 1 if hunk.new_len else hunk.new_start
        body += [f"+{new[i]}" for i in range(new_begin, min(len(new), new_begin + hunk.new_len))]
        body += [f" {old[i]}" for i in after]
        if len(body) > MAX_HUNK_LINES:
            body = [*body[:MAX_HUNK_LINES], f"... ({len(body) - MAX_HUNK_LINES} more lines)"]
        out += body
    text = "\n".join(out)
    if len(text) > MAX_CHANGE_CHARS:
        cut = text.rfind("\n", 0, MAX_CHANGE_CHARS)
        text = (f"{text[:max(cut, 0)]}\n... (cut at {MAX_CHANGE_CHARS:,} characters: the whole "
                f"change is `git show {commit[:12]}`)")
    return text


def accepted_lines(repo: git.Repo, parent: str, commit: str, found: Sequence[Finding]
                   ) -> dict[str, list[list[int]]]:
    """The `+` lines of commit in the hunks that touched the found lines, by path at
    commit (1-based inclusive ranges): what accepting the touch links (PRODUCT.md)."""
    lines: dict[str, list[list[int]]] = {}
    for change, hunk in _hunks_touching(repo, parent, commit, found):
        if hunk.new_len and change.new_path is not None:
            lines.setdefault(change.new_path, []).append(
                [hunk.new_start, hunk.new_start + hunk.new_len - 1])
    return lines


def compose(
    *, defect: str, touching: CommitInfo, parent: str, found: Sequence[Finding],
    fixes: Sequence[CommitInfo], change: str, evidence: str, probable_regression: bool,
    assignee: str, labels: Sequence[str] = (), data: Mapping[str, Any] | None = None,
) -> Ticket:
    """The revalidation ticket for defect touched by the touching commit."""
    short = touching.sha[:12]
    lines = sorted({(f.path, f.line) for f in found})
    where = ", ".join(f"{p}:{n}" for p, n in lines[:6]) + (" ..." if len(lines) > 6 else "")
    title = f"Revalidate {defect}: {short} changed {len(lines)} protected " \
            f"line{'s' if len(lines) != 1 else ''}"
    if probable_regression:
        title = f"[probable regression] {title}"
    body = [
        f"Commit {short} (\"{touching.subject}\", by {touching.author} <{touching.email}>, "
        f"{touching.date}) changed lines that fixed {defect}: {where}.",
        "",
        "Fixed by: " + "; ".join(f.short() for f in fixes) + ".",
        "Fixes submitted by: " + ", ".join(dict.fromkeys(
            f"{f.author} <{f.email}>" for f in fixes)) + ".",
        "",
        "Protected lines before, and the change:",
        "```diff",
        change,
        "```",
        "",
        evidence,
        "",
        "Decide:",
        f"- the defect still holds: `dasct qa accept {defect} --commit {short}` "
        "(the new lines become its baseline), or resolve this ticket as done;",
        f"- it regressed: `dasct qa reject {defect} --commit {short} --reason \"...\"`, "
        "or mark this ticket as a regression (label or resolution, docs/qa.md).",
    ]
    notify = tuple(dict.fromkeys(f.email for f in fixes if f.email))
    return Ticket(
        key=ticket_key(defect, touching.sha), defect=defect, commit=touching.sha,
        title=title, body="\n".join(body), assignee=assignee, notify=notify,
        labels=(LABEL, *labels), probable_regression=probable_regression,
        data=dict(data or {}),
    )
