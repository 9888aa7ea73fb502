"""Every awkward repository state: no traceback ever, and the commit goes through."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dasct_run import dasct
from gitrepo import GitRepo

BASE = "".join(f"line {i}\n" for i in range(1, 7))
FIXED = BASE.replace("line 3\n", "line 3 fixed\n")


@pytest.fixture
def fixed(repo: GitRepo) -> GitRepo:
    repo.commit("initial", {"x.py": BASE})
    repo.commit("Fix PROJ-1", {"x.py": FIXED})
    return repo


def findings(repo: GitRepo, *extra: str, env: dict[str, str] | None = None) -> list[str]:
    result = dasct(repo.path, "check", "--staged", "--format", "json", *extra, env=env)
    assert result.code == 0, result.err
    assert "Traceback" not in result.err
    return [f"{f['defect']}:{f['path']}:{f['line']}" for f in result.json()["findings"]]


def test_initial_commit_has_nothing_to_touch(repo: GitRepo) -> None:
    repo.write("x.py", BASE)
    repo.git("add", "x.py")
    assert findings(repo) == []


def test_detached_head(fixed: GitRepo) -> None:
    fixed.git("checkout", "-q", "--detach")
    fixed.write("x.py", BASE)
    fixed.git("add", "x.py")
    assert findings(fixed) == ["PROJ-1:x.py:3"]


def test_merge_in_progress_checks_against_head(fixed: GitRepo) -> None:
    fixed.git("checkout", "-q", "-b", "side", "HEAD~1")
    fixed.commit("side edit", {"x.py": BASE.replace("line 3\n", "line 3 side\n")})
    fixed.git("checkout", "-q", "main")
    fixed.git("merge", "side", check=False)
    assert (fixed.path / ".git" / "MERGE_HEAD").exists()
    fixed.write("x.py", BASE.replace("line 3\n", "line 3 resolved\n"))
    fixed.git("add", "x.py")
    assert findings(fixed) == ["PROJ-1:x.py:3"]


def test_rebase_in_progress(fixed: GitRepo) -> None:
    fixed.git("checkout", "-q", "-b", "side", "HEAD~1")
    fixed.commit("side edit", {"x.py": BASE.replace("line 3\n", "line 3 side\n")})
    fixed.git("rebase", "main", check=False)
    assert (fixed.path / ".git" / "rebase-merge").exists() or (
        fixed.path / ".git" / "rebase-apply"
    ).exists()
    fixed.write("x.py", BASE.replace("line 3\n", "line 3 resolved\n"))
    fixed.git("add", "x.py")
    assert findings(fixed) == ["PROJ-1:x.py:3"]


def test_git_index_file_and_git_dir_from_the_caller(fixed: GitRepo, tmp_path: Path) -> None:
    # `git commit -a` runs the hook with GIT_INDEX_FILE pointing at a temporary index.
    other_index = tmp_path / "alt-index"
    env = {"GIT_INDEX_FILE": str(other_index)}
    fixed.git("read-tree", "HEAD", env=env)
    fixed.write("x.py", BASE)
    fixed.git("add", "x.py", env=env)
    assert findings(fixed) == []  # the real index has nothing staged
    assert findings(fixed, env=env) == ["PROJ-1:x.py:3"]
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    result = dasct(outside, "check", "--staged", "--format", "json",
                   env={**env, "GIT_DIR": str(fixed.path / ".git"),
                        "GIT_WORK_TREE": str(fixed.path)})
    assert result.code == 0 and len(result.json()["findings"]) == 1


def test_binary_files(fixed: GitRepo) -> None:
    blob = bytes(range(256)) * 4
    fixed.commit("initial binary", {"data.bin": blob})
    fixed.commit("Fix PROJ-2 in the table", {"data.bin": blob.replace(b"\x10", b"\x11")})
    fixed.write("data.bin", blob)
    fixed.git("add", "data.bin")
    assert any(f.startswith("PROJ-2:data.bin:") for f in findings(fixed))


def test_crlf_and_missing_final_newline(fixed: GitRepo) -> None:
    fixed.commit("crlf", {"w.txt": "a\r\nb\r\nc"})
    fixed.commit("Fix PROJ-3", {"w.txt": "a\r\nB\r\nc"})
    fixed.write("w.txt", "a\nB\nc\n")  # line endings and final newline only: -w ignores them
    fixed.git("add", "w.txt")
    assert findings(fixed) == []
    fixed.write("w.txt", "a\r\nb2\r\nc")
    fixed.git("add", "w.txt")
    assert findings(fixed) == ["PROJ-3:w.txt:2"]


def test_non_utf8_content_and_paths(fixed: GitRepo) -> None:
    name = "caf\xe9-\udce9.txt"  # a UTF-8 é and a raw Latin-1 byte in the same name
    raw = os.fsencode(name)
    (fixed.path / os.fsdecode(raw)).write_bytes(b"caf\xe9\nfoo\n")
    fixed.git("add", "-A")
    fixed.git("commit", "-qm", "latin1")
    (fixed.path / os.fsdecode(raw)).write_bytes(b"caf\xe9\nfoo \xff fixed\n")
    fixed.git("commit", "-qam", "Fix PROJ-4")
    (fixed.path / os.fsdecode(raw)).write_bytes(b"caf\xe9\n")
    fixed.git("add", "-A")
    assert len(findings(fixed)) == 1
    scan = dasct(fixed.path, "scan")
    assert scan.code == 0 and "PROJ-4" in scan.out


def test_symlinks_and_submodules(fixed: GitRepo, tmp_path: Path) -> None:
    sub = GitRepo(tmp_path / "sub")
    sub.commit("sub initial", {"s.txt": "s\n"})
    fixed.git("-c", "protocol.file.allow=always", "submodule", "add", "-q", str(sub.path), "vendor")
    fixed.git("commit", "-qm", "add submodule")
    os.symlink("x.py", fixed.path / "link")
    fixed.commit("Fix PROJ-5 with a link")
    sub.commit("sub next", {"s.txt": "t\n"})
    subprocess.run(("git", "-C", str(fixed.path / "vendor"), "pull", "-q"), check=True,
                   capture_output=True)
    (fixed.path / "link").unlink()
    os.symlink("elsewhere", fixed.path / "link")
    fixed.git("add", "-A")
    assert findings(fixed) == ["PROJ-5:link:1"]


def test_huge_staged_diff(fixed: GitRepo) -> None:
    big = "".join(f"row {i}\n" for i in range(200_000))
    fixed.commit("big file", {"big.txt": big})
    fixed.commit("Fix PROJ-6", {"big.txt": big.replace("row 100000\n", "row fixed\n")})
    fixed.write("big.txt", "".join(f"new {i}\n" for i in range(200_000)))
    fixed.git("add", "big.txt")
    assert findings(fixed) == ["PROJ-6:big.txt:100001"]


def test_not_a_repository(tmp_path: Path) -> None:
    result = dasct(tmp_path, "check", "--staged")
    assert result.code == 0 and "not inside a git work tree" in result.err
    assert dasct(tmp_path, "scan").code == 1


def test_the_installed_hook_warns_and_chains(fixed: GitRepo) -> None:
    hooks = fixed.path / ".git" / "hooks"
    hooks.mkdir(exist_ok=True)
    (hooks / "pre-commit").write_text("#!/bin/sh\necho previous-hook-ran\n")
    (hooks / "pre-commit").chmod(0o755)
    assert dasct(fixed.path, "install").code == 0
    fixed.write("x.py", BASE)
    proc = subprocess.run(("git", "commit", "-qam", "touch it"), cwd=fixed.path,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0
    assert "previous-hook-ran" in proc.stdout + proc.stderr
    assert "PROJ-1" in proc.stderr and "x.py:3" in proc.stderr
    assert dasct(fixed.path, "uninstall").code == 0
    assert (hooks / "pre-commit").read_text().startswith("#!/bin/sh\necho previous")


def test_install_honours_core_hooks_path(fixed: GitRepo) -> None:
    fixed.git("config", "core.hooksPath", "myhooks")
    assert dasct(fixed.path, "install", "--quiet").code == 0
    assert "DASCT-SHIM" in (fixed.path / "myhooks" / "pre-commit").read_text()
    assert sys.executable in (fixed.path / "myhooks" / "pre-commit").read_text()


def test_ci_checks_fail_loudly_where_the_hook_fails_open(fixed: GitRepo) -> None:
    fixed.write(".dasct.toml", "[check]\nstrikt = true\n")
    assert dasct(fixed.path, "check", "--staged").code == 0
    assert dasct(fixed.path, "check", "--staged", "--format", "json").code == 0
    result = dasct(fixed.path, "check", "--range", "HEAD~1..HEAD")
    assert result.code == 1 and "check.strikt" in result.err
    assert dasct(fixed.path, "check", "--commit", "HEAD").code == 1


@pytest.mark.parametrize("strict", [False, True])
def test_an_internal_error_in_the_hook_is_one_line_and_a_crash_log(
    fixed: GitRepo, tmp_path: Path, strict: bool
) -> None:
    # No input makes dasct crash any more; a fault injected at start-up (sitecustomize on
    # PYTHONPATH, inherited by the hook through git) stands for the next unknown bug.
    faults = tmp_path / "faults"
    faults.mkdir()
    (faults / "sitecustomize.py").write_text(
        "import dasct.check\n\n\ndef _boom(*args, **kwargs):\n"
        "    raise RuntimeError('injected fault')\n\n\ndasct.check.touches = _boom\n")
    if strict:
        fixed.write(".dasct.toml", "[check]\nstrict = true\n")
        fixed.git("add", ".dasct.toml")
        fixed.git("commit", "-qm", "strict")
    assert dasct(fixed.path, "install", "--quiet").code == 0
    fixed.write("x.py", BASE)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(faults), *filter(None, [os.environ.get("PYTHONPATH")])])}
    proc = subprocess.run(("git", "commit", "-qam", "touch it"), cwd=fixed.path,
                          capture_output=True, text=True, check=False, env=env)
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("dasct:")]
    assert line.startswith("dasct: internal error: RuntimeError: injected fault (details in ")
    assert "Traceback" not in proc.stderr
    crash = fixed.path / ".git" / "dasct" / "crash.log"
    assert "RuntimeError: injected fault" in crash.read_text()
    if strict:
        assert proc.returncode != 0 and "letting git go on" not in line
        assert fixed.git("log", "-1", "--format=%s").strip() == "strict"
    else:
        assert proc.returncode == 0 and line.endswith("; letting git go on")
        assert fixed.git("log", "-1", "--format=%s").strip() == "touch it"
