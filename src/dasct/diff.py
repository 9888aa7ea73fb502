"""The one diff parser: git's `--raw` plus `-p -U0` output, streamed.

dasct never needs the content of changed lines, only where they are: which lines of the
old side a change removes and how many lines it puts in their place. So the parser reads
raw records (blob ids, status, renames) and hunk headers, and skips content lines by
count, which also makes it immune to content that looks like a header.

The same parser reads a whole `git log -m -p --raw` history (for the index) and a single
`git diff --cached` (for the commit-time check).
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing and dataclasses cost import time on the commit-time path
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

GITLINK_MODE = "160000"

# Options every patch dasct reads is produced with. -w: whitespace-only changes are no
# change at all (PRODUCT.md); -a: binary files are lines too, as git blame sees them;
# explicit prefixes: diff.noprefix/mnemonicPrefix in the user's config would change them.
PATCH_OPTIONS = (
    "--raw", "-p", "-U0", "-w", "-a", "-M", "--no-abbrev", "--no-ext-diff", "--no-textconv",
    "--no-color", "--src-prefix=a/", "--dst-prefix=b/", "--no-relative",
)


class Hunk:
    """One -U0 hunk: old lines [old_start, old_start+old_len) become new_len new lines.

    Both starts are 1-based line numbers as git prints them; with a zero length the start
    is the line *after which* the insertion (or deletion) happens.
    """

    __slots__ = ("new_len", "new_start", "old_len", "old_start")

    def __init__(self, old_start: int, old_len: int, new_start: int, new_len: int) -> None:
        self.old_start = old_start
        self.old_len = old_len
        self.new_start = new_start
        self.new_len = new_len

    def __repr__(self) -> str:
        return f"Hunk(-{self.old_start},{self.old_len} +{self.new_start},{self.new_len})"

    @property
    def old_lines(self) -> range:
        """The 1-based old line numbers this hunk removes or rewrites."""
        return range(self.old_start, self.old_start + self.old_len)


class FileChange:
    """One file of a diff: a raw record plus the hunks of its patch."""

    __slots__ = ("hunks", "new_blob", "new_mode", "new_path", "old_blob", "old_mode",
                 "old_path", "status")

    def __init__(
        self, *, status: str, old_path: str | None, new_path: str | None, old_mode: str,
        new_mode: str, old_blob: str, new_blob: str,
    ) -> None:
        self.status = status  # A, C, D, M, R, T (git's raw status letter, score dropped)
        self.old_path = old_path
        self.new_path = new_path
        self.old_mode = old_mode
        self.new_mode = new_mode
        self.old_blob = old_blob
        self.new_blob = new_blob
        self.hunks: list[Hunk] = []

    @property
    def is_gitlink(self) -> bool:
        """A submodule entry: it has no lines."""
        return GITLINK_MODE in (self.old_mode, self.new_mode)


class Section:
    """The diff of one commit against one of its parents (None: no parent, or unknown)."""

    __slots__ = ("commit", "files", "parent")

    def __init__(self, commit: str, parent: str | None) -> None:
        self.commit = commit
        self.parent = parent
        self.files: list[FileChange] = []


def unquote(raw: bytes) -> str:
    """Undo git's C-style path quoting; non-UTF-8 bytes survive as surrogates."""
    if not raw.startswith(b'"'):
        return raw.decode("utf-8", "surrogateescape")
    body = raw[1:-1]
    out = bytearray()
    i = 0
    escapes = {ord("n"): 10, ord("t"): 9, ord('"'): 34, ord("\\"): 92, ord("a"): 7,
               ord("b"): 8, ord("f"): 12, ord("r"): 13, ord("v"): 11}
    while i < len(body):
        c = body[i]
        if c == 92 and i + 1 < len(body):  # backslash
            nxt = body[i + 1]
            if 48 <= nxt <= 55:  # octal escape of a raw byte
                out.append(int(body[i + 1 : i + 4], 8))
                i += 4
                continue
            out.append(escapes.get(nxt, nxt))
            i += 2
            continue
        out.append(c)
        i += 1
    return out.decode("utf-8", "surrogateescape")


