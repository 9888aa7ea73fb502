"""Trackers: where revalidation tickets go, behind one Protocol (docs/qa.md).

Each tracker is a module of this package with a `make(cfg, env) -> Tracker` function,
chosen by name in `[qa] trackers`; several may be on at once. A tracker is driven through
the durable outbox (notify.py): `qa.py` queues one notification per ticket and tracker,
and `TicketTransport` (the notify.Transport of the QA loop) hands it to `Tracker.file`.
Retry, lease and redaction are the outbox's; a tracker only has to be idempotent by
`Ticket.key` (a retry after a timeout finds the ticket it may already have created).
The local tracker (IN_LEDGER) needs no sending: its tickets are filed with their requests.

Only the chosen trackers are imported, and they import their client library (`jira`,
PyGithub) inside: nothing here is on the commit-time path.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple, Protocol

from dasct.errors import DasctError

TRACKERS = ("local", "jira", "github", "email", "webhook")
# The trackers whose ticket is its ledger record (local.py): filing one is writing its
# `filed` record, so `ci record` writes it in the requests' own ledger commit. Nothing
# goes through the outbox for them, and no crash can fall between request and ticket.
IN_LEDGER = frozenset({"local"})


class TrackerError(DasctError):
    """A tracker refused or failed a request; the outbox retries it later."""


class RetryLater(TrackerError):
    """The tracker asked to wait (HTTP 429 Retry-After, 503): the outbox waits at least
    `seconds` before the next try."""

    def __init__(self, message: str, seconds: float) -> None:
        super().__init__(message)
        self.seconds = seconds


class CredentialsRefused(TrackerError):
    """The tracker refused the credentials: one line naming the tracker and the variable."""


@dataclass(frozen=True)
class Ticket:
    """One revalidation request for one defect touched by one commit."""

    key: str  # idempotency key: the same request always has the same key (qa.ticket_key)
    defect: str  # the touched defect, as its fix commits name it (MNG-123, #45, o/r#45)
    commit: str  # full sha of the touching commit
    title: str
    body: str  # plain text with Markdown code fences; every tracker shows it as is
    assignee: str = ""  # the defect's QA owner ("" : the tracker's default)
    notify: tuple[str, ...] = ()  # the fixes' submitters and the touching author (emails)
    labels: tuple[str, ...] = ()
    probable_regression: bool = False  # a fix test failed at the touching commit
    data: Mapping[str, Any] = field(default_factory=dict)  # JSON-able facts (evidence...)

    def to_dict(self) -> dict[str, Any]:
        """The ticket as JSON-able data (what the outbox stores)."""
        # Field by field, not dataclasses.asdict: that deep-copies data, which for a
        # commit touching a thousand lines was most of a long `ci record`.
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["notify"], d["labels"], d["data"] = list(self.notify), list(self.labels), dict(self.data)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Ticket:
        """The inverse of to_dict."""
        return cls(**{**d, "notify": tuple(d.get("notify", ())),
                      "labels": tuple(d.get("labels", ())), "data": dict(d.get("data", {}))})


class Filed(NamedTuple):
    """Where a ticket is: the tracker's name, its id there (PROJ-7, 42, a Message-ID) and
    a URL when the tracker has one."""

    tracker: str
    id: str
    url: str = ""


class Decision(NamedTuple):
    """What QA decided in the tracker about a filed ticket."""

    verdict: str  # "accepted" or "rejected"
    by: str
    at: str  # ISO 8601
    reason: str = ""


class Tracker(Protocol):
    """One place tickets go. Every method may raise TrackerError (RetryLater,
    CredentialsRefused); anything else is retried by the outbox the same way."""

    name: str

    def file(self, ticket: Ticket) -> Filed:
        """File ticket, or return the one filed earlier under ticket.key (idempotent)."""
        ...

    def decision(self, filed: Filed) -> Decision | None:
        """QA's decision on a filed ticket, None while it is open or undecidable here."""
        ...

    def regressed(self, defect: str, text: str, key: str) -> None:
        """Tell the defect it regressed (comment, reopen); idempotent by key."""
        ...

    def owner(self, defect: str) -> str | None:
        """The defect's QA owner as the tracker knows it (reporter or a field), or None."""
        ...


Env = Mapping[str, str]  # where credentials are read: os.environ, or a test's own


def make(name: str, cfg: Any, env: Env) -> Tracker:
    """The tracker called name, configured by cfg (a qaconfig.QaConfig)."""
    if name not in TRACKERS:
        raise TrackerError(f"no tracker called {name!r} (one of {', '.join(TRACKERS)})")
    module = importlib.import_module(f"dasct.trackers.{name}")
    factory: Callable[[Any, Env], Tracker] = module.make
    return factory(cfg, env)
