"""Recording what lands: `dasct ci record` and the local post-commit recorder.

Every commit of a range, oldest first, as `check --commit` sees it (one forward walk:
walk.py), and per touched defect one revalidation request: its ticket (tickets.py) and
its evidence (evidence.py) written to the ledger before anything is sent (qa.flush;
the local tracker's tickets are filed in that same ledger commit). The cost follows the
range: one walk (whose own diff the tickets show), one cat-file for the blobs of all the
tickets' texts, one commit_info for every commit named, each fix commit's tests found
once, one ledger commit for all the requests (docs/benchmarks.md, "QA loop").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from dasct import catfile, check, evidence, git, redact, tickets, walk
from dasct.config import Config
from dasct.errors import DasctError
from dasct.ledger import Ledger
from dasct.ledger_record import Record
from dasct.qa import (
    CURSOR,
    EVIDENCE,
    REQUEST,
    Sent,
    flush,
    ledger_of,
    requests,
    sends_elsewhere,
    with_filed,
)
from dasct.settings import Settings


@dataclass(frozen=True)
class Recorded:
    """What one `ci record` did."""

    spec: str
    commits: int
    new: list[Record]  # the requests written
    known: int  # requests the range asked for that the ledger already had
    sent: Sent
    claims: tuple[str, ...] = ()  # warranty claims the range's fix commits recorded


def branch_name(repo: git.Repo) -> str:
    """The branch checked out, or HEAD when detached (CI checkouts often are)."""
    code, out = git.run_code("symbolic-ref", "-q", "--short", "HEAD", cwd=repo.root)
    return out.decode().strip() if code == 0 else "HEAD"


def cursor(book: Ledger, branch: str) -> str | None:
    """The last commit recorded on branch."""
    found = [r for r in book.records(CURSOR) if r.data.get("branch") == branch]
    return str(found[-1].data["commit"]) if found else None


def record(repo: git.Repo, cfg: Config, settings: Settings, spec: str | None, *,
           push: bool = True, env: Mapping[str, str] | None = None,
           branch: str | None = None) -> Recorded:
    """Record every commit of spec (A..B; None: after the last recorded one), oldest
    first: per touched defect one revalidation request with its ticket and evidence.
    Idempotent: a request the ledger has is not written or sent twice."""
    redact.configure(cfg)  # the trackers' credentials: kept from the tests it runs, too
    book = ledger_of(repo, cfg)
    if book.remote and push:
        book.fetch()
    sent = flush(repo, cfg, book, env=env)  # what an earlier run left waiting goes first
    branch = branch or branch_name(repo)
    if spec is None:
        last = cursor(book, branch)
        if last is None:
            raise DasctError(f"ci record: nothing recorded on {branch} yet: give the first "
                             "range with --range A..B (e.g. the push's before..after)")
        spec = f"{last}..HEAD"
    texts = _ChangeTexts(repo)
    try:
        steps = walk.each(repo, settings, spec, classified=texts.batch)
        texts.finish()
    finally:
        texts.close()
    have = requests(book)
    todo: list[tuple[walk.Step, dict[str, list[check.Finding]]]] = []
    known = 0
    for step in steps:
        by_defect: dict[str, list[check.Finding]] = {}
        for f in step.findings:
            by_defect.setdefault(f.defect, []).append(f)
        wanted = {d: found for d, found in by_defect.items()
                  if tickets.ticket_key(d, step.sha) not in have}
        known += len(by_defect) - len(wanted)
        if wanted:
            todo.append((step, wanted))
    new = _requests(repo, cfg, book, todo, texts.texts)
    # The local tracker's tickets are filed in the requests' own commit (no outbox).
    written, at_once = with_filed(cfg, new)
    end = git.rev_parse(repo, spec.partition("..")[2] or "HEAD")
    moved = [] if cursor(book, branch) == end else [Record(CURSOR, {"branch": branch,
                                                                     "commit": end})]
    if written or moved:
        book.append([*written, *moved])
    if new and sends_elsewhere(cfg):
        later = flush(repo, cfg, book, env=env)
        sent = replace(later, delivered=sent.delivered + later.delivered)
    sent = replace(sent, delivered=sent.delivered + at_once)
    if push and book.remote:
        book.push()
    return Recorded(spec, len(steps), new, known, sent, _claims(repo, cfg, steps))


def _claims(repo: git.Repo, cfg: Config, steps: Sequence[walk.Step]) -> tuple[str, ...]:
    """The warranty claims of the walked commits (migrate/warranty.py: a fix naming a
    defect of an enhancement under warranty), one line each."""
    if not steps:
        return ()
    from dasct import refs
    from dasct.migrate import warranty

    out = git.run("log", "--no-walk=unsorted", "--stdin", "-z", "--format=%H%x1f%B",
                  cwd=repo.root, input="".join(f"{s.sha}\n" for s in steps).encode())
    patterns = cfg.defects.compiled()
    fixes = []
    for record in out.decode("utf-8", "replace").split("\0"):
        sha, _, message = record.strip("\n").partition("\x1f")
        if sha:
            fixes.append((sha, refs.defect_keys(message, patterns)))
    lines: list[str] = []
    warranty.claims_from_fixes(cfg, repo.root, fixes, write=lines.append)
    return tuple(lines)


def record_locally(repo: git.Repo, cfg: Config, settings: Settings) -> Recorded | None:
    """The local recorder (`[qa] record_post_commit`): after the last recorded commit of
    the branch, or HEAD alone the first time; the ledger is not pushed (CI does)."""
    book = ledger_of(repo, cfg)
    last = cursor(book, branch_name(repo))
    if last is None:
        code, _ = git.run_code("rev-parse", "--verify", "-q", "HEAD~1", cwd=repo.root)
        if code != 0:
            return None  # the first commit touches nothing
        last = "HEAD~1"
    elif last == repo.head:
        return None
    return record(repo, cfg, settings, f"{last}..HEAD", push=False)


class _ChangeTexts:
    """The change each touching commit's tickets show (tickets.change_texts), for every
    defect it touches, made while the walk goes on: a batch's blobs are asked of git
    when the walk has classified it (one cat-file for the whole walk: catfile.py, on the
    other core while the replay reads the log), and its texts are made when the next
    batch comes, so only two batches of blobs are ever held."""

    def __init__(self, repo: git.Repo) -> None:
        self.repo = repo
        self.texts: dict[str, dict[str, str]] = {}  # commit -> defect -> change text
        self._git = catfile.Batches(repo.root)
        self._asked: tuple[list[walk.Step], catfile.Asked] | None = None

    def batch(self, steps: list[walk.Step]) -> None:
        self.finish()
        touching = [s for s in steps if s.findings]
        if touching:
            self._asked = touching, self._git.ask(
                tickets.blobs_of(c for s in touching for c in s.changes))

    def finish(self) -> None:
        """Make the texts of the batch asked for last."""
        if self._asked is None:
            return
        steps, reading = self._asked
        self._asked = None
        blobs = reading.result()
        for step in steps:
            by_defect: dict[str, list[check.Finding]] = {}
            for f in step.findings:
                by_defect.setdefault(f.defect, []).append(f)
            self.texts[step.sha] = tickets.change_texts(
                self.repo, step.parent, step.sha, by_defect, changes=step.changes,
                blobs=blobs)

    def close(self) -> None:
        """End git (at once if the walk failed with a batch asked for)."""
        self._git.close(kill=self._asked is not None)
        self._asked = None


def _requests(repo: git.Repo, cfg: Config, book: Ledger,
              todo: Sequence[tuple[walk.Step, Mapping[str, Sequence[check.Finding]]]],
              change_texts: Mapping[str, Mapping[str, str]]) -> list[Record]:
    """The request records of each (step, defect -> its findings) asked for, with the
    change texts made during the walk (_ChangeTexts)."""
    if not todo:
        return []
    fixes_of = {(step.sha, d): sorted({f.commit for f in found})
                for step, wanted in todo for d, found in wanted.items()}
    info = tickets.commit_info(repo, [*(step.sha for step, _ in todo),
                                      *sorted({c for v in fixes_of.values() for c in v})])
    proof = _Evidence(repo, cfg, book)
    proof.prefetch(sorted({c for v in fixes_of.values() for c in v}))
    out: list[Record] = []
    for step, wanted in todo:
        texts = change_texts[step.sha]
        for defect, found in wanted.items():
            fixes = fixes_of[step.sha, defect]
            outcome = proof.at(step.sha, defect, fixes)
            ticket = tickets.compose(
                defect=defect, touching=info[step.sha], parent=step.parent, found=found,
                fixes=[info[c] for c in fixes if c in info], change=texts[defect],
                evidence=evidence.ticket_section(outcome),
                probable_regression=outcome.status == "failed", assignee="",
                data={"lines": tickets.line_ranges(found), "touched": len(found),
                      "evidence": outcome.as_dict()},
            )
            out.append(Record(REQUEST, {
                "key": ticket.key, "defect": defect, "commit": step.sha,
                "parent": step.parent, "author": info[step.sha].email, "fixes": fixes,
                "ticket": ticket.to_dict()}))
    return out


class _Evidence:
    """The evidence of one recording: each fix commit's tests found once, each defect's
    trigger-test verifications read from the ledger once (and made once when missing)."""

    def __init__(self, repo: git.Repo, cfg: Config, book: Ledger) -> None:
        self.repo, self.cfg, self.book = repo, cfg, book
        self._tests: dict[str, list[str]] = {}
        self._verified: dict[tuple[str, str], Mapping[str, Any]] | None = None

    def prefetch(self, fixes: Sequence[str]) -> None:
        """Find the tests of all these fix commits in one git call."""
        self._tests.update(evidence.fix_tests_of(
            self.repo, [f for f in fixes if f not in self._tests], self.cfg.qa.test_globs))

    def tests(self, fixes: Sequence[str]) -> list[str]:
        for fix in fixes:
            if fix not in self._tests:
                self._tests[fix] = evidence.fix_tests(self.repo, [fix], self.cfg.qa.test_globs)
        return sorted({t for fix in fixes for t in self._tests[fix]})

    def at(self, sha: str, defect: str, fixes: Sequence[str]) -> evidence.Outcome:
        """The fix commits' tests run at sha (only the verified trigger tests when asked)."""
        checked: list[Mapping[str, Any]] = []
        if self.cfg.qa.verify_trigger_tests and self.cfg.qa.test_command:
            checked = self.verifications(defect, fixes)
        return evidence.evidence_at(self.repo, sha, fixes, self.cfg.qa, checked,
                                    tests=self.tests(fixes))

    def verifications(self, defect: str, fixes: Sequence[str]) -> list[Mapping[str, Any]]:
        if self._verified is None:
            self._verified = {(str(r.data.get("defect")), str(r.data.get("fix"))): r.data
                              for r in self.book.records(EVIDENCE)}
        out: list[Mapping[str, Any]] = []
        fresh: list[Record] = []
        for fix in fixes:
            data = self._verified.get((defect, fix))
            if data is None:
                data = {**evidence.verify_trigger_tests(
                    self.repo, fix, self.tests([fix]), self.cfg.qa),
                    "defect": defect}
                if not data.get("not_run"):
                    fresh.append(Record(EVIDENCE, data))
                    self._verified[defect, fix] = data
            out.append(data)
        if fresh:
            self.book.append(fresh)
        return out

