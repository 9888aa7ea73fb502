"""The durable outbox: nothing is lost, failures are retried with backoff."""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
import time
from contextlib import closing
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dasct import notify
from dasct.notify import Notification, NotifyError, Outbox

N = Notification(
    kind=notify.MOVED, subject="E-1 moved to model", body="2 files, 1 SQL change",
    recipients=("qa@example.com",), environment="model", data={"trigger": "E-1", "files": 2},
)


class Flaky:
    """A transport that fails a given number of times, then delivers."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.sent: list[Notification] = []

    def send(self, notification: Notification) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("tracker down\nsecond line")
        self.sent.append(notification)


class Interrupted:
    """A transport whose process dies mid-send (simulated by an uncaught BaseException)."""

    def send(self, notification: Notification) -> None:
        raise KeyboardInterrupt


def test_local_transport_is_the_default(tmp_path: Path) -> None:
    report = notify.notify(tmp_path, N)
    assert (report.delivered, report.failed, report.waiting) == (1, 0, 0)
    lines = (tmp_path / notify.DELIVERED).read_text().splitlines()
    record = json.loads(lines[0])
    assert record["kind"] == "moved" and record["recipients"] == ["qa@example.com"]
    assert record["data"] == {"trigger": "E-1", "files": 2} and record["delivered"]
    assert Outbox(tmp_path).waiting() == []


def test_module_functions(tmp_path: Path) -> None:
    notify.enqueue(tmp_path, N)
    notify.enqueue(tmp_path, N)
    assert len(Outbox(tmp_path).waiting()) == 2
    flaky = Flaky(failures=1)
    report = notify.deliver(tmp_path, flaky)
    assert (report.delivered, report.failed, report.waiting) == (1, 1, 1)
    assert notify.deliver(tmp_path).delivered == 0  # the failed one waits for its backoff


def test_round_trip_json() -> None:
    assert Notification.from_json(N.to_json()) == N


def test_failing_transport_keeps_the_notification(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path, base_delay=10, max_delay=100)
    outbox.enqueue(N, now=1000)
    flaky = Flaky(failures=3)
    report = outbox.deliver(flaky, now=1000)
    assert (report.delivered, report.failed, report.waiting) == (0, 1, 1)
    (waiting,) = outbox.waiting()
    assert waiting.attempts == 1 and waiting.next_try == 1010
    assert waiting.last_error == "ConnectionError: tracker down second line"
    # Not due yet: nothing is attempted.
    assert outbox.deliver(flaky, now=1005).failed == 0
    assert outbox.deliver(flaky, now=1010).failed == 1
    assert outbox.waiting()[0].next_try == 1030  # backoff doubles
    assert outbox.deliver(flaky, now=1030).failed == 1
    report = outbox.deliver(flaky, now=1070)
    assert (report.delivered, report.waiting) == (1, 0)
    assert flaky.sent == [N]


def test_last_error_never_holds_a_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_PASSWORD", "smtp-pass-987654")

    class Leaky:
        def send(self, notification: Notification) -> None:
            raise RuntimeError("login failed for user x password smtp-pass-987654")

    outbox = Outbox(tmp_path)
    outbox.enqueue(N, now=0)
    outbox.deliver(Leaky(), now=0)
    (waiting,) = outbox.waiting()
    assert waiting.last_error is not None and "smtp-pass-987654" not in waiting.last_error
    for path in tmp_path.iterdir():  # the database, its WAL and shared memory
        assert b"smtp-pass-987654" not in path.read_bytes(), path


def test_backoff_is_capped() -> None:
    outbox = Outbox(Path("/nonexistent"), base_delay=60, max_delay=3600)
    assert [outbox.backoff(a) for a in (1, 2, 3, 7, 100)] == [60, 120, 240, 3600, 3600]


def test_killed_sender_is_retried_after_its_lease(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path, lease=300)
    outbox.enqueue(N, now=0)
    with pytest.raises(KeyboardInterrupt):
        outbox.deliver(Interrupted(), now=0)
    flaky = Flaky(failures=0)
    assert outbox.deliver(flaky, now=100).delivered == 0  # still leased
    assert outbox.deliver(flaky, now=300).delivered == 1
    assert flaky.sent == [N]


def test_order_and_limit(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    for kind in notify.KINDS:
        outbox.enqueue(Notification(kind, kind, ""), now=0)
    flaky = Flaky(failures=0)
    assert outbox.deliver(flaky, now=0, limit=2).waiting == len(notify.KINDS) - 2
    outbox.deliver(flaky, now=0)
    assert [n.kind for n in flaky.sent] == list(notify.KINDS)


def test_bad_kind(tmp_path: Path) -> None:
    with pytest.raises(NotifyError, match="not a notification kind"):
        Outbox(tmp_path).enqueue(Notification("Bad Kind", "", ""))


def test_outbox_survives_reopening(tmp_path: Path) -> None:
    Outbox(tmp_path).enqueue(N, now=0)
    Outbox(tmp_path).deliver(Flaky(failures=1), now=0)
    assert [w.notification for w in Outbox(tmp_path).waiting()] == [N]
    assert (tmp_path / notify.OUTBOX).exists()


def _sender(state: str, out: str) -> None:
    notify.Outbox(Path(state)).deliver(notify.LocalTransport(Path(out)), now=0)


def test_concurrent_senders_deliver_each_once(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    for i in range(40):
        outbox.enqueue(Notification("moved", f"n{i}", ""), now=0)
    out = tmp_path / "sent.jsonl"
    procs = [multiprocessing.Process(target=_sender, args=(str(tmp_path), str(out)))
             for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    subjects = [json.loads(line)["subject"] for line in out.read_text().splitlines()]
    assert sorted(subjects) == sorted(f"n{i}" for i in range(40))
    assert outbox.waiting() == []


# Idempotency keys, rate limits, refused credentials.

class Refusing:
    """A transport that raises a given exception every time."""

    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def send(self, notification: Notification) -> None:
        raise self.exc


class AskedToWait(Exception):
    """Like trackers.RetryLater, which the outbox only knows by its `seconds`."""

    def __init__(self, seconds: object) -> None:
        super().__init__("HTTP 429")
        self.seconds = seconds


def test_a_key_is_queued_once_delivered_or_not(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    first = outbox.enqueue(N, key="PROJ-1@abc", now=0)
    assert outbox.enqueue(N, key="PROJ-1@abc", now=5) == first
    assert outbox.find("PROJ-1@abc") is not None and not outbox.delivered("PROJ-1@abc")
    other = outbox.enqueue(N, key="PROJ-2@abc", now=0)
    unkeyed = [outbox.enqueue(N, now=0), outbox.enqueue(N, now=0)]
    assert len({first, other, *unkeyed}) == 4 and len(outbox.waiting()) == 4
    flaky = Flaky(failures=0)
    assert outbox.deliver(flaky, now=0).delivered == 4
    assert outbox.delivered("PROJ-1@abc") and outbox.delivered("PROJ-2@abc")
    # Queued again after delivery: nothing added, nothing sent again.
    assert outbox.enqueue(N, key="PROJ-1@abc", now=10) == first
    assert outbox.deliver(flaky, now=10).delivered == 0 and len(flaky.sent) == 4
    found = outbox.find("PROJ-1@abc")
    assert found is not None and found.id == first and found.key == "PROJ-1@abc"
    assert found.delivered is not None and found.attempts == 1 and found.notification == N
    assert outbox.find("PROJ-3@abc") is None and not outbox.delivered("PROJ-3@abc")


@pytest.mark.parametrize("key", ["", "two words", "x" * 201, "tab\there", "é"])
def test_bad_key(tmp_path: Path, key: str) -> None:
    with pytest.raises(NotifyError, match="not an idempotency key"):
        Outbox(tmp_path).enqueue(N, key=key)


def test_a_key_never_holds_a_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DASCT_JIRA_TOKEN", "jira-token-24680")
    with pytest.raises(NotifyError) as raised:
        Outbox(tmp_path).enqueue(N, key="MNG-1@jira-token-24680")
    assert str(raised.value) == "not an idempotency key: it holds a secret or a URL password"
    assert Outbox(tmp_path).waiting() == []


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(keys=st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "c", "PROJ-1@f00"]))))
def test_one_row_per_key(tmp_path_factory: pytest.TempPathFactory,
                         keys: list[str | None]) -> None:
    outbox = Outbox(tmp_path_factory.mktemp("outbox"))
    ids = [outbox.enqueue(N, key=k, now=0) for k in keys]
    by_key: dict[str, int] = {}
    for k, i in zip(keys, ids, strict=True):
        if k is not None:
            assert by_key.setdefault(k, i) == i  # the same key, the same row
    assert len(set(ids)) == len(by_key) + keys.count(None)
    assert len(outbox.waiting()) == len(set(ids))


def test_retry_after_is_honoured_and_backoff_still_grows(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path, base_delay=10, max_delay=1000)
    outbox.enqueue(N, now=0)
    outbox.deliver(Refusing(AskedToWait(120)), now=0)
    assert outbox.waiting()[0].next_try == 120  # asked 120 s, the backoff was 10
    outbox.deliver(Refusing(AskedToWait(5)), now=120)
    assert outbox.waiting()[0].next_try == 140  # asked 5 s, the backoff is 20
    for junk in ("120", None, -3, float("nan"), True):  # not a wait: the backoff alone
        outbox.deliver(Refusing(AskedToWait(junk)), now=outbox.waiting()[0].next_try)
    (row,) = outbox.waiting()
    assert row.attempts == 7 and row.next_try == 140 + 40 + 80 + 160 + 320 + 640
    outbox.deliver(Refusing(AskedToWait(1e12)), now=row.next_try)  # capped: 30 days
    assert outbox.waiting()[0].next_try == row.next_try + 30 * 24 * 3600


def test_refused_credentials_wait_with_their_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dasct.trackers import CredentialsRefused, RetryLater

    monkeypatch.setenv("DASCT_GITHUB_TOKEN", "ghp_secret_value_123")
    outbox = Outbox(tmp_path, base_delay=10)
    outbox.enqueue(N, now=0)
    line = "github: the token in $DASCT_GITHUB_TOKEN was refused (ghp_secret_value_123)"
    report = outbox.deliver(Refusing(CredentialsRefused(line + "\nmore")), now=0)
    assert (report.delivered, report.failed, report.waiting) == (0, 1, 1)
    (row,) = outbox.waiting()
    assert row.last_error == ("github: the token in $DASCT_GITHUB_TOKEN was refused "
                              "([redacted]) more")
    assert row.next_try == 10
    outbox.deliver(Refusing(RetryLater("jira: HTTP 429", 300)), now=10)
    (row,) = outbox.waiting()
    assert row.last_error == "jira: HTTP 429" and row.next_try == 310


OLD_SCHEMA = """
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_try REAL NOT NULL,
    last_error TEXT,
    delivered TEXT
);
CREATE INDEX outbox_due ON outbox (delivered, next_try);
"""


def _old_outbox(state: Path, rows: int) -> None:
    """An outbox file as notify.py wrote it before idempotency keys."""
    state.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(state / notify.OUTBOX)) as db:
        db.executescript(OLD_SCHEMA)
        for i in range(rows):
            db.execute("INSERT INTO outbox (created, kind, payload, next_try, attempts, "
                       "last_error) VALUES ('1970-01-01T00:00:00+00:00', 'moved', ?, 0, 1, "
                       "'ConnectionError: down')",
                       (Notification("moved", f"old {i}", "").to_json(),))
        db.commit()


def test_an_old_outbox_is_migrated_in_place(tmp_path: Path) -> None:
    _old_outbox(tmp_path, rows=2)
    outbox = Outbox(tmp_path)
    old = outbox.waiting()
    assert [(w.notification.subject, w.attempts, w.last_error, w.key) for w in old] == [
        ("old 0", 1, "ConnectionError: down", None), ("old 1", 1, "ConnectionError: down", None)]
    first = outbox.enqueue(N, key="k-1", now=0)
    assert outbox.enqueue(N, key="k-1", now=0) == first
    flaky = Flaky(failures=0)
    assert outbox.deliver(flaky, now=0).delivered == 3
    assert [n.subject for n in flaky.sent] == ["old 0", "old 1", N.subject]
    with closing(sqlite3.connect(tmp_path / notify.OUTBOX)) as db:
        indexes = {r[1]: r[2] for r in db.execute("PRAGMA index_list(outbox)")}
        assert indexes.get("outbox_key") == 1  # unique
        with pytest.raises(sqlite3.IntegrityError):
            db.execute("INSERT INTO outbox (created, kind, payload, next_try, key) "
                       "VALUES ('', 'moved', '{}', 0, 'k-1')")


def _enqueue_keys(state: str, start: str) -> None:
    while not Path(start).exists():
        time.sleep(0.005)
    outbox = Outbox(Path(state))
    for i in range(10):
        outbox.enqueue(N, key=f"k-{i}", now=0)


def test_several_processes_migrate_an_old_outbox_at_once(tmp_path: Path) -> None:
    _old_outbox(tmp_path / "state", rows=1)
    start = tmp_path / "go"
    procs = [multiprocessing.Process(target=_enqueue_keys,
                                     args=(str(tmp_path / "state"), str(start)))
             for _ in range(4)]
    for p in procs:
        p.start()
    start.touch()
    for p in procs:
        p.join()
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    waiting = Outbox(tmp_path / "state").waiting()
    assert sorted(w.key or "" for w in waiting) == sorted(["", *(f"k-{i}" for i in range(10))])


def test_unreadable_outbox_is_one_line(tmp_path: Path) -> None:
    (tmp_path / notify.OUTBOX).write_bytes(b"not a database at all, " * 100)
    with pytest.raises(NotifyError, match="cannot open the outbox"):
        Outbox(tmp_path).waiting()


def test_enqueue_many_is_one_batch_with_keys_once(tmp_path: Path) -> None:
    box = Outbox(tmp_path, base_delay=0)
    ids = box.enqueue_many([(N, "a"), (N, "b"), (N, "a"), (N, None)], now=0)
    assert ids[0] == ids[2] and len(set(ids)) == 3
    with pytest.raises(NotifyError, match="not an idempotency key"):
        box.enqueue_many([(N, "c"), (N, "has space")])
    assert box.find("c") is None  # checked before anything was stored
    assert box.deliver(Flaky(0)).delivered == 3


def test_settle_runs_before_outcomes_are_written(tmp_path: Path) -> None:
    """With settle, rows become delivered only after settle returned, batch at a time: a
    settle that fails (the ledger could not be written) leaves them leased, not delivered,
    so a later run sends them again."""
    box = Outbox(tmp_path, base_delay=0, lease=100)
    box.enqueue_many([(N, f"k{i}") for i in range(5)], now=0)
    seen: list[int] = []
    transport = Flaky(0)

    def settle() -> None:
        seen.append(len(transport.sent))

    report = box.deliver(transport, now=1, settle=settle, batch=2)
    assert report.delivered == 5 and seen == [2, 4, 5]
    box.enqueue_many([(N, f"j{i}") for i in range(3)], now=1)

    def broken() -> None:
        raise OSError("ledger not writable")

    with pytest.raises(OSError):
        box.deliver(Flaky(0), now=2, settle=broken, batch=10)
    assert [w.key for w in box.waiting()] == ["j0", "j1", "j2"]  # none marked delivered
    assert box.deliver(Flaky(0), now=50).delivered == 0  # still leased
    assert box.deliver(Flaky(0), now=200).delivered == 3  # the lease over: sent again
