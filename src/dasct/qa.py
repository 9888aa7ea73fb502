"""The QA loop: what lands is recorded, each touched defect gets a revalidation request,
the request becomes a ticket in every configured tracker, and QA's decision comes back.

The ledger (ledger.py) is the source of truth and the durable queue across machines: a
request is a ledger record before anything is sent, a filed ticket is a ledger record
once its tracker said so, and `flush` sends whatever the ledger holds that its trackers
have not filed yet (through the outbox: notify.py, with its retries and keys). So a CI job
that dies between "ticket created" and "ledger written" loses nothing and files nothing
twice: the next run sends the request again under the same key, and the tracker finds
the ticket it already has (docs/qa.md). QA's decisions are in qadecide.py.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from dasct import git, redact
from dasct.config import Config
from dasct.ledger import Ledger
from dasct.ledger_record import Record
from dasct.notify import Notification, Outbox
from dasct.settings import matches_glob
from dasct.trackers import IN_LEDGER, Decision, Filed, Ticket, Tracker, TrackerError, make
from dasct.trackers.transport import (
    TicketTransport,
    regression_notification,
    ticket_notification,
)

# Filed tickets written to the ledger per commit at most this many at a time (and at
# least every notify.SETTLE_SECONDS): a long flush stays one ledger commit per batch.
SETTLE_BATCH = 500
STATE = "qa"  # under the git dir's dasct/: the outbox of the QA loop
NOTICES = "qa-notices"  # ... and of the notices to authors (notify.py's local transport)
REQUEST, FILED, TOLD, ACCEPT, REJECT, CURSOR, EVIDENCE = (
    "request", "filed", "told", "accept", "reject", "cursor", "evidence")


def ledger_of(repo: git.Repo, cfg: Config) -> Ledger:
    """The repository's ledger as configured ([qa] ledger_branch, ledger_remote)."""
    return Ledger(repo, cfg.qa.ledger_branch, _remote(repo, cfg))


def _remote(repo: git.Repo, cfg: Config) -> str:
    """The ledger's remote when the repository has it ("" : the ledger stays local)."""
    name = cfg.qa.ledger_remote
    if not name:
        return ""
    code, _ = git.run_code("config", "--get", f"remote.{name}.url", cwd=repo.root)
    return name if code == 0 else ""


def outbox(repo: git.Repo) -> Outbox:
    """The QA loop's outbox (its own, beside the migration engine's)."""
    return Outbox(repo.state_dir / STATE)


class _Owned:
    """A tracker whose tickets get the defect's QA owner: the tracker's own answer (the
    defect's reporter or a configured field), else `[qa] owners`, else the default."""

    def __init__(self, tracker: Tracker, cfg: Config) -> None:
        self.tracker = tracker
        self.cfg = cfg
        self.name = tracker.name

    def file(self, ticket: Ticket) -> Filed:
        if not ticket.assignee:
            owner = self.tracker.owner(ticket.defect) or owner_of(self.cfg, ticket.defect)
            ticket = replace(ticket, assignee=owner)
        return self.tracker.file(ticket)

    def decision(self, filed: Filed) -> Decision | None:
        return self.tracker.decision(filed)

    def regressed(self, defect: str, text: str, key: str) -> None:
        self.tracker.regressed(defect, text, key)

    def owner(self, defect: str) -> str | None:
        return self.tracker.owner(defect)


def owner_of(cfg: Config, defect: str) -> str:
    """The QA owner config names for defect: `[qa] owners` (key or glob), else the default."""
    owners = cfg.qa.owners
    if defect in owners:
        return owners[defect]
    for pattern, owner in owners.items():
        if matches_glob(defect, (pattern,)):
            return owner
    return cfg.qa.default_assignee


