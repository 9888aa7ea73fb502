"""The one notification interface: a Notification, the Transport protocol, a durable outbox.

Every notification is first written to the outbox (SQLite in WAL mode in a state
directory), then delivered through a transport; a transport that fails leaves the row
waiting with its error and a next try, so nothing is lost. Delivery is at least once:
a process killed mid-send retries that notification once its lease expires. A request
may carry an idempotency key: the outbox holds one row per key, and a transport that is
idempotent by the same key (the trackers) turns "at least once" into "once". The default
transport appends to a local JSONL file and needs no server; the trackers plug in through
dasct.trackers.transport.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from dasct import redact
from dasct.durable import append_line
from dasct.errors import DasctError

OUTBOX = "outbox.sqlite"
DELIVERED = "notifications.jsonl"
# What the migration engine sends.
NOTHING_TO_MIGRATE = "nothing-to-migrate"
MOVED = "moved"
ROLLED_BACK = "rolled-back"
ESCALATION = "escalation"
HELD = "held"
WITHDRAWN = "withdrawn"
# What the QA loop sends to the trackers (dasct.trackers.transport).
REVALIDATION = "revalidation"
REGRESSION = "regression"
# What promotion and the warranty send (dasct.migrate.promotion, customer, warranty).
PROMOTED = "promoted"
REJECTED = "rejected"
CUSTOMER_SIGNOFF = "customer-signoff"
WARRANTY = "warranty"
WARRANTY_CLAIM = "warranty-claim"
KINDS = (NOTHING_TO_MIGRATE, MOVED, ROLLED_BACK, ESCALATION, HELD, WITHDRAWN,
         REVALIDATION, REGRESSION, PROMOTED, REJECTED, CUSTOMER_SIGNOFF, WARRANTY,
         WARRANTY_CLAIM)
_KIND = re.compile(r"[a-z][a-z0-9-]{0,63}")
# A key is an identifier the caller derives from the request (qa.ticket_key), not text.
_KEY = re.compile(r"[\x21-\x7e]{1,200}")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_try REAL NOT NULL,
    last_error TEXT,
    delivered TEXT,
    key TEXT
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (delivered, next_try);
"""
# After the migration of an outbox written before keys existed (see Outbox._migrate).
_KEY_INDEX = "CREATE UNIQUE INDEX IF NOT EXISTS outbox_key ON outbox (key) WHERE key IS NOT NULL"
# A wait a transport asks for (RetryLater.seconds) beyond this is taken as this: a bogus
# Retry-After must not park a request for years.
_MAX_ASKED_WAIT = 30 * 24 * 3600.0
# With a settle hook, outcomes are written at least this often (seconds): well inside a
# row's lease, so no slow tracker's batch outlives the claim of its first row.
SETTLE_SECONDS = 20.0


class NotifyError(DasctError):
    """A notification that cannot be queued (bad kind, unwritable outbox)."""


@dataclass(frozen=True)
class Notification:
    """What to tell whom: kind (e.g. "moved"), subject, body, recipients, environment, data."""

    kind: str
    subject: str
    body: str
    recipients: tuple[str, ...] = ()
    environment: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """The notification as one line of JSON, redacted (dasct.redact): the form the
        outbox stores and transports deliver. Data values that are not JSON become str."""
        return json.dumps(
            redact.scrub({
                "kind": self.kind, "subject": self.subject, "body": self.body,
                "recipients": list(self.recipients), "environment": self.environment,
                "data": json.loads(json.dumps(dict(self.data), default=str)),
            }, keep=("kind", "environment")),
            sort_keys=True, ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str) -> Notification:
        """The inverse of to_json."""
        d = json.loads(text)
        return cls(
            kind=d["kind"], subject=d["subject"], body=d["body"],
            recipients=tuple(d["recipients"]), environment=d["environment"], data=d["data"],
        )


class Transport(Protocol):
    """Delivers one notification, or raises; the outbox retries on any exception."""

    def send(self, notification: Notification) -> None: ...


