"""Snapshot files, FORMAT 5: read in parts, so that a commit reads only what it touches.

A snapshot is a framed cache file (cache.py: checked header and head) whose body has
three regions, each checked in pieces before a byte of it is believed:

* commits: every commit id of the snapshot's table, `width` hex digits each, checked per
  chunk of CHUNK ids (a CRC-32 per chunk, in the head): `sha(i)` reads one chunk;
* lookup table: one entry per file, (crc32 of its path, offset, length of its record),
  sorted by hash and path, in 2**bits buckets by the hash's top bits; the head holds each
  bucket's first entry and CRC-32: a path costs one bucket (about BUCKET entries);
* records: per file, CRC-32 of the rest, the path's length, the path (UTF-8), its runs
  (origin, count), as origins.encode makes them. The path is in the record, so that two
  paths with one hash are told apart; its origins are checked against the commit count.

Numbers are native-order uint32 (the head names the byte order: a snapshot is a local
cache, never moved between machines). Reading everything (`files`, `commit_table`, as
scan, index and replay do) checks every piece, and the records region as a whole: a flipped
byte anywhere is caught there; a hook catches one in whatever it reads.
"""

from __future__ import annotations

import os
import sys
import zlib

from dasct import cache
from dasct.linklines import LineLinks
from dasct.origins import FullState, IndexCorrupt, encode, u32s
from dasct.refs import MAX_KEY_LENGTH

TYPE_CHECKING = False
if TYPE_CHECKING:
    from array import array

    from dasct.linklines import Entry
    from dasct.origins import Origins

KIND = b"ix"  # cache.py file kind of a snapshot
# 1: bare marshal, no header; 2: no history key; 3: one checked marshal payload (all three
# are read as damaged, then rebuilt); 4: no ledger links
FORMAT = 5
RUN_BYTES = 8  # one run: two uint32 (origin, count), see origins.encode
ENTRY = 12  # a lookup entry: three uint32 (path hash, record offset, record length)
CHUNK = 256  # commit ids per checked chunk of the commit table
BUCKET = 64  # files per lookup bucket, about (the bucket count is a power of two)
# No repository has this many lines at one commit (Linux has ~40 million); a snapshot
# claiming more is refused rather than expanded.
MAX_LINES = 1 << 28
_U32 = 1 << 32


