"""A Jira that answers the REST v2 endpoints dasct's Jira tracker calls, in memory.

Bodies are shaped as Atlassian's REST v2 reference shows them (create issue: 201
{"id", "key", "self"}; search: {"startAt", "maxResults", "total", "issues"}; search/jql:
{"issues", "isLast"}; comments: {"startAt", "maxResults", "total", "comments"};
transitions: {"expand", "transitions"}; a field error: 400 {"errorMessages", "errors"}).
"""

from __future__ import annotations

import base64
import re
from typing import Any

from trackers import Answer, FakeServer, Request

API = "/rest/api/2"
NOW = "2026-12-02T08:00:00.000+0000"
DONE = ("Done", "Closed", "Resolved")


def _r(path: str) -> re.Pattern[str]:
    return re.compile(API + path)


class FakeJira(FakeServer):
    """Server/Data Center (a personal access token) unless `email` is given (Cloud)."""

    def __init__(self, token: str, email: str = "", users: tuple[str, ...] = ("qa1", "qa2")
                 ) -> None:
        super().__init__()
        self.token, self.email, self.users = token, email, set(users)
        self.issues: dict[str, dict[str, Any]] = {}
        self.comments: dict[str, list[dict[str, Any]]] = {}
        self.links: list[dict[str, Any]] = []
        self._next = 10000
        self.can_delete = True  # the "Delete Issues" permission
        self.routes = [
            ("GET", _r("/search"), self.search),
            ("GET", _r("/search/jql"), self.search_jql),
            ("POST", _r("/issue"), self.create),
            ("GET", _r(r"/issue/([^/]+)"), self.get_issue),
            ("DELETE", _r(r"/issue/([^/]+)"), self.delete_issue),
            ("POST", _r("/issueLink"), self.link),
            ("GET", _r(r"/issue/([^/]+)/comment"), self.list_comments),
            ("POST", _r(r"/issue/([^/]+)/comment"), self.add_comment),
            ("GET", _r(r"/issue/([^/]+)/transitions"), self.transitions),
            ("POST", _r(r"/issue/([^/]+)/transitions"), self.transition),
        ]

    def auth_ok(self, request: Request) -> bool:
        if self.email:
            pair = base64.b64encode(f"{self.email}:{self.token}".encode()).decode()
            return request.auth == f"Basic {pair}"
        return request.auth == f"Bearer {self.token}"

    # -- state a test sets up -------------------------------------------------------

    def add_issue(self, key: str, *, status: str | dict[str, str] = "Open", reporter: str = "rep",
                  **fields: Any) -> dict[str, Any]:
        self._next += 1
        issue = {
            "id": str(self._next), "key": key, "self": f"{self.url}{API}/issue/{self._next}",
            "fields": {"summary": key, "description": "", "labels": [],
                       "status": {"name": status} if isinstance(status, str) else status,
                       "resolution": None, "assignee": None,
                       "reporter": self._user(reporter), "issuelinks": [],
                       "created": NOW, "updated": NOW, "resolutiondate": None, **fields},
        }
        self.issues[key] = issue
        self.comments.setdefault(key, [])
        return issue

    def _user(self, who: str) -> dict[str, Any]:
        return {"name": who, "accountId": f"acc-{who}", "displayName": who.title()}

    def _missing(self, key: str) -> Answer:
        return 404, {"errorMessages": ["Issue does not exist or you do not have permission "
                                       "to see it."], "errors": {}}, {}

    def _project(self, key: str) -> str:
        return key.rsplit("-", 1)[0]

    # -- endpoints ------------------------------------------------------------------

    def _matching(self, request: Request) -> list[dict[str, Any]]:
        match = re.fullmatch(
            r'project = "([A-Z0-9_]+)" AND labels = "([^"]+)" ORDER BY created ASC',
            request.arg("jql"))
        assert match, f"unexpected JQL {request.arg('jql')!r}"
        project, label = match.groups()
        found = [i for k, i in self.issues.items()
                 if self._project(k) == project and label in i["fields"]["labels"]]
        wanted = [f for f in request.arg("fields").split(",") if f]
        return [{"id": i["id"], "key": i["key"], "self": i["self"],
                 "fields": {f: i["fields"].get(f) for f in wanted}} for i in found]

    def search(self, request: Request) -> Answer:
        issues = self._matching(request)
        return 200, {"expand": "names,schema", "startAt": 0,
                     "maxResults": int(request.arg("maxResults") or 50),
                     "total": len(issues), "issues": issues}, {}

    def search_jql(self, request: Request) -> Answer:
        return 200, {"issues": self._matching(request), "isLast": True}, {}

    def create(self, request: Request) -> Answer:
        fields = request.body["fields"]
        errors = {}
        if "key" not in fields.get("project", {}):
            errors["project"] = "project is required"
        assignee = fields.get("assignee")
        if assignee is not None:
            who = assignee.get("accountId", "").removeprefix("acc-") or assignee.get("name")
            if who not in self.users:
                errors["assignee"] = f"User '{who}' does not exist."
        if errors:
            return 400, {"errorMessages": [], "errors": errors}, {}
        number = 1 + sum(1 for k in self.issues if self._project(k) == fields["project"]["key"])
        key = f"{fields['project']['key']}-{number}"
        issue = self.add_issue(key, summary=fields["summary"],
                               description=fields.get("description", ""),
                               labels=list(fields.get("labels", [])),
                               issuetype={"name": fields["issuetype"]["name"]},
                               assignee=(self._user(who) if assignee is not None else None))
        return 201, {"id": issue["id"], "key": key, "self": issue["self"]}, {}

    def get_issue(self, request: Request, key: str) -> Answer:
        if key not in self.issues:
            return self._missing(key)
        issue = self.issues[key]
        wanted = [f for f in request.arg("fields").split(",") if f] or list(issue["fields"])
        return 200, {"id": issue["id"], "key": key, "self": issue["self"],
                     "fields": {f: issue["fields"].get(f) for f in wanted}}, {}

    def delete_issue(self, request: Request, key: str) -> Answer:
        if key not in self.issues:
            return self._missing(key)
        if not self.can_delete:
            return 403, {"errorMessages": ["You do not have permission to delete issues in "
                                           "this project."], "errors": {}}, {}
        del self.issues[key]
        self.comments.pop(key, None)
        return 204, None, {}

    def link(self, request: Request) -> Answer:
        body = request.body
        inward, outward = body["inwardIssue"]["key"], body["outwardIssue"]["key"]
        if inward not in self.issues or outward not in self.issues:
            return 404, {"errorMessages": ["No issue with that key"], "errors": {}}, {}
        self.links.append(body)
        kind = {"name": body["type"]["name"]}
        self.issues[inward]["fields"]["issuelinks"].append(
            {"id": str(len(self.links)), "type": kind, "outwardIssue": {"key": outward}})
        self.issues[outward]["fields"]["issuelinks"].append(
            {"id": str(len(self.links)), "type": kind, "inwardIssue": {"key": inward}})
        return 201, None, {}

    def list_comments(self, request: Request, key: str) -> Answer:
        if key not in self.issues:
            return self._missing(key)
        start = int(request.arg("startAt") or 0)
        size = int(request.arg("maxResults") or 50)
        comments = self.comments[key]
        return 200, {"startAt": start, "maxResults": size, "total": len(comments),
                     "comments": comments[start:start + size]}, {}

    def add_comment(self, request: Request, key: str) -> Answer:
        if key not in self.issues:
            return self._missing(key)
        number = sum(len(c) for c in self.comments.values()) + 1
        comment = {"self": f"{self.url}{API}/issue/{key}/comment/{number}", "id": str(number),
                   "author": self._user("dasct-bot"), "body": request.body["body"],
                   "created": NOW, "updated": NOW}
        self.comments[key].append(comment)
        return 201, comment, {}

    def transitions(self, request: Request, key: str) -> Answer:
        if key not in self.issues:
            return self._missing(key)
        done = self.issues[key]["fields"]["status"]["name"] in DONE
        available = ([{"id": "3", "name": "Reopen Issue", "to": {"name": "Reopened"}}] if done
                     else [{"id": "5", "name": "Resolve Issue", "to": {"name": "Resolved"}}])
        return 200, {"expand": "transitions", "transitions": available}, {}

    def transition(self, request: Request, key: str) -> Answer:
        if key not in self.issues:
            return self._missing(key)
        to = {"3": "Reopened", "5": "Resolved"}.get(str(request.body["transition"]["id"]))
        if to is None:
            return 400, {"errorMessages": ["It seems that you have tried to perform a "
                                           "workflow operation that is not valid."],
                         "errors": {}}, {}
        self.issues[key]["fields"]["status"] = {"name": to}
        return 204, None, {}
