"""TicketTransport: the outbox files tickets in trackers, once per key, whatever dies."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from dasct import notify, trackers
from dasct.notify import Notification, Outbox
from dasct.qaconfig import QaConfig
from dasct.trackers import Decision, Filed, Ticket, TrackerError
from dasct.trackers.local import LocalTracker
from dasct.trackers.transport import (
    REGRESSION,
    REVALIDATION,
    TicketTransport,
    regression_notification,
    ticket_notification,
)

TICKET = Ticket(
    key="MNG-1@0123abcd", defect="MNG-1", commit="0123abcd" * 5,
    title="Revalidate MNG-1: 0123abc changed its protected lines",
    body="```diff\n-old\n+new\n```\nAccept: dasct qa accept MNG-1 --commit 0123abc",
    assignee="qa@example.com", notify=("dev@example.com", "qa@example.com"),
    labels=("dasct",), probable_regression=True, data={"evidence": {"passed": 2}},
)


class KeyedFake:
    """A tracker idempotent by key, as Jira and GitHub are (they search by key first),
    whose tickets live in a JSON-lines file; with `pause`, it stops after creating one
    (the SIGKILL test kills it there, in a child process)."""

    name = "fake"

    def __init__(self, store: Path, pause: Path | None = None) -> None:
        self.store, self.pause = Path(store), pause
        self.regressions: list[tuple[str, str, str]] = []

    def tickets(self) -> list[dict[str, Any]]:
        if not self.store.exists():
            return []
        return [json.loads(line) for line in self.store.read_text().splitlines()]

    def file(self, ticket: Ticket) -> Filed:
        for i, t in enumerate(self.tickets()):
            if t["key"] == ticket.key:
                return Filed(self.name, str(i + 1))
        with open(self.store, "a") as f:
            f.write(json.dumps(ticket.to_dict()) + "\n")
            f.flush()
            os.fsync(f.fileno())
        if self.pause:  # created, not yet answered
            self.pause.touch()
            time.sleep(60)
        return Filed(self.name, str(len(self.tickets())), "http://tracker/" + ticket.key)

    def decision(self, filed: Filed) -> Decision | None:
        return None

    def regressed(self, defect: str, text: str, key: str) -> None:
        self.regressions.append((defect, text, key))

    def owner(self, defect: str) -> str | None:
        return None


def test_ticket_notification_round_trips_through_the_outbox(tmp_path: Path) -> None:
    n = ticket_notification(TICKET, "jira")
    assert (n.kind, n.subject, n.body) == (REVALIDATION, TICKET.title, TICKET.body)
    assert n.recipients == ("qa@example.com", "dev@example.com")  # assignee first, once
    assert n.data == {"tracker": "jira", "ticket": TICKET.to_dict()}
    assert ticket_notification(Ticket(**{**TICKET.to_dict(), "assignee": "",
                                         "notify": ()}), "x").recipients == ()
    outbox = Outbox(tmp_path)
    outbox.enqueue(n, key="jira:" + TICKET.key, now=0)
    got: list[tuple[Ticket, Filed]] = []
    fake = KeyedFake(tmp_path / "tickets.jsonl")
    report = outbox.deliver(TicketTransport({"jira": fake}, lambda t, f: got.append((t, f))),
                            now=0)
    assert (report.delivered, report.waiting) == (1, 0)
    assert got == [(TICKET, Filed("fake", "1", "http://tracker/" + TICKET.key))]
    assert [Ticket.from_dict(t) for t in fake.tickets()] == [TICKET]


def test_on_filed_once_per_filed_ticket(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    other = Ticket(**{**TICKET.to_dict(), "key": "MNG-2@0123abcd", "defect": "MNG-2"})
    for t in (TICKET, other, TICKET):  # the third is the first queued again
        outbox.enqueue(ticket_notification(t, "fake"), key=f"fake:{t.key}", now=0)
    got: list[tuple[str, Filed]] = []
    fake = KeyedFake(tmp_path / "tickets.jsonl")
    transport = TicketTransport({"fake": fake}, lambda t, f: got.append((t.key, f)))
    assert outbox.deliver(transport, now=0).delivered == 2
    assert outbox.deliver(transport, now=1e9).delivered == 0
    assert got == [(TICKET.key, Filed("fake", "1", "http://tracker/" + TICKET.key)),
                   (other.key, Filed("fake", "2", "http://tracker/" + other.key))]


def test_regression_goes_to_regressed(tmp_path: Path) -> None:
    n = regression_notification("MNG-1", "QA: fails again at 0123abc", "MNG-1@r1", "fake")
    assert (n.kind, n.subject, n.body) == (REGRESSION, "MNG-1 regressed",
                                           "QA: fails again at 0123abc")
    outbox = Outbox(tmp_path)
    outbox.enqueue(n, key="fake:MNG-1@r1", now=0)
    fake = KeyedFake(tmp_path / "tickets.jsonl")
    got: list[object] = []
    assert outbox.deliver(TicketTransport({"fake": fake}, got.append), now=0).delivered == 1
    assert fake.regressions == [("MNG-1", "QA: fails again at 0123abc", "MNG-1@r1")]
    assert got == [] and fake.tickets() == []  # on_filed is for tickets only


def test_unknown_tracker_waits_until_it_is_configured(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path, base_delay=10)
    outbox.enqueue(ticket_notification(TICKET, "jira"), key="jira:k", now=0)
    fake = KeyedFake(tmp_path / "tickets.jsonl")
    report = outbox.deliver(TicketTransport({"github": fake}), now=0)
    assert (report.delivered, report.failed, report.waiting) == (0, 1, 1)
    (row,) = outbox.waiting()
    assert row.last_error == "tracker 'jira' is not configured ([qa] trackers: github)"
    assert fake.tickets() == []
    assert outbox.deliver(TicketTransport({"jira": fake}), now=10).delivered == 1
    assert len(fake.tickets()) == 1


@pytest.mark.parametrize("n, error", [
    (Notification(notify.MOVED, "E-1 moved", ""), "not a tracker notification: kind 'moved'"),
    (Notification(REVALIDATION, "t", "", data={"tracker": "fake"}),
     "revalidation notification without 'ticket' in its data"),
    (Notification(REGRESSION, "t", "", data={"defect": "D-1", "text": "x", "key": "k"}),
     "regression notification without 'tracker' in its data"),
])
def test_what_is_not_a_tracker_request_waits(tmp_path: Path, n: Notification,
                                              error: str) -> None:
    fake = KeyedFake(tmp_path / "tickets.jsonl")
    with pytest.raises(TrackerError) as raised:
        TicketTransport({"fake": fake}).send(n)
    assert str(raised.value) == error
    outbox = Outbox(tmp_path)
    outbox.enqueue(n, now=0)
    assert outbox.deliver(TicketTransport({"fake": fake}), now=0).waiting == 1
    assert outbox.waiting()[0].last_error == error


CHILD = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[4])
from test_transport import KeyedFake
from dasct.notify import Outbox
from dasct.trackers.transport import TicketTransport

state, store, pause = map(Path, sys.argv[1:4])
Outbox(state).deliver(TicketTransport({"fake": KeyedFake(store, pause)},
                                      lambda t, f: print("filed", f, flush=True)))
"""


