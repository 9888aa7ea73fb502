"""Revalidation tickets as Jira issues, through the `jira` library (docs/trackers.md#jira).

The client is built lean: no server-info call, no retries of its own (the outbox
retries; a retried POST would make a duplicate), a timeout on every call, and only calls
that name issues by key, so it makes no hidden look-ups. Where a library helper would
look something up first (create_issue resolving a project key, create_issue_link
resolving link-type names, search_issues reading the field list), the documented REST
body goes through the client's own session instead (same auth, timeout and errors).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from dasct.trackers import Decision, Filed, Ticket, TrackerError
from dasct.trackers.http_errors import NotFound, clean, require, status_error

if TYPE_CHECKING:
    from dasct.qaconfig import JiraTracker, QaConfig

JIRA_KEY = re.compile(r"[A-Z][A-Z0-9_]*-[1-9][0-9]*")
REOPEN = ("reopen", "reopen issue")  # the transition names of Jira's default workflows
_LABEL_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def key_label(key: str) -> str:
    """The label that marks the ticket of idempotency key `key` (Jira and GitHub).

    Labels hold no spaces (Jira) and at most 50 characters (GitHub): a key that does not
    fit is replaced by its SHA-256 prefix, still one label per key. A key that carries the
    prefix already (tickets.ticket_key: `dasct-` and 20 hex digits) is the label itself.
    """
    if len(key) <= 50 and key.startswith("dasct-") and not _LABEL_UNSAFE.search(key):
        return key
    if len(key) <= 44 and not _LABEL_UNSAFE.search(key):
        return f"dasct-{key}"
    import hashlib

    return f"dasct-{hashlib.sha256(key.encode()).hexdigest()[:40]}"


def marker(key: str) -> str:
    """What a comment dasct writes carries, so a retry finds the one it wrote."""
    return f"[{key_label(key)}]"


class Jira:
    """A Tracker on one Jira site; the client is made at the first call."""

    name = "jira"

    def __init__(self, cfg: JiraTracker, env: Mapping[str, str]) -> None:
        if not cfg.url:
            raise TrackerError("jira: [qa.jira] url is not set")
        if not cfg.project:
            raise TrackerError("jira: [qa.jira] project is not set")
        require(self.name, "jira", "the jira library", "jira")
        self.cfg = cfg
        self.url = cfg.url.rstrip("/")
        self.cloud = bool(cfg.email_env)
        self.token = env.get(cfg.token_env, "")
        if not self.token:
            raise TrackerError(f"jira: {cfg.token_env} is not set (the Jira API token)")
        self.email = env.get(cfg.email_env, "") if cfg.email_env else ""
        if self.cloud and not self.email:
            raise TrackerError(f"jira: {cfg.email_env} is not set (the Jira Cloud account)")
        self._client: Any = None

    # -- the client and its errors --------------------------------------------------

    @property
    def client(self) -> Any:
        if self._client is None:
            from jira import JIRA

            auth: dict[str, Any] = (
                {"basic_auth": (self.email, self.token)} if self.cloud
                else {"token_auth": self.token})
            self._client = JIRA(server=self.url, get_server_info=False, max_retries=0,
                                timeout=self.cfg.timeout_seconds, **auth)
        return self._client

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Every failure as one Protocol error; `from None`: the library's exception (and
        its context) quotes the request headers, the token among them."""
        import requests
        from jira.exceptions import JIRAError

        try:
            yield
        except JIRAError as e:
            headers = dict(e.response.headers) if e.response is not None else {}
            raise status_error(self.name, e.status_code, headers, what=what, url=self.url,
                               token_env=self.cfg.token_env, secrets=(self.token,),
                               detail=(e.text or "")[:200]) from None
        except requests.JSONDecodeError:
            raise TrackerError(clean(f"jira: {what}: {self.url} answered something else than "
                                     "JSON (is url the Jira base URL?)", (self.token,))) from None
        except requests.Timeout:
            raise TrackerError(clean(f"jira: {what}: no answer from {self.url} within "
                                     f"{self.cfg.timeout_seconds:g}s", (self.token,))) from None
        except requests.RequestException as e:
            raise TrackerError(clean(f"jira: {what}: cannot reach {self.url} "
                                     f"({type(e).__name__})", (self.token,))) from None

    def _get(self, path: str, want: str, **params: Any) -> dict[str, Any]:
        """GET path; the answer must hold `want` (a list or an object): an answer without
        it (a proxy's page, another service) read as "nothing there" would file twice."""
        client = self.client
        answer = client._session.get(client._get_url(path), params=params).json()
        if not isinstance(answer, dict) or not isinstance(answer.get(want), list | dict):
            raise TrackerError(clean(f"jira: unexpected answer from {self.url}: no {want!r} "
                                     f"in GET {path}", (self.token,)))
        return answer

    def _post(self, path: str, body: Mapping[str, Any]) -> Any:
        import json

        client = self.client
        response = client._session.post(client._get_url(path), data=json.dumps(body))
        return response.json() if response.content else None

    # -- the Protocol ---------------------------------------------------------------

    def file(self, ticket: Ticket) -> Filed:
        """Find the ticket labelled with ticket.key, else create it; then make sure the
        link and the defect's comment exist (a retry completes what a crash left)."""
        label = key_label(ticket.key)
        with self._errors(f"looking for {label}"):
            # The project bounds the query (Cloud's search/jql refuses unbounded JQL);
            # oldest first, should two writers ever have raced.
            found = self._search(f'project = "{self.cfg.project}" AND labels = "{label}" '
                                 "ORDER BY created ASC", ["labels", "issuelinks"])
        if found:
            key, links = found[0]["key"], found[0]["fields"].get("issuelinks") or []
        else:
            key, links = self._first_of_a_race(label, self._create(ticket, label))
        url = f"{self.url}/browse/{key}"
        if JIRA_KEY.fullmatch(ticket.defect) and ticket.defect != key:
            try:
                self._tell_defect(ticket, key, url, links)
            except NotFound as e:
                # A typo'd or foreign key, a deleted defect, an unknown link type: no
                # retry fixes that, so the ticket says it and is filed.
                self._comment_once(key, f"missing:{ticket.key}", (
                    f"dasct: could not link or comment on {ticket.defect}: {e}"))
        return Filed(self.name, key, url)

    def _first_of_a_race(self, label: str, mine: str) -> tuple[str, list[dict[str, Any]]]:
        """After a create, the oldest ticket with the label: two recorders that searched
        before either created (two CI jobs on one push) each made one. The later one
        sees the earlier, deletes its own and files under the earlier; without the right
        to delete, it says on its own ticket which one holds the revalidation."""
        with self._errors(f"looking for {label} again"):
            found = self._search(f'project = "{self.cfg.project}" AND labels = "{label}" '
                                 "ORDER BY created ASC", ["labels", "issuelinks"])
        if not found or found[0]["key"] == mine:
            return mine, []
        first = str(found[0]["key"])
        from jira.exceptions import JIRAError

        client = self.client
        refused = False
        with self._errors(f"deleting {mine}, a duplicate of {first}"):
            try:
                client._session.delete(client._get_url(f"issue/{mine}"))
            except JIRAError as e:
                if e.status_code not in (403, 404):
                    raise
                refused = e.status_code == 403  # 404: gone already
        if refused:
            with self._errors(f"commenting on {mine}"):
                self.client.add_comment(mine, f"dasct: duplicate of {first}, made by two "
                                        "recorders at once; the revalidation is there: close "
                                        "this one.")
        return first, found[0]["fields"].get("issuelinks") or []

    def _tell_defect(self, ticket: Ticket, key: str, url: str,
                     links: list[dict[str, Any]]) -> None:
        """The link from ticket to defect and the defect's comment, each unless there."""
        linked = {(link.get(side) or {}).get("key") for link in links
                  for side in ("inwardIssue", "outwardIssue")}
        if ticket.defect not in linked:
            with self._errors(f"linking {key} to {ticket.defect}"):
                # issueLink by type *name* as documented; create_issue_link would first
                # GET every link type to translate names.
                self._post("issueLink", {"type": {"name": self.cfg.link_type},
                                         "inwardIssue": {"key": key},
                                         "outwardIssue": {"key": ticket.defect}})
        text = (f"dasct: this defect's protected lines were changed by commit "
                f"{ticket.commit[:12]}; revalidation requested in {key} ({url}).")
        self._comment_once(ticket.defect, ticket.key, text)

    def decision(self, filed: Filed) -> Decision | None:
        """Accepted when the status is an accept status, unless the resolution or a label
        says regression; None while the ticket is open."""
        try:
            with self._errors(f"reading {filed.id}"):
                fields = self._get(f"issue/{filed.id}", "fields", fields=(
                    "status,resolution,labels,assignee,resolutiondate,updated"))["fields"]
        except NotFound:
            return None  # deleted, or moved out of the token's sight: QA decides elsewhere
        status = (fields.get("status") or {}).get("name", "")
        if status not in self.cfg.accept_statuses:
            return None
        resolution = (fields.get("resolution") or {}).get("name", "")
        labels = [x for x in fields.get("labels") or () if x in self.cfg.reject_labels]
        by = (fields.get("assignee") or {}).get("displayName", "")
        at = fields.get("resolutiondate") or fields.get("updated") or ""
        if resolution in self.cfg.reject_resolutions:
            return Decision("rejected", by, at, f"resolution {resolution}")
        if labels:
            return Decision("rejected", by, at, f"label {labels[0]}")
        return Decision("accepted", by, at, f"status {status}")

    def regressed(self, defect: str, text: str, key: str) -> None:
        """Comment on the defect (once per key) and reopen it when its workflow can."""
        if not JIRA_KEY.fullmatch(defect):
            return  # not a Jira issue: nothing of it lives here
        try:
            self._comment_once(defect, key, text)
        except NotFound:
            return  # no such defect here: retrying would not make one
        with self._errors(f"reading the transitions of {defect}"):
            transitions = self._get(f"issue/{defect}/transitions", "transitions")["transitions"]
        ids = [t["id"] for t in transitions if str(t.get("name", "")).lower() in REOPEN]
        if ids:
            with self._errors(f"reopening {defect}"):
                self._post(f"issue/{defect}/transitions", {"transition": {"id": ids[0]}})

    def owner(self, defect: str) -> str | None:
        """The configured owner field of the defect, else its reporter."""
        if not JIRA_KEY.fullmatch(defect):
            return None
        field = self.cfg.owner_field or "reporter"
        try:
            with self._errors(f"reading {defect}"):
                user = self._get(f"issue/{defect}", "fields", fields=field)["fields"].get(field)
        except NotFound:
            return None
        if not isinstance(user, Mapping):
            return str(user) if isinstance(user, str) and user else None
        who = user.get("accountId") if self.cloud else user.get("name")
        return str(who) if who else None

    # -- the steps ------------------------------------------------------------------

    def _search(self, jql: str, fields: list[str]) -> list[dict[str, Any]]:
        # Cloud retired GET /search for /search/jql; Server/Data Center has only /search.
        # search_issues would choose by server info (not read: get_server_info=False) and
        # read the whole field list first.
        path = "search/jql" if self.cloud else "search"
        answer = self._get(path, "issues", jql=jql, fields=",".join(fields), maxResults=1)
        issues: list[dict[str, Any]] = answer["issues"]
        return issues

    def _create(self, ticket: Ticket, label: str) -> str:
        """Create the ticket; an assignee the server refuses leaves it unassigned, said in
        a comment on it."""
        fields: dict[str, Any] = {
            "project": {"key": self.cfg.project},  # a dict: create_issue looks up a str
            "issuetype": {"name": self.cfg.issue_type},
            "summary": " ".join(ticket.title.split())[:255],  # one line, Jira's limit
            "description": ticket.body,
            "labels": [*dict.fromkeys((*ticket.labels, label))],
        }
        if ticket.assignee:
            fields["assignee"] = ({"accountId": ticket.assignee} if self.cloud
                                  else {"name": ticket.assignee})
        refused = ""
        from jira.exceptions import JIRAError

        with self._errors(f"creating the ticket for {ticket.defect}"):
            try:
                created = self.client.create_issue(fields=fields, prefetch=False)
            except JIRAError as e:
                if e.status_code != 400 or "assignee" not in fields or not _about_assignee(e):
                    raise
                refused = fields.pop("assignee")
                created = self.client.create_issue(fields=fields, prefetch=False)
        key = str(created.key)
        if refused:
            with self._errors(f"commenting on {key}"):
                self.client.add_comment(key, f"dasct: Jira refused the assignee "
                                             f"{ticket.assignee!r}; the ticket is unassigned.")
        return key

    def _comment_once(self, issue: str, key: str, text: str) -> None:
        """Comment text on issue, with key's marker, unless a comment carries it already."""
        mark = marker(key)
        with self._errors(f"reading the comments of {issue}"):
            start = 0
            while True:
                page = self._get(f"issue/{issue}/comment", "comments", startAt=start,
                                 maxResults=100)
                comments = page["comments"]
                if any(mark in str(c.get("body", "")) for c in comments):
                    return
                start += len(comments)
                if not comments or start >= int(page.get("total", 0)):
                    break
        with self._errors(f"commenting on {issue}"):
            self.client.add_comment(issue, f"{text}\n\n{mark}")


def _about_assignee(error: Any) -> bool:
    """A 400 whose errors name the assignee field (Jira: {"errors": {"assignee": ...}})."""
    try:
        errors = error.response.json().get("errors") or {}
    except (AttributeError, ValueError):
        return False
    return "assignee" in errors


def make(cfg: QaConfig, env: Mapping[str, str]) -> Jira:
    """The Jira tracker of cfg.jira, with its credentials read from env."""
    return Jira(cfg.jira, env)
