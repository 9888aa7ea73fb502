"""Cache files (index snapshots, the settings cache) are checked before they are believed,
and a cache that cannot be written costs one line after the answer, never the answer.

The damage tests run the real check in a child process limited to 2 GiB of address space
(a runaway allocation fails there instead of swapping the machine) and with a timeout.
"""

from __future__ import annotations

import json
import marshal
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dasct import cache, index, snapfile
from dasct.origins import IndexCorrupt
from dasct.refs import valid_key
from dasct_run import dasct
from gitrepo import GitRepo

BASE = "".join(f"line {i}\n" for i in range(1, 7))

# Runs `dasct check --staged --format json` in one process for each damaged version of a
# cache file: flip byte i (argv "flip"), or cut the file to i bytes ("cut"); then, when
# argv[3] is "scan", `dasct scan` (which reads every part of a snapshot) on what is left.
DAMAGE = r"""
import contextlib, io, json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
from dasct import cache, index, snapfile
from dasct.cli import main
path, mode, scan = sys.argv[1], sys.argv[2], sys.argv[3] == "scan"
good = open(path, "rb").read()
kind, version = good[6:8], int.from_bytes(good[8:12], "little")

def value():  # everything the file holds, every part checked
    if kind == index.KIND:
        s = index.read_snapshot(path)
        return s.head, dict(s.files), s.commit_table(), s.links, s.history_fp, s.links_fp
    return cache.read(path, kind, version)

def valid():
    try:
        return value() == want
    except (OSError, cache.Damaged, index.IndexCorrupt):
        return False

def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return {"code": code, "out": out.getvalue(), "err": err.getvalue(), "valid": valid()}

want = value()
results = []
for i in range(len(good)):
    bad = bytearray(good)
    if mode == "flip":
        bad[i] ^= 1 + (i * 37) % 255  # a different bit pattern at each position
    else:
        bad = bad[:i]
    with open(path, "wb") as f:
        f.write(bad)
    result = {"at": i, "check": run("check", "--staged", "--format", "json")}
    if scan:
        result["scan"] = run("scan")
    results.append(result)
print(json.dumps(results))
"""


@pytest.fixture
def fixed(repo: GitRepo) -> GitRepo:
    repo.commit("initial", {"x.py": BASE, "y.py": "y\n"})
    repo.commit("Fix PROJ-1", {"x.py": BASE.replace("line 3\n", "line 3 fixed\n")})
    repo.write("x.py", BASE)
    repo.git("add", "x.py")
    return repo


def expected_findings(repo: GitRepo) -> str:
    result = dasct(repo.path, "check", "--staged", "--format", "json")
    assert result.code == 0 and result.err == "", result.err
    assert [f["defect"] for f in result.json()["findings"]] == ["PROJ-1"]
    return result.out


