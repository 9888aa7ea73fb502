"""Snapshot files (FORMAT 4, snapfile.py) answer a question about one path by reading a
bounded part of the file, give the same answers as the snapshot they were written from,
and the history fingerprint reads packed-refs only when it changed."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dasct import cache, git, index, snapfile
from dasct import settings as dasct_settings
from dasct.origins import FullState, decode, encode
from gitrepo import GitRepo

# Two paths with one CRC-32: the record's own path tells them apart.
COLLIDING = ("plumless", "buckeroo")
assert snapfile.zlib.crc32(COLLIDING[0].encode()) == snapfile.zlib.crc32(COLLIDING[1].encode())

_paths = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0")
                 | st.sampled_from(["\udc80", "\udcff", "é", "/"]), min_size=1, max_size=12)


@st.composite
def _snapshots(draw: st.DrawFn) -> index.Snapshot:
    count = draw(st.integers(1, 700))  # past CHUNK: several checked chunks of commit ids
    commits = [f"{i:040x}" for i in range(count)]
    paths = draw(st.lists(_paths, max_size=300, unique=True))
    paths += [p for p in COLLIDING if draw(st.booleans())]
    origins = st.lists(st.integers(0, count - 1), min_size=1, max_size=30).map(tuple)
    files = FullState({p: draw(origins) for p in dict.fromkeys(paths)})
    for p in list(files)[: len(files) // 2]:
        files[p] = encode(files[p])  # some values still encoded, as a loaded state has
    links = {k: ("PROJ-1",) for k in draw(st.sets(st.integers(0, count - 1), max_size=5))}
    return index.Snapshot(commits[-1], commits, files, links, "h", "l")


def _origins(value: tuple[int, ...] | bytes) -> tuple[int, ...]:
    return decode(value) if isinstance(value, bytes) else value


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(snap=_snapshots())
def test_a_written_snapshot_reads_back_the_same(snap: index.Snapshot, tmp_path: Path) -> None:
    path = tmp_path / "s.snap"
    assert index.write_snapshot(path, snap)
    lazy = index.read_snapshot(path)
    assert (lazy.head, lazy.links, lazy.history_fp, lazy.links_fp) == (
        snap.head, snap.links, "h", "l")
    for p, value in dict.items(snap.files):
        assert lazy.origins(p) == _origins(value)
        assert lazy.line_count(p) == len(_origins(value))
        assert lazy.protected(p) == snap.protected(p)
    assert lazy.origins("not a path") == () and lazy.protected("not a path") == {}
    assert [lazy.sha(i) for i in range(len(snap.commits))] == snap.commits
    with pytest.raises(IndexError):
        lazy.sha(len(snap.commits))
    # Read whole, as scan and the replay read it: the same state.
    whole = index.read_snapshot(path)
    assert {p: _origins(v) for p, v in dict.items(whole.files)} == {
        p: _origins(v) for p, v in dict.items(snap.files)}
    assert whole.commits == snap.commits


def test_a_question_reads_a_part_that_does_not_grow_with_the_files(tmp_path: Path) -> None:
    """What a commit reads of a 100,000-file snapshot: header and head, one bucket, one
    record (snapfile.SnapFile.spans): under 20 KiB of a 3 MB file."""
    read = {}
    for files in (1_000, 100_000):
        state = FullState({f"pkg{i % 97}/mod{i}.py": encode((0,) * 50 + (1,) * 50)
                           for i in range(files)})
        snap = index.Snapshot("a" * 40, ["b" * 40, "a" * 40], state, {1: ("PROJ-1",)})
        path = tmp_path / f"{files}.snap"
        assert index.write_snapshot(path, snap)
        spans = snapfile.SnapFile(path).spans("pkg15/mod500.py")
        read[files] = sum(end - start for start, end in spans)
        assert len(spans) == 3  # head, bucket, record
        assert index.read_snapshot(path).protected("pkg15/mod500.py") == {
            n: (1, ("PROJ-1",)) for n in range(51, 101)}
    assert path.stat().st_size > 3_000_000
    # The head holds two numbers per bucket (8 bytes per BUCKET files: 16 KiB at 100,000
    # files); the rest is one bucket of about BUCKET entries and one record.
    assert read[1_000] < 2_000 and read[100_000] < 20_000


def _fixed(repo: GitRepo) -> str:
    repo.commit("initial", {"x.py": "a\nb\nc\n", "y.py": "y\nz\n"})
    return repo.commit("Fix PROJ-1", {"x.py": "a\nB\nc\n", "y.py": "y\nZ\n"})


def test_a_damaged_record_read_at_commit_time_is_rebuilt(
    repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    """A damaged part found after the head checked out (y.py's record, read only when
    asked for): one line, the right answer from a rebuild, and a valid file after."""
    head = _fixed(repo)
    r = git.discover(repo.path)
    cfg = dasct_settings.load(r)
    want = index.snapshot_at(r, cfg, head).protected("y.py")
    assert want == {2: (1, ("PROJ-1",))}
    path = index.index_dir(r) / f"{head}.snap"
    (_, _, (_, end)) = snapfile.SnapFile(path).spans("y.py")
    data = bytearray(path.read_bytes())
    data[end - 1] ^= 0x40  # the last run's count: a record that still parses
    path.write_bytes(bytes(data))
    capsys.readouterr()
    snap = index.snapshot_at(r, cfg, head)  # the head checks out: the snapshot is used
    assert snap.protected("x.py") == {2: (1, ("PROJ-1",))}
    assert capsys.readouterr().err == ""  # x.py's parts are intact
    assert snap.protected("y.py") == want
    (line,) = capsys.readouterr().err.splitlines()
    assert line == (f"dasct: discarded the cache file {path} (checksum mismatch in a "
                    f"record); rebuilding it")
    assert index.read_snapshot(path).protected("y.py") == want  # rebuilt, valid
    assert snap.sha(1) == head


def test_without_recovery_a_damaged_part_is_an_error(repo: GitRepo) -> None:
    """A base snapshot of a replay has no recovery: IndexCorrupt, which the replay turns
    into a rebuild (index._update)."""
    head = _fixed(repo)
    r = git.discover(repo.path)
    index.snapshot_at(r, dasct_settings.load(r), head)
    path = index.index_dir(r) / f"{head}.snap"
    file = snapfile.SnapFile(path)
    start, _ = file.chunk_span(0)
    data = bytearray(path.read_bytes())
    data[start] ^= 1
    path.write_bytes(bytes(data))
    snap = index.read_snapshot(path)
    assert snap.protected("x.py") == {2: (1, ("PROJ-1",))}  # its record is intact
    with pytest.raises(index.IndexCorrupt, match="checksum mismatch in its commit table"):
        snap.sha(0)
    with pytest.raises(index.IndexCorrupt):
        index.read_snapshot(path).files  # noqa: B018 -- reads everything


# The history fingerprint and packed-refs.

def _inputs(repo: GitRepo) -> bytes:
    return git.discover(repo.path).history_inputs()


def _uncached(repo: GitRepo) -> bytes:
    cache.discard(repo.path / ".git" / "dasct" / git.PACKED_CACHE)
    return _inputs(repo)


def _age(repo: GitRepo) -> None:
    """Make packed-refs old enough to be remembered (its ctime changes: a new key)."""
    old = time.time() - 60
    os.utime(repo.path / ".git" / "packed-refs", (old, old))


def test_packed_replace_refs_are_in_the_fingerprint(repo: GitRepo) -> None:
    a = repo.commit("a", {"f": "1\n"})
    b = repo.commit("b", {"f": "2\n"})
    c = repo.commit("c", {"f": "3\n"})
    plain = _inputs(repo)
    repo.git("replace", a, b)
    repo.git("pack-refs", "--all")
    assert not os.listdir(repo.path / ".git" / "refs" / "replace")
    packed = _inputs(repo)  # a fresh packed-refs: read, not remembered
    assert packed != plain and f"{b} refs/replace/{a}".encode() in packed
    stored = repo.path / ".git" / "dasct" / git.PACKED_CACHE
    assert not stored.exists()
    _age(repo)
    assert _inputs(repo) == packed and stored.exists()  # remembered now
    assert _inputs(repo) == packed
    repo.git("replace", "-f", a, c)  # loose again, then packed in place of the old line
    repo.git("pack-refs", "--all")
    assert _inputs(repo) == _uncached(repo) != packed
    repo.git("replace", "-d", a)
    assert _inputs(repo) == _uncached(repo) == plain


def test_a_remembered_stat_answers_without_reading_packed_refs(repo: GitRepo) -> None:
    """The cache is what is read while packed-refs' stat is unchanged (shown with a cache
    that says something else), and a damaged cache is discarded, not believed."""
    a = repo.commit("a", {"f": "1\n"})
    b = repo.commit("b", {"f": "2\n"})
    repo.git("replace", a, b)
    repo.git("pack-refs", "--all")
    _age(repo)
    want = _inputs(repo)
    stored = repo.path / ".git" / "dasct" / git.PACKED_CACHE
    key, lines = cache.read(stored, git.PACKED_KIND, 1)  # type: ignore[misc]
    assert cache.write(stored, [key, b"refs/replace/made-up"], git.PACKED_KIND, 1)
    assert b"made-up" in _inputs(repo)
    assert cache.write(stored, [[0, 0, 0, 0], b"refs/replace/made-up"], git.PACKED_KIND, 1)
    assert _inputs(repo) == want  # another stat: read again
    data = bytearray(stored.read_bytes())
    data[-1] ^= 1
    stored.write_bytes(bytes(data))
    assert _inputs(repo) == want
    assert lines in want


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.sampled_from(["replace", "delete", "pack", "age", "tag"]),
                      max_size=8))
def test_the_fingerprint_is_always_what_packed_refs_says(
    steps: list[str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    repo = GitRepo(tmp_path_factory.mktemp("fp") / "repo")
    shas = [repo.commit(f"c{i}", {"f": f"{i}\n"}) for i in range(3)]
    for n, step in enumerate(steps):
        if step == "replace":
            repo.git("replace", "-f", shas[0], shas[1 + n % 2])
        elif step == "delete":
            repo.git("replace", "-d", shas[0], check=False)
        elif step == "pack":
            repo.git("pack-refs", "--all")
        elif step == "tag":
            repo.git("tag", f"t{n}")
        elif (repo.path / ".git" / "packed-refs").exists():
            _age(repo)
        got = _inputs(repo)
        assert got == _uncached(repo), steps[: n + 1]


def test_fingerprint_module_constants() -> None:
    assert sys.byteorder in ("little", "big") and git.RACY_NS >= 1_000_000_000


@settings(max_examples=200, deadline=None)
@given(origins=st.lists(st.integers(0, 4), max_size=60),
       among=st.lists(st.integers(-2, 65), max_size=20), encoded=st.booleans())
def test_protected_among_lines_is_the_whole_answer_restricted(
    origins: list[int], among: list[int], encoded: bool
) -> None:
    """A change asks only about the lines it touches; the answer is exactly what asking
    about the whole file and keeping those lines gives, encoded or not."""
    state = FullState()
    if origins:
        state["f.py"] = encode(tuple(origins)) if encoded else tuple(origins)
    snap = index.Snapshot("a" * 40, [c * 40 for c in "abcde"], state,
                          {1: ("PROJ-1",), 3: ("PROJ-2", "PROJ-3")})
    wanted = sorted(set(among))
    whole = snap.protected("f.py")
    assert snap.protected("f.py", wanted) == {n: v for n, v in whole.items() if n in wanted}