class LocalTransport:
    """The embedded default: append each notification to a JSONL file, fsynced."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def send(self, notification: Notification) -> None:
        """Append one line: the notification plus the time it was delivered."""
        record = json.loads(notification.to_json())
        record["delivered"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        line = (json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n").encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        append_line(self.path, line)


@dataclass(frozen=True)
class Waiting:
    """A notification in the outbox: waiting() lists those not delivered yet, find() any."""

    id: int
    notification: Notification
    attempts: int
    next_try: float  # epoch seconds
    last_error: str | None
    key: str | None = None
    delivered: str | None = None  # ISO 8601 time of delivery, None while it waits


@dataclass(frozen=True)
class Report:
    """What one deliver() run did."""

    delivered: int
    failed: int
    waiting: int  # still undelivered after the run, due or not


def _one_line(exc: BaseException, limit: int = 500) -> str:
    # dasct's own errors (TrackerError, CredentialsRefused...) are written as the one line
    # a user reads; anything else is named by its type, which is often the whole clue.
    text = str(exc) if isinstance(exc, DasctError) else f"{type(exc).__name__}: {exc}"
    # A transport's error may quote a URL or header carrying its token.
    text = redact.redact(text).replace("\r", " ").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _asked_wait(exc: BaseException) -> float:
    # Duck-typed on RetryLater.seconds: this module knows no tracker (it is imported by
    # the migration engine, which has none).
    seconds = getattr(exc, "seconds", None)
    # NaN fails `> 0`, and a bool is not a wait.
    if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and seconds > 0:
        return float(min(seconds, _MAX_ASKED_WAIT))
    return 0.0


class Outbox:
    """The durable outbox of one state directory; safe to use from several processes."""

    def __init__(
        self,
        state_dir: Path,
        *,
        base_delay: float = 60.0,
        max_delay: float = 6 * 3600.0,
        lease: float = 300.0,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / OUTBOX
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.lease = lease  # how long a sender owns a row before others may retry it

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise NotifyError(f"{self.path}: cannot open the outbox: {exc}") from None
        with closing(conn):
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                # FULL: a notification is durable once enqueue() returns, even on power loss.
                conn.execute("PRAGMA synchronous=FULL")
                conn.executescript(_SCHEMA)
                self._migrate(conn)
            except sqlite3.Error as exc:
                raise NotifyError(f"{self.path}: cannot open the outbox: {exc}") from None
            yield conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        # Outboxes written before idempotency keys have no key column: add it in place.
        # Under the write lock, re-checked, so two processes opening an old file at once
        # do not both ALTER it.
        if not _has_key_column(conn):
            conn.execute("BEGIN IMMEDIATE")
            try:
                if not _has_key_column(conn):
                    conn.execute("ALTER TABLE outbox ADD COLUMN key TEXT")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        conn.execute(_KEY_INDEX)

    def backoff(self, attempts: int) -> float:
        """Seconds to wait after the given number of failed attempts."""
        return float(min(self.max_delay, self.base_delay * 2 ** max(0, min(attempts - 1, 40))))

    def enqueue(
        self, notification: Notification, *, key: str | None = None, now: float | None = None
    ) -> int:
        """Store a notification for delivery; return its outbox id.

        With a key already in the outbox (delivered or not) nothing is added and the id of
        that row is returned: the same request queued twice is sent once.
        """
        return self.enqueue_many([(notification, key)], now=now)[0]

    def enqueue_many(
        self, items: Iterable[tuple[Notification, str | None]], *, now: float | None = None
    ) -> list[int]:
        """enqueue() for many notifications (each with its key or None) in one
        transaction: one durable write for a thousand tickets, not a thousand. Every item
        is checked before anything is stored."""
        rows: list[tuple[str, str, str | None]] = []
        for notification, key in items:
            if not _KIND.fullmatch(notification.kind):
                raise NotifyError(f"not a notification kind: {notification.kind!r}")
            if key is not None and not _KEY.fullmatch(key):
                raise NotifyError(f"not an idempotency key (1-200 printable ASCII "
                                  f"characters, no spaces): {key!r}")
            if key is not None and redact.redact(key) != key:
                # Stored as it is (redacting it would change it with the environment): a
                # key must never be where a secret could hide.
                raise NotifyError("not an idempotency key: it holds a secret or a URL "
                                  "password")
            rows.append((notification.kind, notification.to_json(), key))
        if not rows:
            return []
        when = time.time() if now is None else now
        ids: list[int] = []
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                for kind, payload, key in rows:
                    cur = db.execute(
                        "INSERT INTO outbox (created, kind, payload, next_try, key) "
                        "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                        (_iso(when), kind, payload, when, key),
                    )
                    if cur.rowcount == 1:
                        assert cur.lastrowid is not None
                        ids.append(cur.lastrowid)
                        continue
                    # Only the key is unique, and rows are never deleted: the holder is
                    # there.
                    (row_id,) = db.execute("SELECT id FROM outbox WHERE key = ?",
                                           (key,)).fetchone()
                    ids.append(int(row_id))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return ids

    def find(self, key: str) -> Waiting | None:
        """The notification queued under key, delivered or not; None if there is none."""
        with self._db() as db:
            row = db.execute(
                f"SELECT {_COLUMNS} FROM outbox WHERE key = ?", (key,)
            ).fetchone()
        return None if row is None else _row(row)

    def delivered(self, key: str) -> bool:
        """True when the notification queued under key was delivered."""
        found = self.find(key)
        return found is not None and found.delivered is not None

    def _claim(self, db: sqlite3.Connection, now: float) -> tuple[int, str, int] | None:
        # BEGIN IMMEDIATE takes the write lock before reading, so two senders never
        # claim the same row.
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute(
                "SELECT id, payload, attempts FROM outbox WHERE delivered IS NULL "
                "AND next_try <= ? ORDER BY next_try, id LIMIT 1",
                (now,),
            ).fetchone()
            if row is not None:
                db.execute("UPDATE outbox SET next_try = ? WHERE id = ?", (now + self.lease,
                                                                          row[0]))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return None if row is None else (int(row[0]), str(row[1]), int(row[2]))

    def deliver(
        self, transport: Transport, *, now: float | None = None, limit: int | None = None,
        settle: Callable[[], None] | None = None, batch: int = 1,
    ) -> Report:
        """Send every due notification through transport; failures wait for a later try.

        With settle, outcomes are written `batch` at a time (or after SETTLE_SECONDS),
        each time after settle() returned: the caller stores what the sends produced (the
        QA loop: the tickets filed, in one ledger commit) before the rows are marked
        delivered. A process killed in between leaves its rows claimed, not delivered:
        they are sent again once their lease expires, and an idempotent transport finds
        what it already made."""
        delivered = failed = 0
        pending: list[tuple[str, tuple[Any, ...]]] = []  # (SQL, parameters), in order
        started = time.monotonic()
        with self._db() as db:

            def write_pending() -> None:
                nonlocal started
                if not pending:
                    return
                if settle is not None:
                    settle()
                db.execute("PRAGMA synchronous=FULL")
                db.execute("BEGIN IMMEDIATE")
                try:
                    for sql, params in pending:
                        db.execute(sql, params)
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                pending.clear()
                started = time.monotonic()
                db.execute("PRAGMA synchronous=NORMAL")

            # A claim is only a lease: one lost to a power cut makes its row due again
            # sooner, which an at-least-once outbox allows. It need not wait for the disk
            # as an enqueue or an outcome does (FULL, in write_pending).
            db.execute("PRAGMA synchronous=NORMAL")
            while limit is None or delivered + failed < limit:
                when = time.time() if now is None else now
                claimed = self._claim(db, when)
                if claimed is None:
                    break
                row_id, payload, attempts = claimed
                try:
                    transport.send(Notification.from_json(payload))
                except Exception as exc:
                    failed += 1
                    # A transport that was told when to come back (HTTP 429 Retry-After)
                    # waits at least that long, and the backoff still grows.
                    wait = max(self.backoff(attempts + 1), _asked_wait(exc))
                    pending.append((
                        "UPDATE outbox SET attempts = ?, next_try = ?, last_error = ? "
                        "WHERE id = ?", (attempts + 1, when + wait, _one_line(exc), row_id)))
                else:
                    delivered += 1
                    pending.append((
                        "UPDATE outbox SET attempts = ?, delivered = ?, last_error = NULL "
                        "WHERE id = ?",
                        (attempts + 1, _iso(time.time() if now is None else now), row_id)))
                if (settle is None or len(pending) >= batch
                        or time.monotonic() - started >= SETTLE_SECONDS):
                    write_pending()
            write_pending()
            (waiting,) = db.execute(
                "SELECT count(*) FROM outbox WHERE delivered IS NULL"
            ).fetchone()
        return Report(delivered=delivered, failed=failed, waiting=int(waiting))

    def waiting(self) -> list[Waiting]:
        """Every notification not delivered yet, oldest first."""
        with self._db() as db:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM outbox WHERE delivered IS NULL ORDER BY id"
            ).fetchall()
        return [_row(r) for r in rows]


_COLUMNS = "id, payload, attempts, next_try, last_error, key, delivered"


def _row(r: tuple[Any, ...]) -> Waiting:
    return Waiting(int(r[0]), Notification.from_json(r[1]), int(r[2]), float(r[3]), r[4],
                   r[5], r[6])


def _has_key_column(conn: sqlite3.Connection) -> bool:
    return any(col[1] == "key" for col in conn.execute("PRAGMA table_info(outbox)"))


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds")


def local_transport(state_dir: Path) -> LocalTransport:
    """The default transport of a state directory: notifications.jsonl beside the outbox."""
    return LocalTransport(Path(state_dir) / DELIVERED)


def enqueue(state_dir: Path, notification: Notification, *, key: str | None = None) -> int:
    """Queue a notification durably in the outbox of state_dir; return its id (with a key
    already queued: that row's id, and nothing is added)."""
    return Outbox(state_dir).enqueue(notification, key=key)


def deliver(state_dir: Path, transport: Transport | None = None) -> Report:
    """Deliver what is due in the outbox of state_dir (default: the local transport)."""
    return Outbox(state_dir).deliver(transport or local_transport(state_dir))


def notify(
    state_dir: Path, notification: Notification, transport: Transport | None = None
) -> Report:
    """Queue a notification durably, then deliver what is due."""
    enqueue(state_dir, notification)
    return deliver(state_dir, transport)
