"""The durable outbox: nothing is lost, failures are retried with backoff."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

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
