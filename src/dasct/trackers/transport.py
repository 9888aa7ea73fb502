"""The outbox's side of the QA loop: tickets and regressions as notifications, and the
notify.Transport that hands them to the trackers.

qa.py queues one notification per request and tracker (with the request's idempotency
key, so queuing it again adds nothing); `TicketTransport.send` files it when the outbox
delivers it. Retry, backoff, Retry-After, the lease and redaction are the outbox's: a
tracker that raises leaves the notification waiting.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from dasct.notify import REGRESSION, REVALIDATION, Notification
from dasct.trackers import CredentialsRefused, Filed, RetryLater, Ticket, Tracker, TrackerError

HOLD_SECONDS = 60.0  # how long a tracker that asked to wait, without saying how long, waits

__all__ = ("REGRESSION", "REVALIDATION", "TicketTransport", "regression_notification",
           "ticket_notification")


def ticket_notification(ticket: Ticket, tracker: str) -> Notification:
    """The revalidation request `ticket` for the tracker called `tracker`."""
    recipients = dict.fromkeys(r for r in (ticket.assignee, *ticket.notify) if r)
    return Notification(
        kind=REVALIDATION, subject=ticket.title, body=ticket.body,
        recipients=tuple(recipients), data={"tracker": tracker, "ticket": ticket.to_dict()},
    )


def regression_notification(defect: str, text: str, key: str, tracker: str) -> Notification:
    """Tell `defect`, in the tracker called `tracker`, that it regressed (text: why)."""
    return Notification(
        kind=REGRESSION, subject=f"{defect} regressed", body=text,
        data={"tracker": tracker, "defect": defect, "text": text, "key": key},
    )


class TicketTransport:
    """A notify.Transport that files revalidation tickets and regressions in trackers.

    Once a tracker refuses the credentials, or asks to wait, the rest of its requests in
    this transport's life (one flush) wait without being sent: a hundred queued tickets
    must not be a hundred failed logins (servers lock accounts) or a hundred requests
    into a rate limit.
    """

    def __init__(self, trackers: Mapping[str, Tracker],
                 on_filed: Callable[[Ticket, Filed], None] | None = None) -> None:
        self.trackers = trackers
        self.on_filed = on_filed  # told of every ticket filed (the lead: the ledger)
        # tracker name -> (its refusal, monotonic time until which it holds; inf: for good)
        self._held: dict[str, tuple[TrackerError, float]] = {}

    def send(self, n: Notification) -> None:
        """Deliver one notification of kind revalidation or regression, or raise."""
        if n.kind not in (REVALIDATION, REGRESSION):
            # A notification of another kind in a trackers' outbox is a bug upstream;
            # it waits (and says so) rather than being dropped as delivered.
            raise TrackerError(f"not a tracker notification: kind {n.kind!r}")
        name = _field(n, "tracker", str)
        tracker = self._tracker(name)
        try:
            if n.kind == REVALIDATION:
                ticket = Ticket.from_dict(_field(n, "ticket", dict))
                filed = tracker.file(ticket)
                if self.on_filed is not None:
                    self.on_filed(ticket, filed)
            else:
                tracker.regressed(_field(n, "defect", str), _field(n, "text", str),
                                  _field(n, "key", str))
        except RetryLater as exc:
            # No Retry-After (0 s) still says "slow down": a minute, the outbox's first
            # backoff, rather than the next request at once.
            self._held[name] = exc, time.monotonic() + (exc.seconds or HOLD_SECONDS)
            raise
        except CredentialsRefused as exc:
            self._held[name] = exc, math.inf
            raise

    def _tracker(self, name: str) -> Tracker:
        held = self._held.get(name)
        if held is not None:
            refusal, until = held
            left = until - time.monotonic()
            if isinstance(refusal, CredentialsRefused):
                raise CredentialsRefused(str(refusal))
            if left > 0:
                raise RetryLater(str(refusal), left)
            del self._held[name]
        tracker = self.trackers.get(name)
        if tracker is None:
            # It waits: the tracker may have been taken out of [qa] trackers by mistake,
            # or its configuration may be broken for now.
            known = ", ".join(sorted(self.trackers)) or "none"
            raise TrackerError(f"tracker {name!r} is not configured ([qa] trackers: {known})")
        return tracker


def _field(n: Notification, name: str, kind: type) -> Any:
    value = n.data.get(name)
    if not isinstance(value, kind):
        raise TrackerError(f"{n.kind} notification without {name!r} in its data")
    return value
