"""Revalidation tickets as GitHub issues, through PyGithub (docs/trackers.md#github-issues).

The client is lazy (no GET of the repository or an issue before a call needs its
fields), has no retries of its own (the outbox retries; a retried POST would make a
duplicate) and a timeout. The idempotency mark is a label, found through the issues list
(`GET /repos/o/r/issues?labels=...&state=all`), never the search API, whose index lags
behind a create by seconds to minutes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from dasct.trackers import Decision, Filed, Ticket, TrackerError
from dasct.trackers.http_errors import NotFound, clean, require, status_error
from dasct.trackers.jira import key_label, marker

if TYPE_CHECKING:
    from dasct.qaconfig import GithubTracker, QaConfig

DEFAULT_API = "https://api.github.com"
# "#45" (the configured repository) or "owner/name#45"
ISSUE_REF = re.compile(r"(?:(?P<repo>[\w.-]+/[\w.-]+))?#(?P<number>[1-9][0-9]*)")


class GitHub:
    """A Tracker on one GitHub repository (github.com or an Enterprise server)."""

    name = "github"

    def __init__(self, cfg: GithubTracker, env: Mapping[str, str], *, pace: bool = True
                 ) -> None:
        """pace=False drops PyGithub's pause between requests (0.25 s, 1 s between
        writes: GitHub's advice against its secondary rate limits); tests only."""
        if not cfg.repository:
            raise TrackerError("github: [qa.github] repository is not set")
        require(self.name, "github", "PyGithub", "github")
        self.cfg = cfg
        self.url = (cfg.base_url or DEFAULT_API).rstrip("/")
        self.token = env.get(cfg.token_env, "")
        if not self.token:
            raise TrackerError(f"github: {cfg.token_env} is not set (the GitHub token)")
        self.pace = pace
        # PyGithub asserts an int: a fraction rounds up, never to 0 (no timeout).
        self.timeout = max(1, math.ceil(cfg.timeout_seconds))
        self._client: Any = None

    # -- the client and its errors --------------------------------------------------

    @property
    def client(self) -> Any:
        if self._client is None:
            from github import Auth, Github

            pauses: dict[str, Any] = {} if self.pace else {
                "seconds_between_requests": None, "seconds_between_writes": None}
            self._client = Github(auth=Auth.Token(self.token), base_url=self.url,
                                  timeout=self.timeout, retry=None, lazy=True, **pauses)
        return self._client

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Every failure as one Protocol error, built from the status, never from the
        library's text (`from None`: its context may quote the request)."""
        import requests
        from github import GithubException

        try:
            yield
        except GithubException as e:
            headers = {k.lower(): v for k, v in (e.headers or {}).items()}
            data = e.data if isinstance(e.data, dict) else {}
            message = str(data.get("message", ""))
            limited = e.status == 403 and (headers.get("x-ratelimit-remaining") == "0"
                                           or "retry-after" in headers
                                           or "rate limit" in message.lower())
            raise status_error(self.name, e.status, headers, what=what, url=self.url,
                               token_env=self.cfg.token_env, secrets=(self.token,),
                               rate_limited=limited, detail=message[:200]) from None
        except requests.Timeout:
            raise TrackerError(clean(f"github: {what}: no answer from {self.url} within "
                                     f"{self.timeout}s", (self.token,))) from None
        except requests.RequestException as e:
            raise TrackerError(clean(f"github: {what}: cannot reach {self.url} "
                                     f"({type(e).__name__})", (self.token,))) from None

    def _issue(self, repository: str, number: int) -> Any:
        return self.client.get_repo(repository).get_issue(number)  # lazy: no request yet

    def _ref(self, defect: str) -> tuple[str, int] | None:
        match = ISSUE_REF.fullmatch(defect)
        if not match:
            return None
        return match.group("repo") or self.cfg.repository, int(match.group("number"))

    # -- the Protocol ---------------------------------------------------------------

    def file(self, ticket: Ticket) -> Filed:
        """Find the issue labelled with ticket.key, else create it; then make sure the
        defect's comment exists (a retry completes what a crash left)."""
        label = key_label(ticket.key)
        repo = self.client.get_repo(self.cfg.repository)
        with self._errors(f"looking for {label}"):
            # oldest first, should two writers ever have raced
            issue = next(iter(repo.get_issues(labels=[label], state="all", sort="created",
                                              direction="asc")), None)
        if issue is None:
            issue = self._create(repo, ticket, label)
        number, url = int(issue.number), str(issue.html_url)
        ref = self._ref(ticket.defect)
        if ref and ref != (self.cfg.repository, number):
            mine = f"{self.cfg.repository}#{number}"
            text = (f"dasct: this defect's protected lines were changed by commit "
                    f"{ticket.commit[:12]}; revalidation requested in {mine} ({url}).")
            try:
                self._comment_once(*ref, key=ticket.key, text=text)
            except NotFound as e:
                # A wrong number, a repository the token cannot see, a deleted issue: no
                # retry fixes that, so the ticket says it and is filed.
                self._comment_once(self.cfg.repository, number, key=f"missing:{ticket.key}",
                                   text=f"dasct: could not comment on {ticket.defect}: {e}")
        return Filed(self.name, str(number), url)

    def decision(self, filed: Filed) -> Decision | None:
        """Rejected by a reject label or closed as not planned; accepted when closed as
        completed (or with no reason); None while open."""
        try:
            with self._errors(f"reading {self.cfg.repository}#{filed.id}"):
                issue = self._issue(self.cfg.repository, int(filed.id))
                labels = [label.name for label in issue.labels]
                state, reason = issue.state, issue.state_reason
                by = issue.closed_by.login if issue.closed_by is not None else ""
                when = issue.closed_at or issue.updated_at
        except NotFound:
            return None  # deleted, or out of the token's sight: QA decides elsewhere
        at = when.isoformat() if when is not None else ""
        rejected = [x for x in labels if x in self.cfg.reject_labels]
        if rejected:
            return Decision("rejected", by, at, f"label {rejected[0]}")
        if state != "closed":
            return None
        if reason == "not_planned":
            return Decision("rejected", by, at, "closed as not planned")
        if reason in (None, "completed"):
            return Decision("accepted", by, at, "closed as completed")
        return None  # closed as a duplicate, or a reason GitHub adds later: QA decides here

    def regressed(self, defect: str, text: str, key: str) -> None:
        """Comment on the defect issue (once per key), reopen it, add the reject label."""
        ref = self._ref(defect)
        if ref is None:
            return  # not a GitHub issue: nothing of it lives here
        try:
            self._comment_once(*ref, key=key, text=text)
        except NotFound:
            return  # no such defect here: retrying would not make one
        with self._errors(f"reopening {ref[0]}#{ref[1]}"):
            issue = self._issue(*ref)
            if issue.state == "closed":
                issue.edit(state="open")
            names = {label.name for label in issue.labels}
            wanted = self.cfg.reject_labels[:1]
            if wanted and wanted[0] not in names:
                issue.add_to_labels(wanted[0])

    def owner(self, defect: str) -> str | None:
        """The login of the defect issue's author."""
        ref = self._ref(defect)
        if ref is None:
            return None
        try:
            with self._errors(f"reading {ref[0]}#{ref[1]}"):
                user = self._issue(*ref).user
        except NotFound:
            return None
        return str(user.login) if user is not None else None

    # -- the steps ------------------------------------------------------------------

    def _create(self, repo: Any, ticket: Ticket, label: str) -> Any:
        """Create the issue; an assignee GitHub refuses (422 on assignees) leaves it
        unassigned rather than unfiled."""
        from github import GithubException

        labels = [*dict.fromkeys((*self.cfg.labels, *ticket.labels, label))]
        fields: dict[str, Any] = {"title": ticket.title[:256], "body": ticket.body,
                                  "labels": labels}
        with self._errors(f"creating the issue for {ticket.defect}"):
            if ticket.assignee:
                try:
                    return repo.create_issue(**fields, assignees=[ticket.assignee])
                except GithubException as e:
                    if e.status != 422 or "assignee" not in str(e.data):
                        raise
            return repo.create_issue(**fields)

    def _comment_once(self, repository: str, number: int, *, key: str, text: str) -> None:
        """Comment text on the issue, with key's marker, unless a comment carries it."""
        mark = marker(key)
        with self._errors(f"commenting on {repository}#{number}"):
            issue = self._issue(repository, number)
            if not any(mark in (c.body or "") for c in issue.get_comments()):
                issue.create_comment(f"{text}\n\n{mark}")


def make(cfg: QaConfig, env: Mapping[str, str]) -> GitHub:
    """The GitHub tracker of cfg.github, with its token read from env."""
    return GitHub(cfg.github, env)
