"""Keep the index at HEAD in the background, so that a commit never waits for a build.

The post-checkout, post-merge, post-rewrite and post-commit shims call `dasct refresh
--background`: it forks a detached, niced child and returns at once, so git never waits.
The child takes a per-repository lock without waiting (a second refresh while one runs
leaves at once: the running one re-reads HEAD when it is done and catches up), brings the
index to HEAD, and repeats while HEAD keeps moving (a rebase moves it many times). Then,
with the lock released, it keeps the line kinds of the files the new HEAD changed
(kindcache.py), which a warning at commit time reads.

A detached child has no terminal to print to. A failure is written as one line to
`refresh.error` in dasct's state directory and printed once, by the next refresh shim
(before it detaches) or `dasct refresh` in the foreground. Nobody watches it either: it runs
under a CPU limit (`[check] refresh_cpu_seconds`, default 600 s), enforced by the kernel on
a worker process that a supervisor waits for: a slow defect pattern or a huge history
cannot burn a core unseen, and the stop is recorded like a failure however the worker ended.
Snapshots are written whole or not at all, so a stopped worker leaves nothing half-written.

A command that needs the index at HEAD while a refresh is bringing it there (a commit
right after a pull) waits for that refresh, within the commit-time budget,
instead of replaying the same commits a second time beside it (`wait_running`).
"""

from __future__ import annotations

import os
import sys
import time

from dasct import git

# pathlib (and the re it imports) only for typing: imported at the top it loaded before
# the commit-time check starts `git diff`, delaying it by ~12 ms; git.discover imports it
# once the diff runs, beside it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

    from dasct.settings import Settings
    from dasct.snapshot import Snapshot

LOCK = "refresh.lock"
ERROR = "refresh.error"
NICE = 10
# A rebase of many commits fires a hook per commit: stop after this many catch-up rounds
# (each is an incremental update of the commits since the last round).
MAX_ROUNDS = 50
POLL = 0.01  # seconds between looks at a running refresh's lock
_holding = False  # this process runs the refresh: never wait for itself


def _head(repo: git.Repo) -> str | None:
    code, out = git.run_code("rev-parse", "--verify", "-q", "HEAD", cwd=repo.root)
    return out.decode().strip() or None if code == 0 else None


def update(repo: git.Repo) -> tuple[Snapshot, Settings] | None:
    """Bring the index to HEAD, and again while HEAD moved meanwhile; the last snapshot
    made, with its settings (None: no HEAD)."""
    from dasct import index, settings

    rounds = 0
    done: str | None = None
    last: tuple[Snapshot, Settings] | None = None
    while rounds < MAX_ROUNDS:
        head = _head(repo)
        if head is None or head == done:
            break
        cfg = settings.load(repo)
        last = index.snapshot_at(repo, cfg, head), cfg
        done = head
        rounds += 1
    if done is not None:
        _record(repo)
    return last


def _record(repo: git.Repo) -> None:
    """`[qa] record_post_commit`: the commits since the last recorded one become
    revalidation requests in the local ledger (CI pushes it; docs/qa.md)."""
    from dasct import config

    cfg = config.load(repo.root)
    if cfg.qa.record_post_commit:
        from dasct import qarecord, settings

        qarecord.record_locally(repo, cfg, settings.load(repo))