def damage_each_byte(repo: GitRepo, path: Path, mode: str, scan: bool = False
                     ) -> list[dict[str, Any]]:
    proc = subprocess.run((sys.executable, "-c", DAMAGE, str(path), mode,
                           "scan" if scan else "-"),
                          cwd=repo.path, capture_output=True, text=True, timeout=1800,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results: list[dict[str, Any]] = json.loads(proc.stdout)
    return results


def snapshot_file(repo: GitRepo) -> Path:
    (snap,) = (repo.path / ".git" / "dasct" / "index").glob("*.snap")
    return snap


def read_by_the_check(snap: Path, fix: str) -> set[int]:
    """Every byte offset of snap that the check of the staged x.py must read: header and
    head, x.py's bucket and record, the commit chunk naming the fix commit."""
    opened = index.read_snapshot(snap)
    file = snapfile.SnapFile(snap)
    spans = [*file.spans("x.py"), file.chunk_span(opened.commits.index(fix))]
    return {i for start, end in spans for i in range(start, end)}


def discarded(err: str, snap: Path) -> bool:
    return err.startswith(f"dasct: discarded the cache file {snap} (") and err.endswith(
        "); rebuilding it")


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["flip", "cut"])
def test_every_damaged_byte_of_a_snapshot_is_caught_and_rebuilt(
    fixed: GitRepo, mode: str
) -> None:
    """The check reads only x.py's parts: a damaged byte there is caught by the check;
    a damaged byte anywhere is caught by scan, which reads everything. Either way the
    answers are right, one line says what was discarded, and the file is valid after."""
    want = expected_findings(fixed)
    scan_want = dasct(fixed.path, "scan").out
    assert scan_want == "x.py:3\tPROJ-1\tcode\n"
    snap = snapshot_file(fixed)
    must = read_by_the_check(snap, fixed.git("rev-parse", "HEAD").strip())
    results = damage_each_byte(fixed, snap, mode, scan=True)
    assert len(results) == snap.stat().st_size > 100
    unread = 0
    for r in results:
        check, scan = r["check"], r["scan"]
        assert check["code"] == 0 and check["out"] == want, r
        assert scan["code"] == 0 and scan["out"] == scan_want, r
        lines = check["err"].splitlines() + scan["err"].splitlines()
        (line,) = lines  # one line saying what was discarded, by one of them, nothing else
        assert discarded(line, snap), r
        if check["err"]:
            assert check["valid"], r  # rebuilt by the check
        else:
            assert r["at"] not in must and mode == "flip", r  # a byte the check never read
            unread += 1
        assert scan["valid"], r
    # The check reads a part of the file, not all of it (y.py's record, for one).
    assert (unread > 0) == (mode == "flip")
    assert not (fixed.path / ".git" / "dasct" / "crash.log").exists()


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["flip", "cut"])
def test_every_damaged_byte_of_the_settings_cache_is_caught(fixed: GitRepo, mode: str) -> None:
    fixed.write(".dasct.toml", '[defects]\njira_projects = ["PROJ"]\n')
    want = expected_findings(fixed)
    path = fixed.path / ".git" / "dasct" / "settings.cache"
    for r in damage_each_byte(fixed, path, mode):
        check = r["check"]
        assert check["code"] == 0 and check["out"] == want, r
        assert isinstance(check["err"], str) and len(check["err"].splitlines()) == 1, r
        assert check["valid"], r


def test_a_snapshot_of_the_old_format_is_replaced(fixed: GitRepo) -> None:
    want = expected_findings(fixed)
    snap = snapshot_file(fixed)
    snap.write_bytes(marshal.dumps({"format": 1, "width": 40, "commits": "0" * 2 ** 20}))
    result = dasct(fixed.path, "check", "--staged", "--format", "json")
    assert result.code == 0 and result.out == want
    assert "not a dasct cache file" in result.err
    index.read_snapshot(snap)  # rebuilt in the new format


def test_a_snapshot_of_format_3_is_replaced(fixed: GitRepo) -> None:
    """Format 3 (one checked marshal payload) is read as damaged and rebuilt in the
    current format."""
    want = expected_findings(fixed)
    snap = snapshot_file(fixed)
    good = index.read_snapshot(snap)
    old = {"head": good.head, "commits": good.commit_table(), "width": 40,
           "links": {k: list(v) for k, v in good.links.items()}, "files": dict(good.files),
           "history": good.history_fp, "links_fp": good.links_fp}
    assert cache.write(snap, old, index.KIND, 3)
    result = dasct(fixed.path, "check", "--staged", "--format", "json")
    assert result.code == 0 and result.out == want
    assert f"(format 3, this dasct reads {index.FORMAT}); rebuilding it" in result.err
    assert index.read_snapshot(snap).commit_table() == good.commit_table()


def _runs(pairs: list[tuple[int, int]]) -> bytes:
    return b"".join(o.to_bytes(4, sys.byteorder) + n.to_bytes(4, sys.byteorder)
                    for o, n in pairs)


def _good_parts() -> list[bytes]:
    return snapfile.parts("c" * 40, "c" * 40 + "d" * 40, {1: ("PROJ-1",)},
                          {"x.py": _runs([(0, 2), (1, 2)]), "y.py": (0, 0, 1)}, "", "0")


QUESTIONS = (lambda s: s.line_count("x.py"), lambda s: s.protected("x.py"),
             lambda s: s.origins("y.py"), lambda s: s.protected("nothing.py"),
             lambda s: s.sha(0), lambda s: s.sha(1))


