"""Cache files in the git dir (index snapshots, the settings cache): checked, disposable.

A cache file is a 24-byte header (magic, kind, format version, payload length, CRC-32 of
the payload) and a marshal payload. `read` checks the whole header and the checksum before
marshal sees a byte: marshal trusts the lengths it reads and allocates whatever a damaged
file says (one flipped byte made a commit grow to 16 GB). CRC-32 detects every error burst
of up to 32 bits, so every single damaged byte and every truncation, at ~1 ms per MB; a
cryptographic hash would bring hashlib onto the commit-time path and protects nothing more
here (whoever can write the git dir can rewrite the hooks).

Writes are atomic (a temporary file renamed over the old one) but not durable: no fsync,
because a cache is written during a commit and a torn one is detected and rebuilt. A write
that fails (a read-only git dir, a full disk) is not raised: the command answers from
memory and cli prints one line after its output (`failed_writes`).

Snapshots, which a commit reads only in part, are *framed* files instead (`frame`,
`open_framed`, `read_part`): a checked header and head, then parts that each carry their
own checksum, so that what is read is checked and what is not read costs nothing.
"""

from __future__ import annotations

import marshal
import os
import sys
import zlib

from dasct.errors import DasctError

TYPE_CHECKING = False  # typing costs import time on the commit-time path
if TYPE_CHECKING:
    from typing import Any, BinaryIO

MAGIC = b"DASCT\x00"
HEADER = 24  # magic 6, kind 2, version 4, payload length 8, crc32 4
MARSHAL_VERSION = 4  # readable by every Python dasct supports

_failed: list[tuple[str, str]] = []


class Damaged(DasctError):
    """A cache file that is not exactly what dasct wrote: deleted and rebuilt, never used."""


def read(path: str | os.PathLike[str], kind: bytes, version: int) -> object:
    """The payload of the cache file at path; Damaged when anything does not check out.

    OSError (no such file, unreadable) is left to the caller.
    """
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < HEADER or data[:6] != MAGIC or data[6:8] != kind:
        raise Damaged("not a dasct cache file of this kind")
    found = int.from_bytes(data[8:12], "little")
    if found != version:
        raise Damaged(f"format {found}, this dasct reads {version}")
    if int.from_bytes(data[12:20], "little") != len(data) - HEADER:
        raise Damaged("its length does not match its header (truncated?)")
    payload = memoryview(data)[HEADER:]
    if zlib.crc32(payload) != int.from_bytes(data[20:24], "little"):
        raise Damaged("checksum mismatch")
    try:
        return marshal.loads(payload)
    except (EOFError, ValueError, TypeError) as exc:
        raise Damaged(f"undecodable: {exc}") from None


def write(path: str | os.PathLike[str], value: Any, kind: bytes, version: int) -> bool:
    """Write value atomically; False (and remembered for failed_writes) when it cannot."""
    payload = marshal.dumps(value, MARSHAL_VERSION)
    header = (
        MAGIC + kind + version.to_bytes(4, "little") + len(payload).to_bytes(8, "little")
        + zlib.crc32(payload).to_bytes(4, "little")
    )
    return write_parts(path, [header, payload])


# A framed file (the snapshots, read in parts, snapfile.py): a 32-byte header (magic 6,
# kind 2, version 4, length of the rest 8, head length 4, CRC-32 of the head 4, CRC-32 of
# the 28 bytes before 4), a marshal head, then a body whose parts carry their own checksums
# (named in the head), read one part at a time by whoever needs it.
FRAME = 32


def frame(value: Any, kind: bytes, version: int, body: int) -> list[bytes]:
    """The header and head of a framed file whose body has `body` bytes."""
    head = marshal.dumps(value, MARSHAL_VERSION)
    header = (MAGIC + kind + version.to_bytes(4, "little")
              + (len(head) + body).to_bytes(8, "little") + len(head).to_bytes(4, "little")
              + zlib.crc32(head).to_bytes(4, "little"))
    return [header + zlib.crc32(header).to_bytes(4, "little"), head]


