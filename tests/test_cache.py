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

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dasct import cache, index
from dasct.replay import IndexCorrupt
from dasct_run import dasct
from gitrepo import GitRepo

BASE = "".join(f"line {i}\n" for i in range(1, 7))

# Runs `dasct check --staged --format json` in one process for each damaged version of a
# cache file: flip byte i (argv "flip"), or cut the file to i bytes ("cut").
DAMAGE = r"""
import contextlib, io, json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
from dasct import cache
from dasct.cli import main
path, mode, good = sys.argv[1], sys.argv[2], open(sys.argv[1], "rb").read()
kind, version = good[6:8], int.from_bytes(good[8:12], "little")
value = cache.read(path, kind, version)
results = []
for i in range(len(good)):
    bad = bytearray(good)
    if mode == "flip":
        bad[i] ^= 1 + (i * 37) % 255  # a different bit pattern at each position
    else:
        bad = bad[:i]
    with open(path, "wb") as f:
        f.write(bad)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["check", "--staged", "--format", "json"])
    try:
        rebuilt = cache.read(path, kind, version) == value  # the same value, checked again
    except (OSError, cache.Damaged):
        rebuilt = False
    results.append({"at": i, "code": code, "out": out.getvalue(), "err": err.getvalue(),
                    "rebuilt": rebuilt})
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


def damage_each_byte(repo: GitRepo, path: Path, mode: str) -> list[dict[str, object]]:
    proc = subprocess.run((sys.executable, "-c", DAMAGE, str(path), mode), cwd=repo.path,
                          capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results: list[dict[str, object]] = json.loads(proc.stdout)
    return results


def snapshot_file(repo: GitRepo) -> Path:
    (snap,) = (repo.path / ".git" / "dasct" / "index").glob("*.snap")
    return snap


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["flip", "cut"])
def test_every_damaged_byte_of_a_snapshot_is_caught_and_rebuilt(
    fixed: GitRepo, mode: str
) -> None:
    want = expected_findings(fixed)
    snap = snapshot_file(fixed)
    results = damage_each_byte(fixed, snap, mode)
    assert len(results) == snap.stat().st_size > 100
    for r in results:
        assert r["code"] == 0 and r["out"] == want, r
        assert isinstance(r["err"], str)
        (line,) = r["err"].splitlines()  # one line saying what was discarded, nothing else
        assert line.startswith(f"dasct: discarded the cache file {snap} (") and line.endswith(
            "); rebuilding it"), r
        assert r["rebuilt"], r
    assert not (fixed.path / ".git" / "dasct" / "crash.log").exists()


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["flip", "cut"])
def test_every_damaged_byte_of_the_settings_cache_is_caught(fixed: GitRepo, mode: str) -> None:
    fixed.write(".dasct.toml", '[defects]\njira_projects = ["PROJ"]\n')
    want = expected_findings(fixed)
    path = fixed.path / ".git" / "dasct" / "settings.cache"
    for r in damage_each_byte(fixed, path, mode):
        assert r["code"] == 0 and r["out"] == want, r
        assert isinstance(r["err"], str) and len(r["err"].splitlines()) == 1, r
        assert r["rebuilt"], r


def test_a_snapshot_of_the_old_format_is_replaced(fixed: GitRepo) -> None:
    want = expected_findings(fixed)
    snap = snapshot_file(fixed)
    snap.write_bytes(marshal.dumps({"format": 1, "width": 40, "commits": "0" * 2 ** 20}))
    result = dasct(fixed.path, "check", "--staged", "--format", "json")
    assert result.code == 0 and result.out == want
    assert "not a dasct cache file" in result.err
    index._load(snap)  # rebuilt in the new format


# Any payload inside a valid header (a checksum that matches, as a crafted file or a bug
# would have): loading refuses it or yields a snapshot whose every number is in range.
_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2 ** 40), 2 ** 40),
                     st.text(max_size=50), st.binary(max_size=64))
_values = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(_scalars.filter(lambda x: x is not None
                                                                  and not isinstance(x, bytes)),
                                                 inner, max_size=4)), max_leaves=12)
_runs = st.lists(st.tuples(st.integers(0, 2 ** 32 - 1), st.integers(0, 2 ** 32 - 1)),
                 min_size=1, max_size=4).map(
    lambda runs: b"".join(o.to_bytes(4, sys.byteorder) + n.to_bytes(4, sys.byteorder)
                          for o, n in runs))
_shaped = st.fixed_dictionaries({
    "head": st.sampled_from(["a" * 40, "A" * 40, "g" * 40, "a" * 39, "b" * 64]),
    "width": st.sampled_from([40, 64, 0, -1, 2 ** 40]),
    "commits": st.sampled_from(["", "a" * 40, "a" * 80, "a" * 41, "z" * 40, "a" * 64]),
    "links": st.dictionaries(st.integers(-2, 3), st.lists(st.text(max_size=8), max_size=2),
                             max_size=3),
    "files": st.dictionaries(st.text(max_size=5), _runs | st.binary(max_size=9), max_size=3),
    "history": st.text(max_size=3) | st.none(),
    "links_fp": st.text(max_size=3),
})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(payload=_values | _shaped)
def test_a_well_framed_but_wrong_payload_is_refused_or_sane(
    payload: object, tmp_path: Path
) -> None:
    path = tmp_path / "x.snap"
    assert cache.write(path, payload, index.KIND, index.FORMAT)
    try:
        snap = index._load(path)
    except IndexCorrupt:
        return
    assert len(snap.head or "") in (40, 64) and all(len(c) == len(snap.head or "")
                                                    for c in snap.commits)
    assert all(0 <= k < len(snap.commits) for k in snap.links)
    total = 0
    for p in snap.files.paths():
        total += snap.line_count(p)
        protected = snap.protected(p)
        assert all(0 <= origin < len(snap.commits) for origin, _ in protected.values())
    assert total <= index.MAX_LINES


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_damage_to_a_snapshot_is_detected(data: st.DataObject, tmp_path: Path) -> None:
    """Arbitrary overwrites and cuts, not only single bytes: never a wrong snapshot."""
    path = tmp_path / "y.snap"
    good = {"head": "c" * 40, "width": 40, "commits": "c" * 40 + "d" * 40,
            "links": {1: ["PROJ-1"]}, "files": {"x.py": (0).to_bytes(4, sys.byteorder) * 2
                                                + (1).to_bytes(4, sys.byteorder) * 2},
            "history": "", "links_fp": "0"}
    assert cache.write(path, good, index.KIND, index.FORMAT)
    raw = path.read_bytes()
    start = data.draw(st.integers(0, len(raw) - 1))
    junk = data.draw(st.binary(min_size=1, max_size=16))
    cut = data.draw(st.booleans())
    bad = raw[:start] if cut else raw[:start] + junk + raw[start + len(junk):]
    if bad == raw:
        return
    path.write_bytes(bad)
    with pytest.raises(IndexCorrupt):
        index._load(path)


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
