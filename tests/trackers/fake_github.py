"""A GitHub that answers the REST endpoints dasct's GitHub tracker calls, in memory.

Bodies are shaped as GitHub's REST reference shows them (an issue: number, state,
state_reason, html_url, url, user, labels, assignees, closed_by, closed_at...; lists
paginated with a Link header; 422 {"message": "Validation Failed", "errors": [...]};
a rate limit: 403 with X-RateLimit-Remaining 0 and X-RateLimit-Reset). `prefix` is the
API's path: "" as on api.github.com, "/api/v3" as on GitHub Enterprise Server.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from trackers import Answer, FakeServer, Request

NOW = "2026-12-02T08:00:00Z"


class FakeGitHub(FakeServer):
    def __init__(self, token: str, *, prefix: str = "", users: tuple[str, ...] = ("qa1",)
                 ) -> None:
        super().__init__()
        self.token, self.prefix, self.users = token, prefix, set(users)
        self.issues: dict[tuple[str, int], dict[str, Any]] = {}
        self.comments: dict[tuple[str, int], list[dict[str, Any]]] = {}
        repo = prefix + r"/repos/([\w.-]+/[\w.-]+)"
        self.routes = [
            ("GET", re.compile(repo + "/issues"), self.list_issues),
            ("POST", re.compile(repo + "/issues"), self.create),
            ("GET", re.compile(repo + r"/issues/(\d+)"), self.get_issue),
            ("PATCH", re.compile(repo + r"/issues/(\d+)"), self.edit),
            ("GET", re.compile(repo + r"/issues/(\d+)/comments"), self.list_comments),
            ("POST", re.compile(repo + r"/issues/(\d+)/comments"), self.add_comment),
            ("POST", re.compile(repo + r"/issues/(\d+)/labels"), self.add_labels),
        ]

    def auth_ok(self, request: Request) -> bool:
        return request.auth in (f"token {self.token}", f"Bearer {self.token}")

    @property
    def api(self) -> str:
        return self.url + self.prefix

    # -- state a test sets up -------------------------------------------------------

    def add_issue(self, repo: str, *, title: str = "", body: str = "", author: str = "rep",
                  labels: tuple[str, ...] = (), assignees: tuple[str, ...] = (),
                  state: str = "open", state_reason: str | None = None,
                  closed_by: str | None = None) -> dict[str, Any]:
        number = 1 + max((n for r, n in self.issues if r == repo), default=0)
        api = f"{self.api}/repos/{repo}/issues/{number}"
        issue = {
            "id": 1000 + len(self.issues), "node_id": f"I_{number}", "url": api,
            "repository_url": f"{self.api}/repos/{repo}", "comments_url": f"{api}/comments",
            "labels_url": f"{api}/labels{{/name}}", "events_url": f"{api}/events",
            "html_url": f"{self.url}/{repo}/issues/{number}", "number": number,
            "state": state, "state_reason": state_reason, "title": title or f"issue {number}",
            "body": body, "user": self._user(author), "labels": [self._label(x) for x in labels],
            "assignee": self._user(assignees[0]) if assignees else None,
            "assignees": [self._user(a) for a in assignees], "milestone": None, "locked": False,
            "comments": 0, "closed_at": NOW if state == "closed" else None,
            "created_at": NOW, "updated_at": NOW,
            "closed_by": self._user(closed_by) if closed_by else None,
            "author_association": "MEMBER",
        }
        self.issues[repo, number] = issue
        self.comments[repo, number] = []
        return issue

    def _user(self, login: str) -> dict[str, Any]:
        return {"login": login, "id": abs(hash(login)) % 10**6, "type": "User",
                "url": f"{self.api}/users/{login}", "html_url": f"{self.url}/{login}"}

    def _label(self, name: str) -> dict[str, Any]:
        return {"id": abs(hash(name)) % 10**6, "node_id": f"L_{name}", "name": name,
                "url": f"{self.api}/labels/{name}", "color": "ededed", "default": False,
                "description": None}

    def _find(self, repo: str, number: str) -> dict[str, Any] | None:
        return self.issues.get((repo, int(number)))

    def _missing(self) -> Answer:
        return 404, {"message": "Not Found",
                     "documentation_url": "https://docs.github.com/rest"}, {}

    def _page(self, request: Request, items: list[Any]) -> Answer:
        page, size = int(request.arg("page") or 1), int(request.arg("per_page") or 30)
        chunk = items[(page - 1) * size:page * size]
        headers = {}
        if page * size < len(items):
            query = {k: v[0] for k, v in request.query.items()}
            nxt = urlencode({**query, "page": page + 1, "per_page": size})
            headers["Link"] = f'<{self.url}{request.path}?{nxt}>; rel="next"'
        return 200, chunk, headers

    # -- endpoints ------------------------------------------------------------------

    def list_issues(self, request: Request, repo: str) -> Answer:
        wanted = [x for x in request.arg("labels").split(",") if x]
        state = request.arg("state") or "open"
        found = [i for (r, _), i in sorted(self.issues.items()) if r == repo
                 and (state == "all" or i["state"] == state)
                 and all(w in {lb["name"] for lb in i["labels"]} for w in wanted)]
        return self._page(request, found)

    def create(self, request: Request, repo: str) -> Answer:
        body = request.body
        refused = [a for a in body.get("assignees", []) if a not in self.users]
        if refused:
            return 422, {"message": "Validation Failed", "errors": [
                {"value": refused[0], "resource": "Issue", "field": "assignees",
                 "code": "invalid"}], "documentation_url": "https://docs.github.com/rest"}, {}
        issue = self.add_issue(repo, title=body["title"], body=body.get("body", ""),
                               author="dasct-bot", labels=tuple(body.get("labels", ())),
                               assignees=tuple(body.get("assignees", ())))
        return 201, issue, {}

    def get_issue(self, request: Request, repo: str, number: str) -> Answer:
        issue = self._find(repo, number)
        return (200, issue, {}) if issue else self._missing()

    def edit(self, request: Request, repo: str, number: str) -> Answer:
        issue = self._find(repo, number)
        if issue is None:
            return self._missing()
        if request.body.get("state") == "open" and issue["state"] == "closed":
            issue.update(state="open", state_reason="reopened", closed_at=None)
        return 200, issue, {}

    def list_comments(self, request: Request, repo: str, number: str) -> Answer:
        if self._find(repo, number) is None:
            return self._missing()
        return self._page(request, self.comments[repo, int(number)])

    def add_comment(self, request: Request, repo: str, number: str) -> Answer:
        issue = self._find(repo, number)
        if issue is None:
            return self._missing()
        n = sum(len(c) for c in self.comments.values()) + 1
        comment = {"id": n, "node_id": f"IC_{n}", "url": f"{self.api}/repos/{repo}/issues/"
                   f"comments/{n}", "html_url": f"{issue['html_url']}#issuecomment-{n}",
                   "body": request.body["body"], "user": self._user("dasct-bot"),
                   "created_at": NOW, "updated_at": NOW, "issue_url": issue["url"],
                   "author_association": "MEMBER"}
        self.comments[repo, int(number)].append(comment)
        issue["comments"] += 1
        return 201, comment, {}

    def add_labels(self, request: Request, repo: str, number: str) -> Answer:
        issue = self._find(repo, number)
        if issue is None:
            return self._missing()
        have = {lb["name"] for lb in issue["labels"]}
        # GitHub takes {"labels": [...]} or, as PyGithub sends it, the bare array.
        names = request.body["labels"] if isinstance(request.body, dict) else request.body
        issue["labels"] += [self._label(x) for x in names if x not in have]
        return 200, issue["labels"], {}