def _bits(files: int) -> int:
    return min(16, (files // BUCKET).bit_length())


def _bucket(hash_: int, bits: int) -> int:
    return hash_ >> (32 - bits) if bits else 0


def _encoded(path: str) -> bytes:
    return path.encode("utf-8", "surrogateescape")  # paths as git gave them (diff.py)


def _u32(values: list[int] | array[int]) -> bytes:
    from array import array

    return array("I", values).tobytes()



def parts(head: str, table: str, links: dict[int, tuple[str, ...]],
          files: dict[str, Origins | bytes], history_fp: str, links_fp: str,
          lines: LineLinks | None = None) -> list[bytes]:
    """The bytes of a snapshot file, in the order they are written."""
    width = len(head)
    count = len(table) // width
    items = sorted((zlib.crc32(p), p, r) for p, r in (
        (_encoded(path), v if isinstance(v, bytes) else encode(v))
        for path, v in dict.items(files) if v))
    bits = _bits(len(items))
    from array import array

    records: list[bytes] = []
    entries = array("I")
    firsts = [0] * ((1 << bits) + 1)
    offset = 0
    for hash_, path, runs in items:
        body = len(path).to_bytes(4, sys.byteorder) + path + runs
        record = zlib.crc32(body).to_bytes(4, sys.byteorder) + body
        entries.extend((hash_, offset, len(record)))
        records.append(record)
        offset += len(record)
        firsts[_bucket(hash_, bits) + 1] += 1
    if offset >= _U32:
        raise ValueError("a snapshot of more than 4 GiB of records")
    for b in range(1 << bits):
        firsts[b + 1] += firsts[b]
    table_bytes = entries.tobytes()
    crcs = [zlib.crc32(table_bytes[firsts[b] * ENTRY : firsts[b + 1] * ENTRY])
            for b in range(1 << bits)]
    ids = table.encode("ascii")
    step = CHUNK * width
    chunks = [zlib.crc32(ids[i : i + step]) for i in range(0, len(ids), step)]
    blob = b"".join(records)
    fixes = sorted(links)
    value = {
        "head": head, "width": width, "count": count,
        # Links as three flat values, checked with a few C calls (a dict of lists costs
        # a Python call per key: 7 ms for the 5,000 fix commits of apache/maven).
        "link_origins": _u32(fixes), "link_counts": _u32([len(links[o]) for o in fixes]),
        "link_keys": "\0".join(k for o in fixes for k in links[o]),
        "history": history_fp, "links_fp": links_fp, "order": sys.byteorder,
        # The ledger's line links the replay applied, and the aliases it made for them
        # (linklines.py): an update replays new commits with the same links.
        "ledger": lines.fp if lines else "",
        "line_links": [[c, p, [list(r) for r in rs], m] for c, p, rs, m in lines.entries]
        if lines else [],
        "aliases": [[i, real, list(changes)] for i, (real, changes)
                    in sorted(lines.aliases.items())] if lines else [],
        "files": len(items), "bits": bits, "firsts": _u32(firsts), "crcs": _u32(crcs),
        "chunks": _u32(chunks), "records": len(blob), "records_crc": zlib.crc32(blob),
    }
    body_length = len(ids) + len(table_bytes) + len(blob)
    return [*cache.frame(value, KIND, FORMAT, body_length), ids, table_bytes, blob]


def _is_hex(text: object) -> bool:
    """Lower-case hex digits only: fromhex refuses anything but hex digits and whitespace,
    and skipped whitespace would shorten its output (str.isalnum costs more)."""
    if type(text) is not str or not text.isascii() or len(text) % 2 or text.lower() != text:
        return False
    try:
        return len(bytes.fromhex(text)) * 2 == len(text)
    except ValueError:
        return False


def _array(data: object, length: int, what: str) -> memoryview:
    if type(data) is not bytes or len(data) != 4 * length:
        raise IndexCorrupt(f"its {what} are not {length} numbers")
    return u32s(data)


def _line_links(fp: object, entries: object, aliases: object, commits: int) -> LineLinks:
    """The ledger's line links of a snapshot head, checked as linklines.entries checks
    the ledger's records, and its aliases: indexes of its table, changes of valid keys."""
    if type(fp) is not str or type(entries) is not list or type(aliases) is not list:
        raise IndexCorrupt("its ledger links are not what dasct writes")
    out: list[Entry] = []
    for e in entries:
        if not (type(e) is list and len(e) == 4 and type(e[0]) is str and _is_hex(e[0])
                and type(e[1]) is str and e[1] and type(e[2]) is list and e[2]
                and _change(e[3])):
            raise IndexCorrupt("a ledger link of it does not name a commit, path and change")
        ranges = []
        for r in e[2]:
            if not (type(r) is list and len(r) == 2 and type(r[0]) is int
                    and type(r[1]) is int and 1 <= r[0] <= r[1] <= MAX_LINES):
                raise IndexCorrupt("a ledger link of it has a line range out of bounds")
            ranges.append((r[0], r[1]))
        out.append((e[0], e[1], tuple(ranges), e[3]))
    table: dict[int, tuple[int, tuple[str, ...]]] = {}
    for a in aliases:
        if not (type(a) is list and len(a) == 3 and type(a[0]) is int and type(a[1]) is int
                and 0 <= a[0] < commits and 0 <= a[1] < commits and a[0] != a[1]
                and type(a[2]) is list and a[2] and all(_change(c) for c in a[2])):
            raise IndexCorrupt("an alias of it does not name two commits of its table")
        table[a[0]] = (a[1], tuple(a[2]))
    if len(table) != len(aliases):
        raise IndexCorrupt("a commit of it has two aliases")
    return LineLinks(fp, out, table)


def _change(value: object) -> bool:
    return type(value) is str and value[:1] in ("+", "-") and (
        0 < len(value) - 1 <= MAX_KEY_LENGTH and value.isprintable())


def _links(origins: object, counts: object, keys: object, commits: int
           ) -> dict[int, tuple[str, ...]]:
    """The links (fix commit index -> defect keys) from their three flat values, checked:
    indexes in the commit table, each commit once, keys that defect_keys can return."""
    if type(origins) is not bytes or type(counts) is not bytes or type(keys) is not str:
        raise IndexCorrupt("its links are not what dasct writes")
    at = _array(origins, len(origins) // 4, "link origins")
    per = _array(counts, len(at), "link counts")
    parts = keys.split("\0") if keys else []
    if at and (max(at) >= commits or min(per) < 1):
        raise IndexCorrupt("a link does not name a commit of its table")
    if len(parts) != sum(per):
        raise IndexCorrupt("its links do not have the keys they count")
    # valid_key for every key at once: no key empty or too long, and all printable (the
    # separator aside, which no valid key contains).
    if parts and (min(map(len, parts)) < 1 or max(map(len, parts)) > MAX_KEY_LENGTH
                  or not keys.replace("\0", "").isprintable()):
        raise IndexCorrupt("a link names something that is not a defect key")
    links: dict[int, tuple[str, ...]] = {}
    first = 0
    for origin, n in zip(at, per, strict=True):
        links[origin] = tuple(parts[first : first + n])
        first += n
    if len(links) != len(at):
        raise IndexCorrupt("a commit has two links")
    return links


class SnapFile:
    """An open snapshot file whose head was checked; the rest is read and checked on
    demand. IndexCorrupt (with the reason) for anything that does not check out."""

    head: str

    __slots__ = ("_chunk_crcs", "_chunks", "_commits_at", "_crcs", "_f", "_firsts", "_records_at",
                 "_table_at", "bits", "count", "files", "head", "history_fp", "lines",
                 "links", "links_fp", "path", "records", "records_crc", "width")

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = path
        try:
            self._f, value, body = cache.open_framed(path, KIND, FORMAT)
        except cache.Damaged as exc:
            raise IndexCorrupt(str(exc)) from None
        try:
            if not isinstance(value, dict):
                raise IndexCorrupt("its head is not a table")
            self._head(value, body)
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            self._f.close()
            raise IndexCorrupt(f"malformed ({type(exc).__name__}: {exc})") from None
        except IndexCorrupt:
            self._f.close()
            raise
        self._chunks: dict[int, str] = {}

    def _head(self, value: dict[str, object], body: int) -> None:
        # Every shape and number before anything is sized by one (the checksum rules out
        # damage; this rules out a file that dasct did not write as it writes them).
        width, head, count = value["width"], value["head"], value["count"]
        if width not in (40, 64) or not isinstance(head, str) or len(head) != width or (
                not _is_hex(head)):
            raise IndexCorrupt("its head is not a commit id")
        if value["order"] != sys.byteorder or type(count) is not int or not 0 < count < _U32:
            raise IndexCorrupt("its commit count or byte order is not this machine's")
        links = _links(value["link_origins"], value["link_counts"], value["link_keys"], count)
        self.lines = _line_links(value["ledger"], value["line_links"], value["aliases"], count)
        files, bits, records = value["files"], value["bits"], value["records"]
        if type(files) is not int or type(bits) is not int or type(records) is not int:
            raise IndexCorrupt("its file table is not described by numbers")
        if not 0 <= bits <= 16 or not 0 <= files < _U32 or not 0 <= records < _U32:
            raise IndexCorrupt("its file table is out of range")
        self._firsts = _array(value["firsts"], (1 << bits) + 1, "bucket starts")
        self._crcs = _array(value["crcs"], 1 << bits, "bucket checksums")
        self._chunk_crcs = _array(value["chunks"], -(-count // CHUNK), "commit checksums")
        if self._firsts[0] != 0 or self._firsts[-1] != files:
            raise IndexCorrupt("its buckets do not cover its files")
        history_fp, links_fp, records_crc = (value["history"], value["links_fp"],
                                             value["records_crc"])
        if not isinstance(history_fp, str) or not isinstance(links_fp, str):
            raise IndexCorrupt("its fingerprints are not text")
        if type(records_crc) is not int:
            raise IndexCorrupt("its records' checksum is not a number")
        if count * width + files * ENTRY + records + body != self.size():
            raise IndexCorrupt("its regions do not add up to its length")
        self.head, self.width, self.count, self.links = head, width, count, links
        self.files, self.bits, self.records, self.records_crc = files, bits, records, records_crc
        self.history_fp, self.links_fp = history_fp, links_fp
        self._commits_at = body
        self._table_at = body + count * width
        self._records_at = self._table_at + files * ENTRY

    def size(self) -> int:
        """Bytes of the file, as open."""
        return os.fstat(self._f.fileno()).st_size

    def _read(self, offset: int, length: int, crc: int, what: str) -> bytes:
        try:
            return cache.read_part(self._f, offset, length, crc, what)
        except cache.Damaged as exc:
            raise IndexCorrupt(str(exc)) from None

    def sha(self, index: int) -> str:
        """The commit id at index of the table (one checked chunk)."""
        if not 0 <= index < self.count:
            raise IndexError(index)
        chunk = self._chunk(index // CHUNK)
        at = (index % CHUNK) * self.width
        return chunk[at : at + self.width]

    def _chunk(self, c: int) -> str:
        text = self._chunks.get(c)
        if text is None:
            ids = min(CHUNK, self.count - c * CHUNK)
            data = self._read(self._commits_at + c * CHUNK * self.width, ids * self.width,
                              self._chunk_crcs[c], "its commit table")
            text = data.decode("ascii", "replace")
            if not _is_hex(text):
                raise IndexCorrupt("its commit table is not a list of commit ids")
            self._chunks[c] = text
        return text

    def commit_table(self) -> str:
        """Every commit id, concatenated (every chunk checked)."""
        return "".join(self._chunk(c) for c in range(len(self._chunk_crcs)))

    def runs(self, path: str) -> bytes | None:
        """The run-length encoded origins of path (None: no such file), from its bucket
        and its record, both checked."""
        name = _encoded(path)
        hash_ = zlib.crc32(name)
        b = _bucket(hash_, self.bits)
        first, end = self._firsts[b], self._firsts[b + 1]
        if not first <= end:
            raise IndexCorrupt("its lookup table is out of order")
        if first == end:
            return None
        data = self._read(self._table_at + first * ENTRY, (end - first) * ENTRY,
                          self._crcs[b], "its lookup table")
        entries = u32s(data)
        for i in range(0, len(entries), 3):
            if entries[i] == hash_:
                found, runs = self._record(entries[i + 1], entries[i + 2])
                if found == name:
                    return runs
        return None

    def spans(self, path: str) -> list[tuple[int, int]]:
        """The byte ranges [start, end) of the file that a question about path reads:
        the header and head, its bucket of the lookup table, its record (for tests and
        docs: what a commit reads does not grow with the repository)."""
        name = _encoded(path)
        b = _bucket(zlib.crc32(name), self.bits)
        first, end = self._firsts[b], self._firsts[b + 1]
        out = [(0, self._commits_at),
               (self._table_at + first * ENTRY, self._table_at + end * ENTRY)]
        entries = u32s(cache.pread(self._f, (end - first) * ENTRY,
                                   self._table_at + first * ENTRY))
        for i in range(0, len(entries), 3):
            if entries[i] == zlib.crc32(name):
                start = self._records_at + entries[i + 1]
                out.append((start, start + entries[i + 2]))
        return out

    def chunk_span(self, index: int) -> tuple[int, int]:
        """The byte range of the checked chunk of the commit table that holds index."""
        c = index // CHUNK
        start = self._commits_at + c * CHUNK * self.width
        return start, start + min(CHUNK, self.count - c * CHUNK) * self.width

    def _record(self, offset: int, length: int) -> tuple[bytes, bytes]:
        if offset + length > self.records or length < 8:
            raise IndexCorrupt("a lookup entry points outside its records")
        data = cache.pread(self._f, length, self._records_at + offset)
        if len(data) != length:
            raise IndexCorrupt("a record is cut short")
        if zlib.crc32(memoryview(data)[4:]) != int.from_bytes(data[:4], sys.byteorder):
            raise IndexCorrupt("checksum mismatch in a record")
        return self._parsed(data)

    def _parsed(self, data: bytes, check: bool = True) -> tuple[bytes, bytes]:
        size = int.from_bytes(data[4:8], sys.byteorder)
        runs = data[8 + size :]
        if not size or len(runs) % RUN_BYTES or not runs:
            raise IndexCorrupt("a record is not a path with run-length encoded lines")
        if check:
            self._check_runs(runs)
        return data[8 : 8 + size], runs

    def _check_runs(self, runs: bytes) -> None:
        # Each file on its own, and all of them together (all_files): never a number
        # beyond the commit table, nor more lines than a repository can have.
        numbers = u32s(runs)
        if max(numbers[0::2]) >= self.count:
            raise IndexCorrupt("a line names a commit outside its table")
        if sum(numbers[1::2]) > MAX_LINES:
            raise IndexCorrupt(f"it claims more than {MAX_LINES} lines")

    def all_files(self) -> FullState:
        """Every file's runs, every byte of the file checked: the commit table per chunk,
        the lookup table per bucket, the records as a whole, and that the entries, in
        order, cover the records one after the other."""
        self.commit_table()
        length = self.files * ENTRY + self.records
        data = cache.pread(self._f, length, self._table_at)
        if len(data) != length:
            raise IndexCorrupt("its records are cut short")
        view = memoryview(data)
        firsts, crcs = self._firsts, self._crcs
        for b in range(len(crcs)):
            if not firsts[b] <= firsts[b + 1]:
                raise IndexCorrupt("its lookup table is out of order")
            if zlib.crc32(view[firsts[b] * ENTRY : firsts[b + 1] * ENTRY]) != crcs[b]:
                raise IndexCorrupt("checksum mismatch in its lookup table")
        records = view[self.files * ENTRY :]
        if zlib.crc32(records) != self.records_crc:
            raise IndexCorrupt("checksum mismatch in its records")
        entries = u32s(view[: self.files * ENTRY])
        out = FullState()
        runs_of: list[bytes] = []
        at = 0
        for i in range(0, len(entries), 3):
            hash_, offset, size = entries[i], entries[i + 1], entries[i + 2]
            if offset != at or size < 8 or at + size > self.records:
                raise IndexCorrupt("its lookup entries do not cover its records in order")
            name, runs = self._parsed(bytes(records[at : at + size]), check=False)
            if zlib.crc32(name) != hash_:
                raise IndexCorrupt("a lookup entry does not hash its record's path")
            path = name.decode("utf-8", "surrogateescape")
            if path in out:
                raise IndexCorrupt("a path has two records")
            out[path] = runs
            runs_of.append(runs)
            at += size
        if at != self.records:
            raise IndexCorrupt("its records are more than its lookup entries")
        if out:
            self._check_runs(b"".join(runs_of))  # all files at once: two passes in C
        return out
