"""Blame's rename search, per destination, on top of the log's global pairing.

`git log -M` pairs the deleted and added files of a commit globally, each source once;
`git blame` searches a source for each path on its own. replay.py follows the log, and
asks this module where the two can differ (docs/protected-lines.md, "Known limits").
"""

from __future__ import annotations

import bisect

from dasct import diff, git

TYPE_CHECKING = False  # typing costs import time on the hook path
if TYPE_CHECKING:
    from pathlib import Path


def per_destination(
    root: Path, parent: str, sha: str, files: list[diff.FileChange]
) -> list[diff.FileChange]:
    """files, with each destination whose source blame would choose otherwise turned
    into the rename blame makes.

    `git log -M` pairs deleted and added files globally, each source once; blame
    searches a source for each path on its own among the files the commit deleted, so
    a file split in two is the source of both new files; a renamed file's best source
    may have gone to another destination that scored higher with it (apache/maven
    3f9fec2307: Scope.java paired with ProjectScope.java, whose best source,
    DependencyProperties.java, the log gave elsewhere); and of several deleted files
    with the same content blame may pick another one than the global pairing did.
    Asking git for renames with only that destination and the deleted files in the
    pathspec is the same search. It is asked for every added file and every inexact
    rename that some other source could be similar to, and for every exact rename
    whose content several deleted files had, in commits that delete files; only
    those commits pay for it.
    """
    olds = [c for c in files
            if c.status in ("D", "R") and c.old_path is not None and not c.is_gitlink]
    if not olds:
        return files
    same_content: dict[str, int] = {}
    for c in olds:
        same_content[c.old_blob] = same_content.get(c.old_blob, 0) + 1
    searched = [i for i, c in enumerate(files)
                if c.new_path is not None and not c.is_gitlink and (
                    c.status == "A"
                    or (c.status == "R" and (c.old_blob != c.new_blob
                                             or same_content.get(c.new_blob, 0) > 1)))]
    if searched:
        searched = _could_be_renames(root, files, searched, olds)
    if not searched:
        return files
    spec = [f":(literal){c.old_path}" for c in olds]
    out = list(files)

    def search(position: int) -> bytes:
        # --diff-filter=R: only the pair found is printed (filtering follows the
        # search), not the patch of every deleted file in the pathspec, which made
        # this cost a commit's whole deletion for each destination.
        return git.run("diff", *diff.PATCH_OPTIONS, "--diff-filter=R", parent, sha,
                       "--", f":(literal){files[position].new_path}", *spec,
                       cwd=root)

    if len(searched) > 1:
        # The searches are independent git processes: both cores (apache/maven: 4,520
        # searches in 660 commits, ~14 ms each, most of a rebuild's own time).
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=2) as pool:
            answers = list(pool.map(search, searched))
    else:
        answers = [search(p) for p in searched]
    for position, found in zip(searched, answers, strict=True):
        change = out[position]
        assert change.new_path is not None
        for section in diff.parse(diff.lines_of(found), commits=False):
            for candidate in section.files:
                if candidate.status != "R" or candidate.new_path != change.new_path:
                    continue
                if change.status == "R" and candidate.old_path == change.old_path:
                    continue  # blame makes the pairing git made
                # A copy of the source, as far as this file is concerned: the
                # source's own pairing stays as git gave it.
                candidate.status = "C"
                out[position] = candidate
                if change.status == "R":  # the source git paired it with still goes
                    gone = diff.FileChange(
                        status="D", old_path=change.old_path, new_path=None,
                        old_mode=change.old_mode, new_mode="000000",
                        old_blob=change.old_blob, new_blob="0" * len(change.old_blob))
                    out.append(gone)
    return out

def _could_be_renames(
    root: Path, files: list[diff.FileChange], searched: list[int], olds: list[diff.FileChange]
) -> list[int]:
    """The destinations some source could be similar enough to, by size alone.

    Git scores a pair 0 without reading it when the smaller blob is less than half
    the larger one (diffcore-rename's estimate_similarity at -M's 50%), and an exact
    rename has equal sizes: a destination no source comes within 2x of cannot be a
    rename, nor can a renamed one be another source's when only its own source
    comes that close. Large commits that move and add many files pay one size
    lookup instead of a process per file.
    """
    sizes = git.blob_sizes(root, [
        *(files[i].new_blob for i in searched), *(c.old_blob for c in olds)])
    sources = sorted(s for c in olds if (s := sizes.get(c.old_blob, -1)) >= 0)
    if len(sources) != len(olds):
        return searched  # a size git could not tell: ask git, as without the filter
    out = []
    for i in searched:
        change = files[i]
        size = sizes.get(change.new_blob, -1)
        if size < 0:
            out.append(i)
            continue
        # Sources in [size/2, 2*size] (integer-exact: 2*small >= large).
        near = (bisect.bisect_right(sources, 2 * size)
                - bisect.bisect_left(sources, (size + 1) // 2))
        if change.status == "R":
            own = sizes.get(change.old_blob, -1)
            if own >= 0 and 2 * min(own, size) >= max(own, size):
                near -= 1  # its own source: the pairing git already made
            if change.old_blob == change.new_blob:
                near = 1  # several identical sources: which one is blame's choice
        if near > 0:
            out.append(i)
    return out
