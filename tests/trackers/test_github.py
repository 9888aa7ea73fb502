"""The GitHub tracker: real PyGithub against a loopback GitHub (fake_github.py)."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dasct.qaconfig import GithubTracker, QaConfig
from dasct.trackers import CredentialsRefused, Filed, RetryLater, Ticket, TrackerError
from dasct.trackers.github import GitHub, make
from dasct.trackers.jira import marker
from trackers.fake_github import FakeGitHub

TOKEN = "ghp_Fake9Token0Value1234"
ENV = {"DASCT_GITHUB_TOKEN": TOKEN}
REPO = "acme/app"


def ticket(key: str = "k1", defect: str = "#1", **kw: object) -> Ticket:
    return Ticket(key=key, defect=defect, commit="c0ffee" * 6 + "abcd",
                  title=f"Revalidate {defect} after c0ffeec0ffee",
                  body="Protected lines changed:\n```diff\n-a\n+b\n```", **kw)  # type: ignore[arg-type]


def qa(server: FakeGitHub, **github: object) -> QaConfig:
    return QaConfig(trackers=("github",), github=GithubTracker(**{
        "repository": REPO, "base_url": server.api, "timeout_seconds": 10.0, **github}))  # type: ignore[arg-type]


def tracker(server: FakeGitHub, env: dict[str, str] = ENV, **github: object) -> GitHub:
    return GitHub(qa(server, **github).github, env, pace=False)


@pytest.fixture
def server() -> Iterator[FakeGitHub]:
    with FakeGitHub(TOKEN) as fake:
        fake.add_issue(REPO, title="crash on save", author="reporter1", state="closed",
                       state_reason="completed", closed_by="dev1")  # the defect, #1
        yield fake  # type: ignore[misc]


def test_file_creates_and_comments(server: FakeGitHub) -> None:
    filed = tracker(server).file(ticket(assignee="qa1", labels=("urgent",)))
    assert filed == Filed("github", "2", f"{server.url}/{REPO}/issues/2")
    (search,) = server.calls("GET", f"/repos/{REPO}/issues")
    assert {k: v for k, v in search.query.items() if k != "per_page"} == {
        "labels": ["dasct-k1"], "state": ["all"], "sort": ["created"], "direction": ["asc"]}
    (create,) = server.calls("POST", f"/repos/{REPO}/issues")
    assert create.body == {"title": "Revalidate #1 after c0ffeec0ffee",
                           "body": "Protected lines changed:\n```diff\n-a\n+b\n```",
                           "labels": ["dasct-revalidation", "urgent", "dasct-k1"],
                           "assignees": ["qa1"]}
    (comment,) = server.calls("POST", f"/repos/{REPO}/issues/1/comments")
    assert f"{REPO}#2" in comment.body["body"] and marker("k1") in comment.body["body"]
    assert filed.url in comment.body["body"]
    # lazy objects: no GET of the repository nor of an issue before it is needed
    assert server.calls("GET", f"/repos/{REPO}") == []
    assert {r.auth for r in server.requests} == {f"token {TOKEN}"}


def test_file_twice_files_once(server: FakeGitHub) -> None:
    first = tracker(server).file(ticket())
    assert make(qa(server), ENV).file(ticket()) == first
    assert sorted(n for _, n in server.issues) == [1, 2]
    assert len(server.comments[REPO, 1]) == 1


def test_create_answered_too_late_is_found_by_the_retry(server: FakeGitHub) -> None:
    server.stall(3.0, when=rf"POST /repos/{REPO}/issues$")
    github = tracker(server, timeout_seconds=0.5)  # PyGithub takes whole seconds: 1
    with pytest.raises(TrackerError, match=r"no answer from .* within 1s"):
        github.file(ticket())
    assert (REPO, 2) in server.issues  # created though the answer never came
    assert github.file(ticket()).id == "2"
    assert len(server.calls("POST", f"/repos/{REPO}/issues")) == 1
    assert len(server.comments[REPO, 1]) == 1


def test_refused_assignee_files_unassigned(server: FakeGitHub) -> None:
    filed = tracker(server).file(ticket(assignee="nobody"))
    creates = server.calls("POST", f"/repos/{REPO}/issues")
    assert [c.body.get("assignees") for c in creates] == [["nobody"], None]
    assert server.issues[REPO, int(filed.id)]["assignees"] == []


def test_defect_in_another_repository(server: FakeGitHub) -> None:
    server.add_issue("acme/lib")
    tracker(server).file(ticket(defect="acme/lib#1"))
    (comment,) = server.comments["acme/lib", 1]
    assert f"{REPO}#2" in comment["body"]
    assert server.comments[REPO, 1] == []


def test_a_jira_defect_gets_no_comment(server: FakeGitHub) -> None:
    assert tracker(server).file(ticket(defect="MNG-7")).id == "2"
    assert server.calls(path=r".*/comments") == []


def test_marker_is_found_on_a_later_page(server: FakeGitHub) -> None:
    server.comments[REPO, 1] = [{"id": i, "body": f"note {i}"} for i in range(40)]
    server.comments[REPO, 1].append({"id": 40, "body": f"earlier {marker('r1')}"})
    tracker(server).regressed("#1", "again", "r1")
    assert len(server.comments[REPO, 1]) == 41
    assert [r.arg("page") for r in server.calls("GET", r".*/issues/1/comments")] == ["", "2"]


@pytest.mark.parametrize(("state", "reason", "labels", "verdict", "why"), [
    ("open", None, (), None, ""),
    ("open", "reopened", ("regression",), "rejected", "label regression"),
    ("closed", "completed", (), "accepted", "closed as completed"),
    ("closed", None, (), "accepted", "closed as completed"),
    ("closed", "not_planned", (), "rejected", "closed as not planned"),
    ("closed", "completed", ("regression",), "rejected", "label regression"),
    ("closed", "duplicate", (), None, ""),
])
def test_decision(server: FakeGitHub, state: str, reason: str | None,
                  labels: tuple[str, ...], verdict: str | None, why: str) -> None:
    issue = server.add_issue(REPO, state=state, state_reason=reason, labels=labels,
                             closed_by="quinn" if state == "closed" else None)
    decision = tracker(server).decision(Filed("github", str(issue["number"])))
    if verdict is None:
        assert decision is None
    else:
        assert decision is not None
        assert (decision.verdict, decision.reason) == (verdict, why)
        assert decision.by == ("quinn" if state == "closed" else "")
        assert decision.at.startswith("2026-12-02T08:00:00")


def test_regressed_comments_once_reopens_and_labels(server: FakeGitHub) -> None:
    github = tracker(server)
    github.regressed("#1", "Regressed by c0ffee: the fix test fails.", "r1")
    issue = server.issues[REPO, 1]
    assert issue["state"] == "open"
    assert [lb["name"] for lb in issue["labels"]] == ["regression"]
    (edit,) = server.calls("PATCH", f"/repos/{REPO}/issues/1")
    assert edit.body == {"state": "open"}
    github.regressed("#1", "Regressed by c0ffee: the fix test fails.", "r1")
    (comment,) = server.comments[REPO, 1]
    assert comment["body"].startswith("Regressed by c0ffee") and marker("r1") in comment["body"]
    assert len(server.calls("PATCH")) == 1 and len(server.calls("POST", r".*/labels")) == 1
    asked = len(server.requests)
    github.regressed("PROJ-1", "not ours", "r2")  # a Jira key: nothing to do here
    assert len(server.requests) == asked


def test_owner_is_the_author(server: FakeGitHub) -> None:
    assert tracker(server).owner("#1") == "reporter1"
    assert tracker(server).owner("MNG-1") is None
    assert tracker(server).owner("#9") is None  # no such issue here


def test_enterprise_prefix() -> None:
    with FakeGitHub(TOKEN, prefix="/api/v3") as ghe:
        ghe.add_issue(REPO)
        filed = tracker(ghe).file(ticket())
        assert filed.id == "2"
        assert ghe.requests and all(r.path.startswith("/api/v3/repos/") for r in ghe.requests)


def test_refused_credentials_name_the_variable_not_the_token(server: FakeGitHub) -> None:
    wrong = "ghp_wrong_Hk3m9Pq2xx"
    with pytest.raises(CredentialsRefused) as err:
        tracker(server, {"DASCT_GITHUB_TOKEN": wrong}).file(ticket())
    assert str(err.value) == (f"github: credentials refused for {server.api} "
                              "(check DASCT_GITHUB_TOKEN)")
    assert err.value.__suppress_context__ and wrong not in repr(err.value)
    server.fail(403, body={"message": "Resource not accessible by integration"})
    with pytest.raises(CredentialsRefused):
        tracker(server).owner("#1")


def test_missing_token_names_the_variable(server: FakeGitHub) -> None:
    with pytest.raises(TrackerError, match=r"^github: DASCT_GITHUB_TOKEN is not set"):
        make(qa(server), {})
    with pytest.raises(TrackerError, match=r"repository is not set"):
        make(QaConfig(), ENV)


def test_rate_limits_wait_the_servers_time(server: FakeGitHub) -> None:
    server.fail(429, headers={"Retry-After": "17"})
    with pytest.raises(RetryLater) as err:
        tracker(server).file(ticket())
    assert err.value.seconds == 17
    reset = int(time.time()) + 120
    server.fail(403, headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)},
                body={"message": "API rate limit exceeded for user ID 1."})
    with pytest.raises(RetryLater) as err:
        tracker(server).file(ticket())
    assert 110 <= err.value.seconds <= 120
    server.fail(403, headers={"Retry-After": "5"},
                body={"message": "You have exceeded a secondary rate limit."})
    with pytest.raises(RetryLater) as err:
        tracker(server).file(ticket())
    assert err.value.seconds == 5
    assert len(server.requests) == 3  # the client retried nothing on its own
    assert tracker(server).file(ticket()).id == "2"


def test_server_error_and_outage_are_one_line(server: FakeGitHub) -> None:
    server.fail(502, times=3, body={"message": f"upstream said token {TOKEN}"})
    with pytest.raises(TrackerError) as err:
        tracker(server).file(ticket())
    assert type(err.value) is TrackerError
    assert str(err.value).startswith(f"github: looking for dasct-k1: HTTP 502 from {server.api}")
    assert TOKEN not in str(err.value) and "[redacted]" in str(err.value)
    assert len(server.requests) == 1
    cfg = GithubTracker(repository=REPO, base_url="http://127.0.0.1:9", timeout_seconds=1)
    with pytest.raises(TrackerError, match=r"^github: looking for dasct-k1: cannot reach"):
        GitHub(cfg, ENV, pace=False).file(ticket())


def test_the_token_reaches_no_log_nor_error(server: FakeGitHub, caplog: pytest.LogCaptureFixture,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DASCT_GITHUB_TOKEN", TOKEN)
    caplog.set_level(logging.DEBUG)
    errors = []
    github = GitHub(qa(server).github, os.environ, pace=False)
    for status in (401, 429, 500):
        server.fail(status, body={"message": f"echo {TOKEN}"})
        with pytest.raises(TrackerError) as err:
            github.file(ticket())
        errors.append(f"{err.value!s} {err.value!r}")
    github.file(ticket())
    github.regressed("#1", "again", "r1")
    assert caplog.records  # PyGithub and urllib3 did log the requests
    assert TOKEN not in caplog.text and all(TOKEN not in e for e in errors)


def test_a_defect_missing_from_github_does_not_hold_the_ticket(server: FakeGitHub) -> None:
    github = tracker(server)
    assert github.file(ticket(defect="#404")).id == "2"
    assert github.file(ticket(defect="acme/gone#3")).id == "2"  # the same key: found
    (note,) = server.comments[REPO, 2]  # said once, on the ticket
    assert note["body"].startswith(f"dasct: could not comment on #404: github: commenting on "
                                   f"{REPO}#404: HTTP 404")
    github.regressed("#404", "regressed", "r1")  # nothing to tell: done, not retried
    assert github.decision(Filed("github", "404")) is None
    server.fail(500, when=r"GET .*/issues/1/comments")
    with pytest.raises(TrackerError, match="HTTP 500"):  # a 5xx still waits for a retry
        github.file(ticket(key="k2"))


STEPS = (rf"GET /repos/{REPO}/issues$", rf"POST /repos/{REPO}/issues$",
         r"GET .*/issues/1/comments$", r"POST .*/issues/1/comments$")
FAULTS = st.lists(st.tuples(st.sampled_from((500, 502, 429, 401)), st.sampled_from(STEPS)),
                  max_size=3)


@settings(max_examples=20, deadline=None)
@given(FAULTS)
def test_any_faults_then_retries_file_exactly_once(faults: list[tuple[int, str]]) -> None:
    """Whatever step fails, retrying until file() succeeds leaves one issue and one comment
    (answers that come too late: test_create_answered_too_late_is_found_by_the_retry)."""
    with FakeGitHub(TOKEN) as server:
        server.add_issue(REPO, state="closed")
        for status, when in faults:
            server.fail(status, when=when, headers={"Retry-After": "1"})
        github = tracker(server)
        for _ in range(len(faults) + 5):
            try:
                filed = github.file(ticket())
                break
            except TrackerError:
                pass
        else:
            pytest.fail("still failing after every fault was spent")
        assert filed.id == "2" and sorted(n for _, n in server.issues) == [1, 2]
        assert len(server.comments[REPO, 1]) == 1
