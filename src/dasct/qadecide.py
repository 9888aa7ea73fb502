"""QA's decisions: accept (the touching commit's new lines become the baseline), reject
(the defect regressed: its trackers and the commit's author hear of it), and sync (the
decisions made in the trackers). Each is a ledger record with who and when; qa.py has
the requests they decide and the sending (docs/qa.md, "Decisions").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dasct import check, git, redact, tickets
from dasct.config import Config
from dasct.errors import DasctError
from dasct.ledger import Ledger
from dasct.ledger_record import Record
from dasct.notify import Notification, Outbox, local_transport
from dasct.qa import (
    ACCEPT,
    NOTICES,
    REJECT,
    decisions,
    filed,
    flush,
    ledger_of,
    regression_text,
    requests,
    trackers_of,
)
from dasct.settings import Settings
from dasct.trackers import Filed, Tracker, TrackerError


def _request_for(repo: git.Repo, defect: str, rev: str) -> tuple[str, str]:
    sha = git.rev_parse(repo, rev)
    return sha, tickets.ticket_key(defect, sha)


def accept(repo: git.Repo, cfg: Config, settings: Settings, defect: str, rev: str, *,
           by: str = "", via: str = "") -> Record:
    """QA accepts commit's touch of defect: the commit's `+` lines in the touching hunks
    become linked to defect (the new baseline)."""
    book = ledger_of(repo, cfg)
    (stored,) = book.append([_accepted(repo, settings, defect, rev, by=by, via=via)])
    if book.remote:
        book.push()
    return stored


def reject(repo: git.Repo, cfg: Config, defect: str, rev: str, reason: str, *,
           by: str = "", via: str = "", env: Mapping[str, str] | None = None) -> Record:
    """QA rejects commit's touch: the defect regressed. The defect's trackers hear of it
    and the commit's author is notified."""
    book = ledger_of(repo, cfg)
    (stored,) = book.append([_rejected(repo, defect, rev, reason, by=by, via=via)])
    _told(repo, cfg, book, [stored], env)
    return stored


def _accepted(repo: git.Repo, settings: Settings, defect: str, rev: str, *, by: str,
              via: str) -> Record:
    """The accept record of commit's touch of defect, with the lines it links."""
    sha, key = _request_for(repo, defect, rev)
    change = check.commit(repo, sha)
    if change.base is None:
        raise DasctError(f"{sha[:12]} is a root commit: it touches no protected line")
    found = [f for f in check.run_check(repo, settings, change) if f.defect == defect]
    if not found:
        raise DasctError(f"commit {sha[:12]} touches no protected line of {defect}: "
                         "nothing to accept")
    lines = tickets.accepted_lines(repo, change.base, sha, found)
    data: dict[str, Any] = {"key": key, "defect": defect, "commit": sha, "lines": lines}
    if via:
        data["via"] = via
    return Record(ACCEPT, data, by=by)


def _rejected(repo: git.Repo, defect: str, rev: str, reason: str, *, by: str,
              via: str) -> Record:
    """The reject record of commit's touch of defect, naming the commit's author."""
    if not reason.strip():
        raise DasctError("qa reject: say why (--reason)")
    sha, key = _request_for(repo, defect, rev)
    author = tickets.commit_info(repo, [sha])[sha]
    data: dict[str, Any] = {"key": key, "defect": defect, "commit": sha, "reason": reason,
                            "author": author.email}
    if via:
        data["via"] = via
    return Record(REJECT, data, by=by)


def _told(repo: git.Repo, cfg: Config, book: Ledger, stored: Sequence[Record],
          env: Mapping[str, str] | None) -> None:
    """After rejects are in the ledger: each author hears of it through the one
    notification interface (a local JSONL of notices by default: docs/qa.md), the
    trackers through one flush, and the ledger is pushed once."""
    notices = Outbox(repo.state_dir / NOTICES)
    notices.enqueue_many([(Notification(
        kind="regression", subject=f"{r.data['defect']} regressed in {r.data['commit'][:12]}",
        body=regression_text(r), recipients=(r.data["author"],),
        data={"defect": r.data["defect"], "commit": r.data["commit"],
              "reason": r.data["reason"]}), f"{r.data['key']}/author") for r in stored])
    notices.deliver(local_transport(notices.state_dir))
    flush(repo, cfg, book, env=env)
    if book.remote:
        book.push()


@dataclass(frozen=True)
class Synced:
    """What one sync took: [(defect, commit, verdict)], and one line per tracker that could
    not be asked (its tickets are asked again by the next sync)."""

    decided: list[tuple[str, str, str]]
    problems: tuple[str, ...] = ()


def sync(repo: git.Repo, cfg: Config, settings: Settings, *,
         env: Mapping[str, str] | None = None) -> Synced:
    """Decisions made in the trackers (a ticket resolved as done, or marked a
    regression) become ledger decisions. A tracker that cannot be made or fails is left
    out of this sync, with one line: the others' decisions are taken all the same."""
    book = ledger_of(repo, cfg)
    if book.remote:
        book.fetch()
    trackers, problems = trackers_of(cfg, env)
    out: list[tuple[str, str, str]] = []
    made: list[Record] = []  # written in one ledger commit, told and pushed once
    try:
        _decide(repo, settings, book, trackers, problems, out, made)
    except Exception:
        _write(repo, cfg, book, made, env)  # what was decided before the failure is kept
        raise
    _write(repo, cfg, book, made, env)
    return Synced(out, tuple(dict.fromkeys(problems)))


def _write(repo: git.Repo, cfg: Config, book: Ledger, made: list[Record],
           env: Mapping[str, str] | None) -> None:
    """One sync's decisions: one ledger commit, the rejects told, one push."""
    stored = book.append(made) if made else []
    rejected = [r for r in stored if r.type == REJECT]
    if rejected:
        _told(repo, cfg, book, rejected, env)
    elif stored and book.remote:
        book.push()


def _decide(repo: git.Repo, settings: Settings, book: Ledger, trackers: dict[str, Tracker],
            problems: list[str], out: list[tuple[str, str, str]], made: list[Record]
            ) -> None:
    """Ask each tracker about its undecided tickets; the decisions go to made."""
    decided = decisions(book)
    asked = requests(book)
    for (key, name), r in filed(book).items():
        if key in decided or key not in asked or name not in trackers:
            continue
        try:
            found = trackers[name].decision(Filed(name, str(r.data["id"]),
                                                  str(r.data["url"])))
        except TrackerError as exc:
            # Down, refusing or rate-limiting: asking it about its other tickets would
            # only repeat that (and lock an account, or deepen a rate limit).
            problems.append(redact.redact(" ".join(str(exc).split())))
            del trackers[name]
            continue
        if found is None:
            continue
        req, via = asked[key].data, f"{name} {r.data['id']}"
        if found.verdict == "accepted":
            made.append(_accepted(repo, settings, req["defect"], req["commit"],
                                  by=found.by, via=via))
        elif found.verdict == "rejected":
            made.append(_rejected(repo, req["defect"], req["commit"],
                                  found.reason or f"rejected in {via}", by=found.by, via=via))
        else:
            continue
        decided[key] = r
        out.append((req["defect"], req["commit"], found.verdict))
