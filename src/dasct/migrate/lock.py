"""The environment lock: a lease file recording who migrates, from where, since when.

The lease is written whole and then linked into place (which fails if it exists, like
O_EXCL), so two runs never both hold it and a kill never leaves a half-written lock. A
run killed with SIGKILL leaves it behind; `dasct migrate unlock --force` (or
`run --break-stale-lock`) removes it only when the holder is provably gone: its pid is
dead on this host, or (a holder on another host, whose pid we cannot see) its lease
expired. A holder alive on this host is never broken, expired or not. A short flock on a
guard file serializes acquire, renew and break, so a breaker never removes a lease that a
third run took a moment earlier.

A run holds its lease through a `Keeper`: a daemon thread that renews it well before it
expires for as long as the run lives, so a step that runs for hours (a health command with
a long timeout) never lets it lapse; when the lease was taken by someone else, the keeper
says so and the run stops at its next step.

Test hook: `DASCT_TEST_LEASE_SECONDS` replaces the default lease length (4 hours), so
that a test can see a lease outlive its length; nothing else reads it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from dasct.errors import DasctError

DEFAULT_LEASE_SECONDS = 4 * 3600
LOCK_NAME = "lock"
LEASE_VAR = "DASCT_TEST_LEASE_SECONDS"


class LockError(DasctError):
    """The environment is locked by another run, or a break was refused."""


@dataclass(frozen=True)
class Lease:
    """What the lock file records."""

    owner: str
    host: str
    pid: int
    pid_start: str  # the process start time, so a recycled pid is not taken for the holder
    acquired: float
    expires: float

    def describe(self) -> str:
        """One line naming the holder."""
        since = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(self.acquired))
        return f"{self.owner} (pid {self.pid} on {self.host}, since {since})"


def _pid_start(pid: int) -> str:
    # Field 22 of /proc/PID/stat is the start time in clock ticks; "" where there is no /proc.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]


def _pid_alive(pid: int, start: str) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists; its start time still tells if it is ours
    return not start or _pid_start(pid) in ("", start)


def _provably_alive(lease: Lease) -> bool:
    # Its pid runs here and started when the holder's did: it is the holder, not a reuse.
    return (lease.host == socket.gethostname() and bool(lease.pid_start)
            and _pid_alive(lease.pid, lease.pid_start)
            and _pid_start(lease.pid) == lease.pid_start)


def default_lease_seconds() -> float:
    """How long a lease lasts before a holder on another host may be taken for gone."""
    value = os.environ.get(LEASE_VAR)
    return float(value) if value else DEFAULT_LEASE_SECONDS


@contextlib.contextmanager
def _guard(state_dir: Path) -> Iterator[None]:
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(state_dir / "lock.guard", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def read(state_dir: Path) -> Lease | None:
    """The current lease, or None when the environment is not locked."""
    try:
        data = json.loads((state_dir / LOCK_NAME).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise LockError(f"{state_dir / LOCK_NAME}: unreadable lock file ({exc})") from None
    return Lease(**data)


def _write(path: Path, lease: Lease, *, exclusive: bool) -> None:
    # The lease is complete in a temp file before it gets its name: a kill at any moment
    # leaves no lock, or a whole one, never an empty file nobody could prove stale.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, json.dumps(asdict(lease)).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        if exclusive:
            os.link(tmp, path)  # fails if the lock exists, like O_EXCL
        else:
            os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def stale_reason(lease: Lease, *, now: float | None = None) -> str | None:
    """Why the lease may be broken, or None if it may not.

    On this host the pid decides, whatever the expiry: a live holder may be in a step that
    outlasts any lease. Only a holder whose pid cannot be checked is judged by its expiry:
    one on another host, or one here whose start time is unknown (no /proc), where a
    recycled pid could otherwise pin a dead holder's lock forever.
    """
    if lease.host == socket.gethostname():
        if not _pid_alive(lease.pid, lease.pid_start):
            return f"pid {lease.pid} is no longer running on {lease.host}"
        if _provably_alive(lease):
            return None
    now = time.time() if now is None else now
    if lease.expires <= now:
        return "the lease expired"
    return None


def acquire(
    state_dir: Path, *, owner: str, lease_seconds: float | None = None
) -> Lease:
    """Take the lock or raise LockError naming the holder."""
    length = default_lease_seconds() if lease_seconds is None else lease_seconds
    now = time.time()
    pid = os.getpid()
    lease = Lease(owner, socket.gethostname(), pid, _pid_start(pid), now, now + length)
    with _guard(state_dir):
        try:
            _write(state_dir / LOCK_NAME, lease, exclusive=True)
        except FileExistsError:
            holder = read(state_dir)
            hint = ""
            if holder is not None and stale_reason(holder):
                hint = (f"; it looks stale ({stale_reason(holder)}): "
                        f"run `dasct migrate unlock --env ENV --force` to break it")
            who = holder.describe() if holder else "another run"
            raise LockError(f"environment is locked by {who}{hint}") from None
    return lease


def _same(a: Lease | None, b: Lease) -> bool:
    return a is not None and (a.host, a.pid, a.pid_start, a.acquired) == (
        b.host, b.pid, b.pid_start, b.acquired)


def renew(state_dir: Path, lease: Lease, *, lease_seconds: float | None = None) -> Lease:
    """Extend our own lease; LockError if it is no longer ours (broken or taken)."""
    length = default_lease_seconds() if lease_seconds is None else lease_seconds
    with _guard(state_dir):
        if not _same(read(state_dir), lease):
            raise LockError(f"the lock of {state_dir} was broken or taken by someone else "
                            "while this run held it; stopping")
        renewed = Lease(lease.owner, lease.host, lease.pid, lease.pid_start,
                        lease.acquired, time.time() + length)
        _write(state_dir / LOCK_NAME, renewed, exclusive=False)
    return renewed


def release(state_dir: Path, lease: Lease) -> None:
    """Remove the lock if it is still ours."""
    with _guard(state_dir):
        if _same(read(state_dir), lease):
            (state_dir / LOCK_NAME).unlink()


def break_stale(state_dir: Path, *, now: float | None = None) -> tuple[Lease, str] | None:
    """Remove a stale lease and return it with the reason; LockError if it is not stale."""
    with _guard(state_dir):
        lease = read(state_dir)
        if lease is None:
            return None
        reason = stale_reason(lease, now=now)
        if reason is None:
            raise LockError(
                f"refusing to break the lock of {lease.describe()}: "
                + ("its process is alive on this host" if _provably_alive(lease)
                   else "its lease has not expired" if lease.host == socket.gethostname()
                   else "it is on another host and its lease has not expired"))
        try:
            (state_dir / LOCK_NAME).unlink()
        except OSError as exc:  # pragma: no cover - guarded above
            if exc.errno != errno.ENOENT:
                raise
        return lease, reason


class Keeper:
    """Keeps a lease renewed from a daemon thread until stopped; remembers if it was lost.

    The thread renews every eighth of the lease, so a lease lapses only if the whole
    process stalls for most of its length. Renewal goes through `renew` (the guard flock),
    so it never races a breaker.
    """

    def __init__(self, state_dir: Path, lease: Lease, *, lease_seconds: float | None = None,
                 interval: float | None = None) -> None:
        self.state_dir = state_dir
        self._lease = lease
        self._length = default_lease_seconds() if lease_seconds is None else lease_seconds
        self._interval = self._length / 8 if interval is None else interval
        self._mutex = threading.Lock()
        self._stopped = threading.Event()
        self._lost: str | None = None
        self._thread = threading.Thread(target=self._loop, name="dasct-lease", daemon=True)

    @property
    def lease(self) -> Lease:
        """The newest lease we wrote (release needs it)."""
        with self._mutex:
            return self._lease

    def start(self) -> None:
        """Start renewing in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Stop renewing (the holder is about to release the lease)."""
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join()

    def renew(self) -> None:
        """Renew now; LockError if the lease is no longer ours."""
        with self._mutex:
            if self._lost is not None:
                raise LockError(self._lost)
            try:
                self._lease = renew(self.state_dir, self._lease, lease_seconds=self._length)
            except LockError as exc:
                self._lost = str(exc)
                raise

    def check(self) -> None:
        """LockError if the thread found the lease taken by someone else."""
        with self._mutex:
            if self._lost is not None:
                raise LockError(self._lost)

    def _loop(self) -> None:
        while not self._stopped.wait(self._interval):
            try:
                self.renew()
            except LockError:
                return  # remembered: the run stops at its next step
            except OSError:
                continue  # a full disk or a hiccup: try again before the lease runs out


@contextlib.contextmanager
def held(state_dir: Path, *, owner: str, lease_seconds: float | None = None
         ) -> Iterator[Lease]:
    """Hold the lock for the duration of a with block."""
    lease = acquire(state_dir, owner=owner, lease_seconds=lease_seconds)
    try:
        yield lease
    finally:
        release(state_dir, lease)