def lazy_answers(snap: index.Snapshot) -> tuple[object, ...]:
    return tuple(question(snap) for question in QUESTIONS)


def assert_refused_or_right(path: Path, want: tuple[object, ...]) -> None:
    """Each question on its own, on a freshly opened file: refused, or the right answer."""
    for question, right in zip(QUESTIONS, want, strict=True):
        try:
            answer = question(index.read_snapshot(path))
        except IndexCorrupt:
            continue
        assert answer == right


def read_whole(path: Path) -> tuple[object, ...]:
    """Everything in a snapshot file, read whole (as scan and the replay read it)."""
    snap = index.read_snapshot(path)
    return snap.head, dict(snap.files), snap.commit_table(), snap.links


def read_everything(path: Path) -> tuple[object, ...]:
    """Every answer a snapshot file gives, lazily and in full."""
    return lazy_answers(index.read_snapshot(path)), *read_whole(path)


# Any head inside a valid frame (a checksum that matches, as a crafted file or a bug
# would have), over a real body or junk: loading refuses it or yields a snapshot whose
# every number is in range.
_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2 ** 40), 2 ** 40),
                     st.text(max_size=50), st.binary(max_size=64))
_values = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(_scalars.filter(lambda x: x is not None
                                                                  and not isinstance(x, bytes)),
                                                 inner, max_size=4)), max_leaves=12)
_numbers = st.lists(st.integers(0, 2 ** 32 - 1), max_size=4).map(
    lambda xs: b"".join(x.to_bytes(4, sys.byteorder) for x in xs))
_changes = st.dictionaries(st.sampled_from(
    ["head", "width", "count", "link_origins", "link_counts", "link_keys", "history",
     "links_fp", "order", "files", "bits",
     "firsts", "crcs", "chunks", "records", "records_crc"]),
    st.sampled_from(["a" * 40, "A" * 40, "g" * 40, "a" * 39, "b" * 64, 40, 64, 0, -1,
                     2 ** 40, 1, 2, 3, 16, "little", "big", None, "", {0: ["PROJ-1"]},
                     {5: ["PROJ-1"]}, "PROJ-1\0PROJ-2", "PROJ-1\0", "\0", "bad\nkey",
                     "x" * 101, "PROJ-2"]) | _numbers | _values,
    max_size=3)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(changes=_changes, junk=st.none() | st.binary(max_size=200), whole=st.none() | _values)
def test_a_well_framed_but_wrong_snapshot_is_refused_or_sane(
    changes: dict[str, object], junk: bytes | None, whole: object, tmp_path: Path
) -> None:
    _header, head, *body = _good_parts()
    value = marshal.loads(head)
    value.update(changes)
    rest = b"".join(body) if junk is None else junk
    path = tmp_path / "x.snap"
    framed = cache.frame(value if whole is None else whole, index.KIND, index.FORMAT,
                         len(rest))
    assert cache.write_parts(path, [*framed, rest])
    try:
        snap = index.read_snapshot(path)
        read_everything(path)
    except IndexCorrupt:
        return
    assert len(snap.head or "") in (40, 64) and all(len(c) == len(snap.head or "")
                                                    for c in snap.commits)
    assert all(0 <= k < len(snap.commits) for k in snap.links)
    assert all(keys and all(valid_key(k) for k in keys) for keys in snap.links.values())
    total = 0
    for p in snap.files.paths():
        total += snap.line_count(p)
        protected = snap.protected(p)
        assert all(0 <= origin < len(snap.commits) for origin, _ in protected.values())
    assert total <= index.MAX_LINES


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_damage_to_a_snapshot_is_detected(data: st.DataObject, tmp_path: Path) -> None:
    """Arbitrary overwrites and cuts, not only single bytes: each lazy question is either
    refused or answered as undamaged, and reading everything always refuses."""
    path = tmp_path / "y.snap"
    assert cache.write_parts(path, _good_parts())
    want = read_everything(path)
    assert want[0] == (4, {3: (1, ("PROJ-1",)), 4: (1, ("PROJ-1",))}, (0, 0, 1), {},
                       "c" * 40, "d" * 40)
    raw = path.read_bytes()
    start = data.draw(st.integers(0, len(raw) - 1))
    junk = data.draw(st.binary(min_size=1, max_size=16))
    cut = data.draw(st.booleans())
    bad = raw[:start] if cut else raw[:start] + junk + raw[start + len(junk):]
    if bad == raw:
        return
    path.write_bytes(bad)
    assert_refused_or_right(path, want[0])  # type: ignore[arg-type]
    with pytest.raises(IndexCorrupt):
        read_whole(path)