class _Unmade:
    """A configured tracker that cannot be made (its credentials unset, its library
    missing): every call raises why, so its requests wait with that line (and not with
    "not configured", which it is)."""

    def __init__(self, name: str, problem: str) -> None:
        self.name = name
        self.problem = problem

    def file(self, ticket: Ticket) -> Filed:
        raise TrackerError(self.problem)

    def decision(self, filed: Filed) -> Decision | None:
        raise TrackerError(self.problem)

    def regressed(self, defect: str, text: str, key: str) -> None:
        raise TrackerError(self.problem)

    def owner(self, defect: str) -> str | None:
        raise TrackerError(self.problem)


def trackers_of(cfg: Config, env: Mapping[str, str] | None = None
                ) -> tuple[dict[str, Tracker], list[str]]:
    """Every configured tracker, each asking for owners as owner_of says, and one line for
    each that cannot be made (it stands in raising that line: its requests wait, nothing
    is lost)."""
    env = os.environ if env is None else env
    made: dict[str, Tracker] = {}
    problems: list[str] = []
    for name in cfg.qa.trackers:
        try:
            made[name] = _Owned(make(name, cfg.qa, env), cfg)
        except TrackerError as exc:
            # The trackers' own lines name them already ("jira: DASCT_JIRA_TOKEN is not
            # set"): named once.
            text = str(exc)
            problems.append(redact.redact(text if text.startswith(f"{name}: ")
                                          else f"{name}: {text}"))
            made[name] = _Unmade(name, problems[-1])
    return made, problems


# ----------------------------------------------------------------------------- reading


def requests(book: Ledger) -> dict[str, Record]:
    """Every revalidation request by key (two CI jobs may write one twice: first wins).
    The ledger is read from disk: a request that does not hold a ticket is left out, with
    one line naming it."""
    out: dict[str, Record] = {}
    for r in book.records(REQUEST):
        key = r.data.get("key")
        if not isinstance(key, str) or key in out:
            continue
        try:
            ticket = Ticket.from_dict(r.data["ticket"])
            ok = (ticket.key == key and all(isinstance(v, str) for v in (
                ticket.defect, ticket.commit, ticket.title, ticket.body))
                and isinstance(r.data.get("commit"), str)
                and isinstance(r.data.get("defect"), str))
        except (KeyError, TypeError, ValueError, AttributeError):
            ok = False
        if ok:
            out[key] = r
        else:
            print(f"dasct: ledger record {r.id[:12]} (request) does not hold a ticket: "
                  "left out", file=sys.stderr)
    return out


def decisions(book: Ledger) -> dict[str, Record]:
    """QA's decision per request key: the latest accept or reject."""
    out: dict[str, Record] = {}
    for r in book.records(ACCEPT, REJECT):
        key = r.data.get("key")
        if isinstance(key, str):
            out[key] = r
    return out


def filed(book: Ledger) -> dict[tuple[str, str], Record]:
    """The filed tickets by (request key, tracker)."""
    out: dict[tuple[str, str], Record] = {}
    for r in book.records(FILED):
        key, tracker = r.data.get("key"), r.data.get("tracker")
        if isinstance(key, str) and isinstance(tracker, str):
            out.setdefault((key, tracker), r)
    return out


@dataclass(frozen=True)
class Open:
    """An open revalidation: its request, and where its tickets are."""

    request: Record
    tickets: tuple[Record, ...]


def open_requests(book: Ledger) -> list[Open]:
    """The requests QA has not decided, oldest first."""
    decided = decisions(book)
    where = filed(book)
    return [Open(r, tuple(v for (k, _), v in where.items() if k == key))
            for key, r in requests(book).items() if key not in decided]


# ----------------------------------------------------------------------------- sending


@dataclass(frozen=True)
class Sent:
    """What one flush did, and why what waits waits (one line per reason)."""

    delivered: int
    failed: int
    waiting: int
    reasons: tuple[str, ...] = ()