def open_framed(path: str | os.PathLike[str], kind: bytes, version: int
                ) -> tuple[BinaryIO, object, int]:
    """The open file, its checked head and the offset where its body starts; Damaged when
    the header or head does not check out (the body is the reader's to check, part by
    part). OSError (no such file, unreadable) is left to the caller."""
    f = open(path, "rb", buffering=0)  # noqa: SIM115 -- kept open by the reader
    try:
        header = f.read(FRAME)
        if len(header) < FRAME or header[:6] != MAGIC or header[6:8] != kind:
            raise Damaged("not a dasct cache file of this kind")
        found = int.from_bytes(header[8:12], "little")
        if found != version:
            raise Damaged(f"format {found}, this dasct reads {version}")
        if zlib.crc32(header[:28]) != int.from_bytes(header[28:], "little"):
            raise Damaged("checksum mismatch in its header")
        rest, size = int.from_bytes(header[12:20], "little"), os.fstat(f.fileno()).st_size
        length = int.from_bytes(header[20:24], "little")
        if size != FRAME + rest or length > rest:
            raise Damaged("its length does not match its header (truncated?)")
        head = f.read(length)
        if len(head) != length or zlib.crc32(head) != int.from_bytes(header[24:28], "little"):
            raise Damaged("checksum mismatch in its head")
        try:
            value = marshal.loads(head)
        except (EOFError, ValueError, TypeError) as exc:
            raise Damaged(f"undecodable: {exc}") from None
    except BaseException:
        f.close()
        raise
    return f, value, FRAME + length


def pread(f: BinaryIO, length: int, offset: int) -> bytes:
    """Up to length bytes of f at offset (os.pread: no shared file position; Windows has
    none, and seeks)."""
    if hasattr(os, "pread"):
        return os.pread(f.fileno(), length, offset)
    f.seek(offset)
    return f.read(length)


def read_part(f: BinaryIO, offset: int, length: int, crc: int, what: str) -> bytes:
    """length bytes of an open framed file at offset, checked against crc; Damaged
    otherwise."""
    data = pread(f, length, offset)
    if len(data) != length:
        raise Damaged(f"{what} is cut short")
    if zlib.crc32(data) != crc:
        raise Damaged(f"checksum mismatch in {what}")
    return data


def write_parts(path: str | os.PathLike[str], parts: list[bytes]) -> bool:
    """Write the concatenated parts atomically; False (and remembered for failed_writes)
    when it cannot."""
    target = os.fspath(path)
    directory, name = os.path.split(target)
    # Not named *.snap: listings of the index dir must never see a half-written file.
    tmp = os.path.join(directory, f".{name}.{os.getpid()}.tmp")
    try:
        os.makedirs(directory, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            for part in parts:
                view = memoryview(part)
                while view:
                    view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except OSError as exc:
        discard(tmp)
        reason = exc.strerror or type(exc).__name__
        if exc.filename and exc.filename not in (tmp, target):
            reason += f": {exc.filename}"  # the directory that is a file, or is missing
        _failed.append((target, reason))
        return False
    except BaseException:  # interrupted (the commit-time budget, ^C): no temp file left
        discard(tmp)
        raise
    return True


def discard(path: str | os.PathLike[str], reason: str | None = None) -> None:
    """Delete a cache file (saying why on stderr when it was unusable); never raises."""
    if reason is not None:
        print(f"dasct: discarded the cache file {os.fspath(path)} ({reason}); rebuilding it",
              file=sys.stderr)
    try:
        os.unlink(path)
    except OSError:
        pass  # already gone, or a read-only directory: the next read rejects it again


def failed_writes() -> str | None:
    """One line about the cache files that could not be written since the last call, or
    None."""
    if not _failed:
        return None
    path, reason = _failed[0]
    more = len({p for p, _ in _failed}) - 1
    _failed.clear()
    others = f" (and {more} other cache file{'s' * (more != 1)})" if more > 0 else ""
    return (f"dasct: could not save the cache file {path}{others}: {reason}; "
            f"the answer above was computed without it")