def _raw_record(line: bytes) -> FileChange:
    meta, _, paths = line.rstrip(b"\n").partition(b"\t")
    old_mode, new_mode, old_blob, new_blob, status = meta[1:].split(b" ")
    letter = status[:1].decode()
    parts = _split_paths(paths) if letter in "RC" else [paths]
    old_path: str | None = unquote(parts[0])
    new_path: str | None = unquote(parts[-1])
    if letter == "A":
        old_path = None
    elif letter == "D":
        new_path = None
    return FileChange(
        status=letter, old_path=old_path, new_path=new_path,
        old_mode=old_mode.decode(), new_mode=new_mode.decode(),
        old_blob=old_blob.decode(), new_blob=new_blob.decode(),
    )


def _split_paths(paths: bytes) -> list[bytes]:
    # "old\tnew": a tab inside a path is always quoted, so the first bare tab separates.
    if paths.startswith(b'"'):
        end = 1
        while True:
            end = paths.index(b'"', end)
            if paths[end - 1] != 92 or paths[end - 2] == 92:
                break
            end += 1
        return [paths[: end + 1], paths[end + 2 :]]
    old, _, new = paths.partition(b"\t")
    return [old, new]


def _hunk(line: bytes) -> Hunk:
    # b"@@ -a[,b] +c[,d] @@ ..."
    old, new = line.split(b" ", 3)[1:3]
    a, _, b = old[1:].partition(b",")
    c, _, d = new[1:].partition(b",")
    return Hunk(int(a), int(b) if b else 1, int(c), int(d) if d else 1)


def _patch_path(line: bytes, prefix: bytes) -> str | None:
    raw = line[4:].rstrip(b"\n")
    if raw == b"/dev/null":
        return None
    if raw.startswith(b'"'):
        path = unquote(raw)
        return path[len(prefix):] if path.startswith(prefix.decode()) else path
    # git appends a tab after a path that contains a space, to mark where it ends.
    raw = raw.rstrip(b"\t")
    return raw[len(prefix):].decode("utf-8", "surrogateescape")


def _is_commit_line(line: bytes) -> bool:
    head = line[:65].split(b" ", 1)[0].rstrip(b"\n")
    return len(head) in (40, 64) and all(c in b"0123456789abcdef" for c in head)


def lines_of(data: bytes) -> list[bytes]:
    """git output held in memory, split as a stream is read: at newlines only.

    bytes.splitlines would also split at a lone carriage return, which a file's content
    (and so a diff line) may hold.
    """
    import io

    return io.BytesIO(data).readlines()


def parse(lines: Iterable[bytes], *, commits: bool) -> Iterator[Section]:
    """Parse git output line by line into sections.

    With commits=True the input is `git log --oneline --no-abbrev-commit -m` output and
    each `<sha> [(from <parent>)] subject` line opens a section; otherwise the whole input
    is one section (a plain `git diff`) with commit "".
    """
    section: Section | None = None if commits else Section(commit="", parent=None)
    raw: list[FileChange] = []
    by_key: dict[tuple[str | None, str | None], FileChange] = {}
    minus: str | None = None
    current: tuple[str | None, str | None] = (None, None)
    current_set = False
    skip = 0

    def close() -> Section | None:
        if section is not None:
            section.files = raw[:]
        return section

    for line in lines:
        if skip:
            if not line.startswith(b"\\"):  # "\ No newline at end of file" is not counted
                skip -= 1
            continue
        first = line[:1]
        if first == b":":
            change = _raw_record(line)
            raw.append(change)
            if change.status == "T":
                # A type change shows as a deletion and an addition of the same path.
                by_key[(change.old_path, None)] = change
                by_key[(None, change.new_path)] = change
            else:
                by_key[(change.old_path, change.new_path)] = change
        elif first == b"@":
            hunk = _hunk(line)
            skip = hunk.old_len + hunk.new_len
            target = by_key.get(current) if current_set else None
            if target is not None and not (target.status == "T" and current[0] is not None):
                target.hunks.append(hunk)
        elif line.startswith(b"--- "):
            minus = _patch_path(line, b"a/")
        elif line.startswith(b"+++ "):
            current = (minus, _patch_path(line, b"b/"))
            current_set = True
        elif line.startswith(b"diff --git "):
            current_set = False
            minus = None
        elif commits and _is_commit_line(line):
            done = close()
            if done is not None:
                yield done
            raw = []
            by_key = {}
            current_set = False
            parts = line.rstrip(b"\n").split(b" ", 3)
            parent = None
            if len(parts) >= 3 and parts[1] == b"(from" and parts[2].endswith(b")"):
                parent = parts[2][:-1].decode()
            section = Section(commit=parts[0].decode(), parent=parent)
    done = close()
    if done is not None:
        yield done

