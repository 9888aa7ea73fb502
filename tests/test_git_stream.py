"""git.stream's read-ahead mode (what the replay reads git log through): the same lines
as a plain pipe, whatever the chunk boundaries, and no hang or leak when left early."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from dasct import catfile, git
from dasct.errors import GitError
from gitrepo import GitRepo

# Lines longer than one chunk, lines cut at chunk ends, carriage returns inside lines, and
# a last line without a newline: every way the chunks can fall.
CONTENT = (b"short\n" + b"x" * (git._ReadAhead.CHUNK * 2 + 17) + b"\n"
           + b"".join(b"line %d \r inside\n" % n for n in range(200_000)) + b"no newline")


@pytest.fixture
def blob(repo: GitRepo) -> str:
    (repo.path / "big.txt").write_bytes(CONTENT)
    repo.git("add", "big.txt")
    repo.git("commit", "-q", "-m", "big")
    return repo.git("rev-parse", "HEAD:big.txt").strip()


def test_read_ahead_gives_the_lines_a_pipe_gives(repo: GitRepo, blob: str) -> None:
    with git.stream("cat-file", "blob", blob, cwd=repo.path) as plain:
        expected = list(plain)
    # Held ahead: at most one chunk (the queue's smallest), so the thread waits on a full
    # queue again and again while the reader is slow.
    with git.stream("cat-file", "blob", blob, cwd=repo.path, ahead=1) as out:
        got = list(out)
    assert got == expected
    assert b"".join(got) == CONTENT


def test_leaving_early_or_by_an_exception_ends_git_and_the_thread(
    repo: GitRepo, blob: str
) -> None:
    threads = threading.active_count()
    fds = len(os.listdir("/proc/self/fd"))
    proc = git.stream("cat-file", "blob", blob, cwd=repo.path, ahead=1)
    with proc as out:
        assert next(iter(out)) == b"short\n"
        proc.kill()
    with pytest.raises(RuntimeError), git.stream(
        "cat-file", "blob", blob, cwd=repo.path, ahead=1
    ) as out:
        next(iter(out))
        raise RuntimeError("the reader failed")
    # Left without reading anything: the rest is drained and git's exit code checked.
    with git.stream("cat-file", "blob", blob, cwd=repo.path, ahead=1):
        pass
    assert threading.active_count() == threads
    assert len(os.listdir("/proc/self/fd")) == fds


def test_a_failing_git_still_raises(repo: GitRepo, blob: str) -> None:
    with pytest.raises(GitError, match="cat-file"), git.stream(
        "cat-file", "blob", "0" * 40, cwd=Path(repo.path), ahead=1 << 20
    ) as out:
        assert list(out) == []


def test_batches_give_what_cat_blobs_gives(repo: GitRepo, blob: str) -> None:
    repo.commit("more", {"a.txt": "a\n", "b.txt": "b\n"})
    names = [blob, "HEAD:a.txt", "HEAD:b.txt", blob]
    with catfile.Batches(repo.path) as batches:
        # Asked for more names than a pipe holds, before any answer is read: the threads
        # write and read while git answers; each batch gets its own answers, in order.
        first = batches.ask(names * 2000)
        empty = batches.ask([])
        bad = batches.ask(["HEAD:a.txt", "HEAD:missing", "HEAD"])
        after = batches.ask(["HEAD:b.txt"])
        assert first.result() == git.cat_blobs(repo.path, names)
        assert empty.result() == {}
        with pytest.raises(GitError, match="HEAD:missing is not a blob"):
            bad.result()
        assert after.result() == {"HEAD:b.txt": b"b\n"}  # in step after the failed one
    with pytest.raises(GitError, match="closed"):
        batches.ask(["HEAD:a.txt"]).result()


def test_batches_killed_unread_fail_and_leave_nothing(repo: GitRepo, blob: str) -> None:
    threads = threading.active_count()
    fds = len(os.listdir("/proc/self/fd"))
    batches = catfile.Batches(repo.path)
    unread = batches.ask([blob] * 50)
    batches.close(kill=True)
    try:
        assert unread.result() == {blob: CONTENT}  # git may have answered before it died
    except GitError as exc:
        assert "ended" in str(exc)
    catfile.Batches(repo.path).close()  # never asked: git never started
    assert threading.active_count() == threads
    assert len(os.listdir("/proc/self/fd")) == fds


def test_started_and_never_read(repo: GitRepo, blob: str) -> None:
    from dasct import replay_log

    threads = threading.active_count()
    fds = len(os.listdir("/proc/self/fd"))
    log = replay_log.sections(git.discover(repo.path), ["HEAD"])
    log.close()
    log.close()  # twice: nothing more to stop
    assert threading.active_count() == threads
    assert len(os.listdir("/proc/self/fd")) == fds
    read = replay_log.sections(git.discover(repo.path), ["HEAD"])
    assert [s.commit for s in read] == [repo.git("rev-parse", "HEAD").strip()]
    with pytest.raises(RuntimeError, match="read once"):
        list(read)