def flush(repo: git.Repo, cfg: Config, book: Ledger | None = None, *,
          env: Mapping[str, str] | None = None) -> Sent:
    """Send what the ledger holds and the trackers have not filed. A tracker that cannot
    be made (its credentials missing) or that fails leaves its requests waiting; the
    reasons say why, one line each."""
    book = book or ledger_of(repo, cfg)
    box = outbox(repo)
    done = filed(book)
    queue: list[tuple[Notification, str | None]] = []
    for key, r in requests(book).items():
        ticket = Ticket.from_dict(r.data["ticket"])
        for name in cfg.qa.trackers:
            if (key, name) not in done:
                queue.append((ticket_notification(ticket, name), f"{key}/{name}"))
    told = {(r.data.get("key"), r.data.get("tracker")) for r in book.records(TOLD)}
    regressions: list[tuple[str, str, str]] = []
    for r in book.records(REJECT):
        key = str(r.data.get("key"))
        if not isinstance(r.data.get("defect"), str):
            continue  # not a reject dasct wrote: nothing to tell
        for name in cfg.qa.trackers:
            if (key, name) not in told:
                box_key = f"{key}/reject/{name}"
                queue.append((regression_notification(
                    r.data["defect"], regression_text(r), f"{key}/reject", name), box_key))
                regressions.append((key, name, box_key))
    box.enqueue_many(queue)  # one transaction for them all
    trackers, problems = trackers_of(cfg, env)
    made: list[Record] = []

    def on_filed(ticket: Ticket, where: Filed) -> None:
        made.append(filed_record(ticket.key, where))

    def settle() -> None:
        # The filed tickets reach the ledger in one commit per batch, before the outbox
        # marks them delivered: a run killed in between sends them again, and the
        # tracker finds each by its key (docs/qa.md).
        if made:
            book.append(made)
            made.clear()

    report = box.deliver(TicketTransport(trackers, on_filed=on_filed), settle=settle,
                         batch=SETTLE_BATCH)
    # A defect told it regressed is not told again by the next run in a fresh clone.
    now_told = [Record(TOLD, {"key": key, "tracker": name})
                for key, name, box_key in regressions if box.delivered(box_key)]
    if now_told:
        book.append(now_told)
    reasons = dict.fromkeys(problems)
    for row in box.waiting():
        if row.last_error:
            reasons.setdefault(row.last_error)
    return Sent(report.delivered, report.failed, report.waiting, tuple(reasons))


def filed_record(key: str, where: Filed) -> Record:
    """The ledger's record that request key's ticket is filed, and where."""
    return Record(FILED, {"key": key, "tracker": where.tracker, "id": where.id,
                          "url": where.url})


def with_filed(cfg: Config, new: Sequence[Record]) -> tuple[list[Record], int]:
    """The request records new, each followed by its `filed` records for the configured
    trackers whose ticket is its ledger record (trackers.IN_LEDGER), and how many those
    are: written in the requests' own ledger commit, they are never queued in the outbox
    (docs/qa.md)."""
    held = [make(name, cfg.qa, {}) for name in cfg.qa.trackers if name in IN_LEDGER]
    out: list[Record] = []
    for r in new:
        ticket = Ticket.from_dict(r.data["ticket"])
        out.append(r)
        out.extend(filed_record(ticket.key, tracker.file(ticket)) for tracker in held)
    return out, len(out) - len(new)


def sends_elsewhere(cfg: Config) -> bool:
    """True when a configured tracker is reached through the outbox (not IN_LEDGER)."""
    return any(name not in IN_LEDGER for name in cfg.qa.trackers)


def regression_text(r: Record) -> str:
    d = r.data
    return (f"dasct: QA rejected commit {str(d.get('commit', ''))[:12]} for "
            f"{d.get('defect')}: the defect regressed. Reason: {d.get('reason', '')}")


def history_of(book: Ledger, defect: str) -> Iterable[Record]:
    """The ledger records about defect, oldest first (for `dasct show`)."""
    return [r for r in book.records() if r.data.get("defect") == defect]