def test_a_sender_killed_between_create_and_record_files_one_ticket(tmp_path: Path) -> None:
    state, store, pause = tmp_path / "state", tmp_path / "tickets.jsonl", tmp_path / "created"
    outbox = Outbox(state, lease=300)
    outbox.enqueue(ticket_notification(TICKET, "fake"), key="fake:" + TICKET.key)
    child = subprocess.Popen((sys.executable, "-c", CHILD, str(state), str(store), str(pause),
                              str(Path(__file__).parent)),
                             stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not pause.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pause.exists(), "the child never reached the tracker"
    os.kill(child.pid, signal.SIGKILL)
    out, _ = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL and out == ""  # on_filed never ran there
    (row,) = outbox.waiting()  # the ticket exists; the outbox does not know it
    assert row.attempts == 0 and row.next_try >= time.time() + 200  # leased to the dead
    got: list[Filed] = []
    fake = KeyedFake(store)
    transport = TicketTransport({"fake": fake}, lambda t, f: got.append(f))
    assert outbox.deliver(transport).delivered == 0  # not before the lease ends
    assert outbox.deliver(transport, now=time.time() + 301).delivered == 1
    assert got == [Filed("fake", "1")]  # found by its key, not filed again
    assert [t["key"] for t in fake.tickets()] == [TICKET.key]
    assert outbox.delivered("fake:" + TICKET.key)


def test_local_tracker(tmp_path: Path) -> None:
    local = trackers.make("local", QaConfig(), {})
    assert isinstance(local, LocalTracker) and local.name == "local"
    assert local.file(TICKET) == Filed("local", TICKET.key)
    assert local.file(TICKET) == Filed("local", TICKET.key)  # idempotent
    assert local.decision(Filed("local", TICKET.key)) is None
    assert local.owner("MNG-1") is None
    local.regressed("MNG-1", "again", "k")  # the ledger holds it: nothing to do
    outbox = Outbox(tmp_path)
    outbox.enqueue(ticket_notification(TICKET, "local"), key="local:" + TICKET.key, now=0)
    outbox.enqueue(regression_notification("MNG-1", "x", "r", "local"), key="local:r", now=0)
    got: list[Filed] = []
    assert outbox.deliver(TicketTransport({"local": local}, lambda t, f: got.append(f)),
                          now=0).delivered == 2
    assert got == [Filed("local", TICKET.key)]