def locked_update(repo: git.Repo, *, wait: bool) -> bool:
    """The update under the repository's refresh lock; False when another refresh holds it
    and wait is false (that one re-reads HEAD when it is done). A failure is recorded for
    take_error, not raised."""
    import fcntl

    repo.state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(repo.state_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        global _holding
        _holding = True
        last = None
        try:
            last = update(repo)
            (repo.state_dir / ERROR).unlink(missing_ok=True)
        except Exception as exc:
            _record_error(repo.state_dir, exc)
        finally:
            _holding = False
    finally:
        os.close(fd)
    if last is not None:
        # The line kinds of what the new HEAD changed (kindcache.py), once the lock is
        # released: a commit waiting for the refresh (wait_running) waits for the index,
        # not for this.
        from dasct import kindcache

        try:
            kindcache.after_refresh(repo, *last)
        except Exception as exc:
            _record_error(repo.state_dir, exc)
    return True


def wait_running(repo: git.Repo, seconds: float) -> bool:
    """Wait up to seconds for a refresh that another process is running; True when one
    was running and has finished (its snapshot is there to read), False at once when none
    runs, and False when it still runs after seconds (the caller replays on its own)."""
    import fcntl

    if _holding:
        return False
    try:
        fd = os.open(repo.state_dir / LOCK, os.O_RDONLY)
    except OSError:
        return False  # no refresh ever ran here
    try:
        deadline = time.monotonic() + seconds
        waited = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # free: nobody refreshes
                return waited
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return False
                waited = True
                time.sleep(POLL)
    finally:
        os.close(fd)  # releases the shared lock at once


def _record_error(state_dir: Path, exc: BaseException) -> None:
    from dasct.redact import redact  # a sink like any other (docs/security.md)

    line = redact(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {type(exc).__name__}: {exc}")
    try:
        (state_dir / ERROR).write_text(line.replace("\n", " ") + "\n", encoding="utf-8")
    except OSError:
        pass


def take_error(repo: git.Repo) -> str | None:
    """The last background failure, once: reading it clears it."""
    path = repo.state_dir / ERROR
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip()
        path.unlink()
    except OSError:
        return None
    return text or None


def in_background(repo: git.Repo) -> None:
    """Fork a detached, niced child that runs the locked update; return at once."""
    sys.stdout.flush()
    sys.stderr.flush()
    child = os.fork()
    if child != 0:
        os.waitpid(child, 0)  # the first child exits at once, leaving no zombie
        return
    # The child: a session of its own (a terminal's hang-up or Ctrl-C does not reach it),
    # no inherited terminal, and git's per-command variables gone, since the git that
    # ran the hook (and its temporary index) may be gone by the time this runs.
    try:
        os.setsid()
        if os.fork() != 0:
            os._exit(0)
        os.nice(NICE)
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.environ.pop("GIT_INDEX_FILE", None)
        _supervised(repo)
    except BaseException:
        pass
    os._exit(0)


def _cpu_limit(repo: git.Repo) -> int:
    from dasct import config

    try:
        return config.load(repo.root).check.refresh_cpu_seconds
    except Exception:  # a bad config is the worker's to report, with its reason
        return 0


def _supervised(repo: git.Repo) -> None:
    """Run the locked update in a worker held to the CPU limit; record the limit's stop."""
    import resource
    import signal

    seconds = _cpu_limit(repo)
    if not seconds:
        locked_update(repo, wait=False)
        return
    worker = os.fork()
    if worker == 0:
        try:
            # The soft limit sends SIGXCPU (its default action ends the process), the hard
            # one a second later SIGKILL; git children inherit the limit, each on its own.
            resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 1))
            locked_update(repo, wait=False)
        except BaseException:
            pass
        os._exit(0)
    _, status, used = os.wait4(worker, 0)
    if not os.WIFSIGNALED(status):
        return
    # The worker and the git children it reaped; the limit is on each process alone.
    cpu = used.ru_utime + used.ru_stime
    if os.WTERMSIG(status) in (signal.SIGXCPU, signal.SIGKILL) and cpu >= seconds - 0.5:
        _record_error(repo.state_dir, RefreshStopped(
            f"the background refresh was stopped after {seconds} s of CPU "
            "([check] refresh_cpu_seconds); a defect pattern may be slow, or the history "
            "large: run `dasct refresh` in the foreground"))
    else:
        _record_error(repo.state_dir, RefreshStopped(
            f"the background refresh was killed by signal {os.WTERMSIG(status)} "
            f"after {cpu:.1f} s of CPU"))


class RefreshStopped(Exception):
    """The detached refresh used up its CPU limit."""
