"""Every git call dasct makes goes through this module.

Git runs as `git` with tuple arguments (never a shell). Hooks run with GIT_DIR,
GIT_INDEX_FILE and friends set by git itself; those describe the repository we are
asked about, so they are kept, but made absolute because dasct may run git from
another directory.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from dasct.errors import GitError

# Make every git invocation deterministic whatever the user's config says: no pager,
# no external diff drivers or textconv, no colour, no localized messages, and the
# diff algorithm blame itself uses (git blame ignores diff.algorithm).
_BASE = (
    "git",
    "-c", "core.quotePath=false",
    "-c", "color.ui=false",
    "-c", "diff.algorithm=myers",
    "-c", "log.showSignature=false",
)
_PATH_VARS = (
    "GIT_DIR", "GIT_INDEX_FILE", "GIT_WORK_TREE", "GIT_COMMON_DIR", "GIT_OBJECT_DIRECTORY",
)


def git_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for git: the caller's, with repo paths made absolute."""
    env = dict(os.environ)
    for var in _PATH_VARS:
        value = env.get(var)
        if value and not os.path.isabs(value):
            env[var] = os.path.abspath(value)
    env["LC_ALL"] = "C"
    env["GIT_TERMINAL_PROMPT"] = "0"
    env.pop("GIT_EXTERNAL_DIFF", None)
    if extra:
        env.update(extra)
    return env


def _fail(args: Sequence[str], stderr: bytes, code: int) -> GitError:
    first = stderr.decode("utf-8", "replace").strip().splitlines()
    detail = first[0] if first else f"exit code {code}"
    shown = " ".join(args)
    return GitError(f"`git {shown}` failed: {detail}")


def run(
    *args: str,
    cwd: str | Path | None = None,
    input: bytes | None = None,
    ok_codes: tuple[int, ...] = (0,),
    env: dict[str, str] | None = None,
) -> bytes:
    """Run git and return its stdout; raise GitError on an exit code not in ok_codes."""
    try:
        proc = subprocess.run(
            (*_BASE, *args),
            cwd=cwd,
            input=input,
            capture_output=True,
            env=env or git_env(),
            check=False,
        )
    except FileNotFoundError as exc:
        raise GitError("git is not installed or not on PATH") from exc
    if proc.returncode not in ok_codes:
        raise _fail(args, proc.stderr, proc.returncode)
    return proc.stdout


def run_code(*args: str, cwd: str | Path | None = None) -> tuple[int, bytes]:
    """Run git and return (exit code, stdout) without raising on failure."""
    proc = subprocess.run(
        (*_BASE, *args), cwd=cwd, capture_output=True, env=git_env(), check=False
    )
    return proc.returncode, proc.stdout


@contextmanager
def stream(*args: str, cwd: str | Path | None = None) -> Iterator[IO[bytes]]:
    """Yield git's stdout as a binary stream, for outputs too large to hold (git log -p)."""
    proc = subprocess.Popen(
        (*_BASE, *args),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=git_env(),
        bufsize=1 << 20,
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:
        yield proc.stdout
        # Drain so that git never blocks on a full pipe if the reader stopped early.
        proc.stdout.read()
        stderr = proc.stderr.read()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    code = proc.wait()
    if code != 0:
        raise _fail(args, stderr, code)


@dataclass(frozen=True)
class Repo:
    """Where a repository lives, resolved with a single git call."""

    root: Path
    git_dir: Path
    common_dir: Path
    head: str | None  # None on an unborn branch (no commit yet)

    @property
    def state_dir(self) -> Path:
        """dasct's private directory: inside the git dir, shared by all worktrees."""
        return self.common_dir / "dasct"


def discover(cwd: str | Path | None = None) -> Repo:
    """Find the repository containing cwd (honouring GIT_DIR and friends)."""
    code, out = run_code(
        "rev-parse", "--absolute-git-dir", "--git-common-dir", "--show-toplevel",
        "--verify", "-q", "HEAD", cwd=cwd,
    )
    lines = out.decode("utf-8", "surrogateescape").splitlines()
    if len(lines) < 3:
        where = Path(cwd or os.getcwd())
        raise GitError(f"{where} is not inside a git work tree")
    git_dir = Path(lines[0])
    common = Path(lines[1])
    if not common.is_absolute():
        common = (Path(cwd or os.getcwd()) / common).resolve()
    head = lines[3] if code == 0 and len(lines) > 3 else None
    return Repo(root=Path(lines[2]), git_dir=git_dir, common_dir=common, head=head)


def rev_parse(repo: Repo, rev: str) -> str:
    """Resolve rev to a full commit sha."""
    out = run("rev-parse", "--verify", "-q", "--end-of-options", f"{rev}^{{commit}}",
              cwd=repo.root, ok_codes=(0, 1))
    sha = out.decode().strip()
    if not sha:
        raise GitError(f"unknown revision {rev!r}")
    return sha


def in_progress(repo: Repo) -> str | None:
    """The operation in progress (merge, rebase, cherry-pick, revert), if any."""
    markers = {
        "MERGE_HEAD": "merge",
        "rebase-merge": "rebase",
        "rebase-apply": "rebase",
        "CHERRY_PICK_HEAD": "cherry-pick",
        "REVERT_HEAD": "revert",
    }
    for name, what in markers.items():
        if (repo.git_dir / name).exists():
            return what
    return None


def subjects(repo: Repo, shas: Iterable[str]) -> dict[str, str]:
    """The subject line of each commit."""
    wanted = list(dict.fromkeys(shas))
    if not wanted:
        return {}
    out = run("show", "-s", "--no-notes", "--format=%H%x00%s", *wanted, "--", cwd=repo.root)
    pairs = (line.split("\0", 1) for line in out.decode("utf-8", "replace").splitlines())
    return {p[0]: p[1] for p in pairs if len(p) == 2}
