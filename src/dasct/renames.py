"""Blame's rename search, per destination, on top of the log's global pairing.

`git log -M` pairs the deleted and added files of a commit globally, each source once;
`git blame` searches a source for each path on its own. replay.py follows the log, and
asks this module where the two can differ (docs/protected-lines.md, "Known limits").
"""

from __future__ import annotations

import bisect
import os

from dasct import diff, git

TYPE_CHECKING = False  # typing costs import time on the hook path
if TYPE_CHECKING:
    from pathlib import Path

_ECHO = b"~dasct: answered\n"  # no line of diff-tree's output starts with "~"
# Where the searches' trees are written: a memory file system where there is one
# (writing a small file there costs a third of what it costs on a disk's).
SCRATCH = "/dev/shm"
_TREE_MODE = b"40000"


class Search:
    """The per-destination rename searches of one replay, asked of one long-lived `git
    diff-tree --stdin` instead of a `git diff` process each.

    Blame's search for one destination is a rename detection between the commit's
    deleted files and that one file. A `git diff` with them as its pathspec asks exactly
    that, but a pathspec is fixed for a process; so the question is put as two trees
    instead, written for it: one holding the deleted files at their paths (the same
    blobs and modes), one holding the destination alone. Between them the deleted files
    are the only sources and the destination the only destination, as with the
    pathspec, and the pair and patch git prints are the same. The trees go to a private
    object directory (the repository's own objects as its alternate): nothing is
    written into the repository. Started on the first search; `close` removes it all.
    """

    def __init__(self, repo: git.Repo) -> None:
        self.repo = repo
        self._git: git.conversation | None = None
        self._objects = ""
        self._made: set[str] = set()  # the objects written
        self._folders: set[str] = set()  # their fan-out folders made

    def _start(self) -> git.conversation:
        import tempfile

        scratch = SCRATCH if os.access(SCRATCH, os.W_OK | os.X_OK) else None
        self._objects = tempfile.mkdtemp(prefix="dasct-renames-", dir=scratch)
        own = os.environ.get("GIT_OBJECT_DIRECTORY") or str(self.repo.common_dir / "objects")
        alternates = [os.path.abspath(own)]
        if os.environ.get("GIT_ALTERNATE_OBJECT_DIRECTORIES"):
            alternates.append(os.environ["GIT_ALTERNATE_OBJECT_DIRECTORIES"])
        self._git = git.conversation(
            # --diff-filter=R: only the pair found is printed (filtering follows the
            # search), not the patch of every deleted file.
            "diff-tree", "--stdin", "-r", *diff.PATCH_OPTIONS, "--diff-filter=R",
            cwd=self.repo.root, echo=_ECHO,
            env={"GIT_OBJECT_DIRECTORY": self._objects,
                 "GIT_ALTERNATE_OBJECT_DIRECTORIES": os.pathsep.join(alternates)})
        return self._git

    def ask(self, sources: str, destination: diff.FileChange) -> diff.FileChange | None:
        """The rename, with its hunks, git finds for destination among the files of
        the tree `sources` (from `sources`); None when none."""
        conversation = self._git or self._start()
        path = destination.new_path
        assert path is not None
        # The destination at its own path: git's rename detection reads a path's
        # attributes (whether a file is text, and so how it is hashed).
        alone = self.tree([(path, destination.new_mode, destination.new_blob)])
        answer = conversation.ask(f"{sources} {alone}\n".encode())
        for section in diff.parse(diff.lines_of(answer), commits=False):
            for found in section.files:
                if found.status == "R" and found.new_path == path:
                    return found
        return None

    def sources(self, olds: list[diff.FileChange]) -> str:
        """The tree of a commit's deleted files."""
        return self.tree([(c.old_path, c.old_mode, c.old_blob)
                          for c in olds if c.old_path is not None])

    def tree(self, files: list[tuple[str, str, str]]) -> str:
        """Write a tree of (path, mode, blob id) and its subtrees; its id."""
        if self._git is None:
            self._start()
        top: dict[bytes, object] = {}
        for path, mode, blob in files:
            *dirs, name = path.encode("utf-8", "surrogateescape").split(b"/")
            node = top
            for part in dirs:
                child = node.setdefault(part, {})
                assert isinstance(child, dict)
                node = child
            node[name] = (mode.lstrip("0").encode(), bytes.fromhex(blob))
        width = len(files[0][2]) if files else 40
        return self._write(top, "sha256" if width == 64 else "sha1").hex()

    def _write(self, node: dict[bytes, object], algorithm: str) -> bytes:
        import hashlib
        import zlib

        entries = []
        for name, value in node.items():
            if isinstance(value, dict):
                # git orders a tree's entries by name, a subtree's name as if it ended in "/"
                entries.append((name + b"/", _TREE_MODE, name, self._write(value, algorithm)))
            else:
                assert isinstance(value, tuple)
                entries.append((name, value[0], name, value[1]))
        entries.sort(key=lambda e: e[0])
        body = b"".join(b"%s %s\0%s" % (mode, name, raw) for _, mode, name, raw in entries)
        data = b"tree %d\0%s" % (len(body), body)
        digest = hashlib.new(algorithm, data)
        hexname = digest.hexdigest()
        if hexname not in self._made:
            folder = os.path.join(self._objects, hexname[:2])
            if hexname[:2] not in self._folders:
                os.mkdir(folder)
                self._folders.add(hexname[:2])
            fd = os.open(os.path.join(folder, hexname[2:]),
                         os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
            try:
                os.write(fd, zlib.compress(data, 1))
            finally:
                os.close(fd)
            self._made.add(hexname)
        return digest.digest()

    def close(self) -> None:
        if self._git is not None:
            self._git.close()
            self._git = None
        if self._objects:
            import shutil

            shutil.rmtree(self._objects, ignore_errors=True)
            self._objects = ""
            self._made.clear()
            self._folders.clear()


def per_destination(
    search: Search, files: list[diff.FileChange]
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
    Asking git for renames between the deleted files and that destination alone is the
    same search (Search). It is asked for every added file and every inexact
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
        searched = _could_be_renames(search.repo.root, files, searched, olds)
    if not searched:
        return files
    out = list(files)
    sources = search.sources(olds)
    for position in searched:
        change = out[position]
        candidate = search.ask(sources, change)
        if candidate is None:
            continue
        if change.status == "R" and candidate.old_path == change.old_path:
            continue  # blame makes the pairing git made
        # A copy of the source, as far as this file is concerned: the source's own
        # pairing stays as git gave it.
        candidate.status = "C"
        out[position] = candidate
        if change.status == "R":  # the source git paired it with still goes
            out.append(diff.FileChange(
                status="D", old_path=change.old_path, new_path=None,
                old_mode=change.old_mode, new_mode="000000",
                old_blob=change.old_blob, new_blob="0" * len(change.old_blob)))
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
