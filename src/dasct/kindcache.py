"""The line kinds of the files at HEAD, kept for the commit-time check.

A check that touches protected lines reports each touched line's kind (kinds.py) in the
file's version at the base. Reading that version from git (`cat-file` resolving a long
delta chain) and scanning it cost ~3 ms a file, most of what a warning added to a silent
check. The background refresh (refresh.py) classifies the files with protected lines
when they change and keeps their kinds here; the check reads one small bucket per touched
file and classifies only what it does not find.

It is only a cache: an entry is a pure function of a blob and of the file's name (which
picks the language), so a missing, stale or damaged entry only means the check classifies
that file itself, as it would without the cache. Every entry is checked (blob, name, line
count, CRC-32) before it is believed.

Layout: `<state dir>/kinds/<first two hex digits of the blob>`, each bucket a run of
entries, oldest first:

    <blob> <crc32 of name and body, 8 hex digits> <line count> <name>\\n<body>\\n

the body one letter per line (KIND_OF). The refresh rewrites a bucket whole (atomically)
when it adds to it, keeping its newest MAX_PER_BUCKET entries.
"""

from __future__ import annotations

import os
import zlib

TYPE_CHECKING = False  # typing costs import time on the commit-time path
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from dasct import git
    from dasct.check import Finding
    from dasct.settings import Settings
    from dasct.snapshot import Snapshot

DIR = "kinds"
# One letter per line kind (kinds.KINDS); the check reads them without importing kinds.
KIND_OF = {ord("c"): "code", ord("m"): "comment", ord("b"): "blank", ord("i"): "import"}
LETTER = {kind: chr(letter) for letter, kind in KIND_OF.items()}
MAX_PER_BUCKET = 512  # 256 buckets: 131,072 file versions at most
MAX_FILL = 20_000  # files classified per refresh at most (a checkout across a rewrite)


def _bucket(state_dir: str, blob: str) -> str:
    return os.path.join(state_dir, DIR, blob[:2])


def _name(path: str) -> bytes | None:
    """The file name an entry is kept under: UTF-8, one line (kinds._askable's rule for
    what cat-file can be asked, kept here so that the check does not import kinds)."""
    name = path.rpartition("/")[2]
    try:
        raw = name.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return None if b"\n" in raw else raw


def _entries(data: bytes) -> Iterable[tuple[bytes, bytes, bytes]]:
    """(blob, name, body) of each intact entry of a bucket; stops at the first damage."""
    pos, end = 0, len(data)
    while pos < end:
        eol = data.find(b"\n", pos)
        if eol < 0:
            return
        head = data[pos:eol].split(b" ", 3)
        if len(head) != 4 or not head[2].isdigit():
            return
        blob, crc, count, name = head
        body = data[eol + 1 : eol + 1 + int(count)]
        stop = eol + 1 + int(count)
        if len(body) != int(count) or data[stop : stop + 1] != b"\n" or (
                f"{zlib.crc32(body, zlib.crc32(name)):08x}".encode() != crc):
            return
        yield blob, name, body
        pos = stop + 1


def kinds_of(state_dir: str, blob: str, path: str) -> bytes | None:
    """The kind letters of every line of blob (as the file path), or None."""
    name = _name(path)
    if name is None or len(blob) < 40:
        return None
    try:
        with open(_bucket(state_dir, blob), "rb") as f:
            data = f.read()
    except OSError:
        return None
    want = blob.encode()
    pos = data.find(want + b" ")
    while pos >= 0:
        if pos == 0 or data[pos - 1 : pos] == b"\n":
            entry = next(iter(_entries(data[pos:])), None)  # the one starting here, if intact
            if entry is not None and entry[0] == want and entry[1] == name:
                return entry[2]
        pos = data.find(want + b" ", pos + 1)
    return None


def annotate(state_dir: str, found: Sequence[Finding]) -> list[Finding]:
    """Set the kind of each finding whose file version is cached; the others, returned,
    are left to kinds.annotate."""
    left: list[Finding] = []
    bodies: dict[tuple[str, str], bytes | None] = {}
    for f in found:
        key = (f.blob, f.path)
        if key not in bodies:
            bodies[key] = kinds_of(state_dir, f.blob, f.path) if f.blob else None
        body = bodies[key]
        if body is not None and 0 < f.line <= len(body) and body[f.line - 1] in KIND_OF:
            f.kind = KIND_OF[body[f.line - 1]]
        else:
            left.append(f)
    return left


def fill(repo: git.Repo, files: Mapping[str, str]) -> int:
    """Classify and keep the files {path: blob} not cached yet; how many were kept (a
    bucket that cannot be written is only a slower check: cache.failed_writes says so)."""
    from dasct import cache, git, kinds
    from dasct.errors import GitError

    state_dir = str(repo.state_dir)
    todo = sorted((path, blob) for path, blob in files.items()
                  if _name(path) is not None and kinds_of(state_dir, blob, path) is None)
    added: dict[str, list[bytes]] = {}
    for start in range(0, min(len(todo), MAX_FILL), 500):  # 500 blobs held at most
        batch = todo[start : start + 500]
        try:
            blobs = git.cat_blobs(repo.root, (blob for _, blob in batch))
        except GitError:
            continue  # an object this clone lacks: those files are classified when checked
        for path, blob in batch:
            every = kinds.classify(path, blobs[blob])
            body = "".join(LETTER[every[n]] for n in range(1, len(every) + 1)).encode()
            added.setdefault(blob[:2], []).append(_entry(blob.encode(), _name(path) or b"",
                                                         body))
    written = 0
    for prefix, entries in added.items():
        bucket = _bucket(state_dir, prefix)
        try:
            with open(bucket, "rb") as f:
                old = f.read()
        except OSError:
            old = b""
        kept = [_entry(*entry) for entry in _entries(old)]
        if cache.write_parts(bucket, [*kept, *entries][-MAX_PER_BUCKET:]):
            written += min(len(entries), MAX_PER_BUCKET)
    return written


def _entry(blob: bytes, name: bytes, body: bytes) -> bytes:
    return b"%s %08x %d %s\n%s\n" % (blob, zlib.crc32(body, zlib.crc32(name)), len(body),
                                      name, body)


def after_refresh(repo: git.Repo, snapshot: Snapshot, settings: Settings) -> int:
    """Keep the kinds of the files with protected lines at the snapshot (HEAD) that
    changed since the last time (all of them the first time); how many were added."""
    from dasct import git
    from dasct.errors import GitError

    assert snapshot.head is not None
    marker = os.path.join(str(repo.state_dir), DIR, "HEAD")
    try:
        with open(marker, "rb") as f:
            last = f.read().decode("ascii", "replace").strip()
    except OSError:
        last = ""
    if last == snapshot.head:
        return 0
    files: dict[str, str] | None = None
    if last:
        try:
            files = {c.new_path: c.new_blob
                     for c in git.raw_diff(repo.root, last, snapshot.head, renames=False)
                     if c.new_path is not None and c.new_blob and not c.is_gitlink}
        except GitError:
            files = None  # the last commit is gone (gc after a rewrite): every file
    if files is None:
        files = git.ls_tree(repo.root, snapshot.head)
    wanted = {path: blob for path, blob in files.items()
              if not settings.excluded(path) and snapshot.protected(path)}
    added = fill(repo, wanted)
    if len(wanted) <= MAX_FILL:  # else the next refresh goes on from the same commit
        from dasct import cache

        cache.write_parts(marker, [f"{snapshot.head}\n".encode()])
    return added