@pytest.mark.parametrize("pattern", [0x01, 0x80, 0xFF])
def test_every_flipped_byte_of_a_snapshot_file_is_refused_read_whole(
    pattern: int, tmp_path: Path
) -> None:
    """Each byte, in each of three patterns: a whole read refuses it, and each lazy
    question is refused or answered as undamaged (a run's count 2 flipped to 3 parses:
    only the checksums tell)."""
    path = tmp_path / "z.snap"
    assert cache.write_parts(path, _good_parts())
    want = lazy_answers(index.read_snapshot(path))
    raw = path.read_bytes()
    for i in range(len(raw)):
        bad = bytearray(raw)
        bad[i] ^= pattern
        path.write_bytes(bytes(bad))
        with pytest.raises(IndexCorrupt):
            read_whole(path)
        assert_refused_or_right(path, want)


# A cache that cannot be written: the findings first, then one line; scan and index answer.

def assert_answers_without_saving(repo: GitRepo, wrapper: tuple[str, ...] = ()) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run((*wrapper, sys.executable, "-m", "dasct", *args), cwd=repo.path,
                              capture_output=True, text=True, check=False)

    check = run("check", "--staged")
    assert check.returncode == 0
    assert "PROJ-1" in check.stdout and "x.py:3" in check.stdout  # the findings, first
    (line,) = check.stderr.splitlines()
    assert line.startswith("dasct: could not save the cache file ") and "internal" not in line
    strict = run("check", "--staged", "--strict")
    assert strict.returncode == 1 and "PROJ-1" in strict.stdout  # a touch, not an error
    scan = run("scan")
    assert scan.returncode == 0 and scan.stdout == "x.py:3\tPROJ-1\tcode\n"
    assert len(scan.stderr.splitlines()) == 1
    report = run("index", "--format", "json")
    assert report.returncode == 0 and json.loads(report.stdout)["protected_lines"] == 1
    assert json.loads(report.stdout)["saved"] is False


def test_a_file_where_the_cache_dir_should_be(fixed: GitRepo) -> None:
    dasct_dir = fixed.path / ".git" / "dasct"
    shutil.rmtree(dasct_dir, ignore_errors=True)
    dasct_dir.write_text("not a directory")
    assert_answers_without_saving(fixed)


def _private_mount(script: str) -> tuple[str, ...]:
    """A wrapper running a command in its own mount namespace after `script` (mounts that
    nobody else sees); the test is skipped where that is not allowed."""
    probe = subprocess.run(("unshare", "-m", "sh", "-c", "mount -t tmpfs none /mnt"),
                           capture_output=True, check=False)
    if shutil.which("unshare") is None or probe.returncode != 0:
        pytest.skip("needs a private mount namespace (unshare -m, as root)")
    return ("unshare", "-m", "sh", "-c", f'{script} && exec "$@"', "sh")


def test_a_read_only_cache_dir(fixed: GitRepo) -> None:
    # Root ignores permission bits, so a read-only bind mount (EROFS) is the honest test.
    dasct_dir = fixed.path / ".git" / "dasct"
    dasct_dir.mkdir(exist_ok=True)
    ro = _private_mount(f"mount --bind {dasct_dir} {dasct_dir} && "
                        f"mount -o remount,bind,ro {dasct_dir}")
    assert_answers_without_saving(fixed, ro)


def test_a_full_disk(fixed: GitRepo) -> None:
    dasct_dir = fixed.path / ".git" / "dasct"
    dasct_dir.mkdir(exist_ok=True)
    full = _private_mount(f"mount -t tmpfs -o size=4k none {dasct_dir} && "
                          f"head -c 4096 /dev/zero > {dasct_dir}/filler || true")
    assert_answers_without_saving(fixed, full)
    assert os.listdir(dasct_dir) == []  # outside the namespace nothing was written
