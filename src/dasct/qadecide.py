"""QA's decisions: accept (the touching commit's new lines become the baseline), reject
(the defect regressed: its trackers and the commit's author hear of it), and sync (the
decisions made in the trackers). Each is a ledger record with who and when; qa.py has
the requests they decide and the sending (docs/qa.md, "Decisions").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dasct import check, git, redact, tickets
from dasct.config import Config
from dasct.errors import DasctError
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
from dasct.trackers import Filed, TrackerError


def _request_for(repo: git.Repo, defect: str, rev: str) -> tuple[str, str]:
    sha = git.rev_parse(repo, rev)
    return sha, tickets.ticket_key(defect, sha)


def accept(repo: git.Repo, cfg: Config, settings: Settings, defect: str, rev: str, *,
           by: str = "", via: str = "") -> Record:
    """QA accepts commit's touch of defect: the commit's `+` lines in the touching hunks
    become linked to defect (the new baseline)."""
    book = ledger_of(repo, cfg)
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
    (stored,) = book.append([Record(ACCEPT, data, by=by)])
    if book.remote:
        book.push()
    return stored


def reject(repo: git.Repo, cfg: Config, defect: str, rev: str, reason: str, *,
           by: str = "", via: str = "", env: Mapping[str, str] | None = None) -> Record:
    """QA rejects commit's touch: the defect regressed. The defect's trackers hear of it
    and the commit's author is notified."""
    if not reason.strip():
        raise DasctError("qa reject: say why (--reason)")
    book = ledger_of(repo, cfg)
    sha, key = _request_for(repo, defect, rev)
    author = tickets.commit_info(repo, [sha])[sha]
    data: dict[str, Any] = {"key": key, "defect": defect, "commit": sha, "reason": reason,
                            "author": author.email}
    if via:
        data["via"] = via
    (stored,) = book.append([Record(REJECT, data, by=by)])
    # The author hears of it through the one notification interface (a local JSONL of
    # notices by default: docs/qa.md); the trackers through flush.
    notices = Outbox(repo.state_dir / NOTICES)
    notices.enqueue(Notification(
        kind="regression", subject=f"{defect} regressed in {sha[:12]}",
        body=regression_text(stored), recipients=(author.email,),
        data={"defect": defect, "commit": sha, "reason": reason}), key=f"{key}/author")
    notices.deliver(local_transport(notices.state_dir))
    flush(repo, cfg, book, env=env)
    if book.remote:
        book.push()
    return stored


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
    decided = decisions(book)
    asked = requests(book)
    out: list[tuple[str, str, str]] = []
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
        req = asked[key].data
        if found.verdict == "accepted":
            accept(repo, cfg, settings, req["defect"], req["commit"], by=found.by,
                   via=f"{name} {r.data['id']}")
        elif found.verdict == "rejected":
            reject(repo, cfg, req["defect"], req["commit"], found.reason or "rejected in "
                   f"{name} {r.data['id']}", by=found.by, via=f"{name} {r.data['id']}",
                   env=env)
        else:
            continue
        decided[key] = r
        out.append((req["defect"], req["commit"], found.verdict))
    return Synced(out, tuple(dict.fromkeys(problems)))
