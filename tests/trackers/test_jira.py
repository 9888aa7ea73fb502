"""The Jira tracker: the real `jira` client against a loopback Jira (fake_jira.py)."""

from __future__ import annotations

import base64
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dasct.qaconfig import JiraTracker, QaConfig
from dasct.trackers import CredentialsRefused, Filed, RetryLater, Ticket, TrackerError
from dasct.trackers.http_errors import retry_after
from dasct.trackers.jira import Jira, key_label, make, marker
from trackers.fake_jira import FakeJira

TOKEN = "jira-pat-Zq8xW3vR5tY1"  # long enough that the redaction knows it
EMAIL = "ci@example.com"
ENV = {"DASCT_JIRA_TOKEN": TOKEN, "JIRA_EMAIL": EMAIL}
# Every endpoint the tracker may call; a hidden look-up (serverInfo, field, issueLinkType,
# project, issuetype, myself) would show up outside these.
ALLOWED = (r"/rest/api/2/(search|search/jql|issue|issueLink"
           r"|issue/[A-Z]+-\d+(/comment|/transitions)?)")


def ticket(key: str = "k1", defect: str = "MNG-7", **kw: object) -> Ticket:
    return Ticket(key=key, defect=defect, commit="c0ffee" * 6 + "abcd",
                  title=f"Revalidate {defect} after c0ffeec0ffee",
                  body="Protected lines changed:\n```diff\n-a\n+b\n```", **kw)  # type: ignore[arg-type]


def qa(url: str, **jira: object) -> QaConfig:
    return QaConfig(trackers=("jira",), jira=JiraTracker(
        **{"url": url, "project": "QA", "timeout_seconds": 10.0, **jira}))  # type: ignore[arg-type]


@pytest.fixture
def server() -> Iterator[FakeJira]:
    with FakeJira(TOKEN) as fake:
        fake.add_issue("MNG-7", status="Closed", reporter="rep")
        yield fake  # type: ignore[misc]


@pytest.fixture
def cloud() -> Iterator[FakeJira]:
    with FakeJira(TOKEN, email=EMAIL) as fake:
        fake.add_issue("MNG-7", status="Closed", reporter="rep")
        yield fake  # type: ignore[misc]


def tracker(server: FakeJira, **jira: object) -> Jira:
    return make(qa(server.url, **jira), ENV)


def no_hidden_lookups(server: FakeJira) -> None:
    assert [r.path for r in server.calls(path=f"(?!{ALLOWED}$).*")] == []


def test_file_creates_links_and_comments(server: FakeJira) -> None:
    filed = tracker(server).file(ticket(assignee="qa1", labels=("dasct",)))
    assert filed == Filed("jira", "QA-1", f"{server.url}/browse/QA-1")
    (create,) = server.calls("POST", "/rest/api/2/issue")
    assert create.body == {"fields": {
        "project": {"key": "QA"}, "issuetype": {"name": "Task"},
        "summary": "Revalidate MNG-7 after c0ffeec0ffee",
        "description": "Protected lines changed:\n```diff\n-a\n+b\n```",
        "labels": ["dasct", "dasct-k1"], "assignee": {"name": "qa1"}}}
    (link,) = server.calls("POST", "/rest/api/2/issueLink")
    assert link.body == {"type": {"name": "Relates"}, "inwardIssue": {"key": "QA-1"},
                         "outwardIssue": {"key": "MNG-7"}}
    (comment,) = server.calls("POST", "/rest/api/2/issue/MNG-7/comment")
    assert "QA-1" in comment.body["body"] and marker("k1") in comment.body["body"]
    assert f"{server.url}/browse/QA-1" in comment.body["body"]
    search = server.calls("GET", "/rest/api/2/search")[0]
    assert search.arg("jql") == 'project = "QA" AND labels = "dasct-k1" ORDER BY created ASC'
    assert server.issues["QA-1"]["fields"]["assignee"]["name"] == "qa1"
    no_hidden_lookups(server)


def test_file_twice_files_once(server: FakeJira) -> None:
    jira = tracker(server)
    first = jira.file(ticket())
    assert make(qa(server.url), ENV).file(ticket()) == first  # a new process: same answer
    assert [k for k in server.issues if k.startswith("QA-")] == ["QA-1"]
    assert len(server.links) == 1 and len(server.comments["MNG-7"]) == 1
    assert jira.file(ticket(key="k2")).id == "QA-2"  # another key: another ticket


def test_create_answered_too_late_is_found_by_the_retry(server: FakeJira) -> None:
    server.stall(3.0, when=r"POST /rest/api/2/issue$")
    jira = tracker(server, timeout_seconds=0.5)
    with pytest.raises(TrackerError, match=r"no answer from .* within 0.5s") as err:
        jira.file(ticket())
    assert not isinstance(err.value, RetryLater | CredentialsRefused)
    assert list(server.issues) == ["MNG-7", "QA-1"]  # created though the answer never came
    assert jira.file(ticket()).id == "QA-1"
    assert len(server.calls("POST", "/rest/api/2/issue")) == 1
    assert len(server.links) == 1 and len(server.comments["MNG-7"]) == 1


def test_a_retry_completes_the_link_and_the_comment(server: FakeJira) -> None:
    server.fail(500, when="POST /rest/api/2/issueLink", body={"errorMessages": ["boom"]})
    jira = tracker(server)
    with pytest.raises(TrackerError, match=r"^jira: linking QA-1 to MNG-7: HTTP 500 .*boom"):
        jira.file(ticket())
    assert server.links == [] and server.comments["MNG-7"] == []
    assert jira.file(ticket()).id == "QA-1"
    assert len(server.links) == 1 and len(server.comments["MNG-7"]) == 1
    assert len(server.calls("POST", "/rest/api/2/issue")) == 1


def test_refused_assignee_files_unassigned_and_says_so(server: FakeJira) -> None:
    filed = tracker(server).file(ticket(assignee="nobody"))
    creates = server.calls("POST", "/rest/api/2/issue")
    assert [c.body["fields"].get("assignee") for c in creates] == [{"name": "nobody"}, None]
    assert server.issues[filed.id]["fields"]["assignee"] is None
    (note,) = server.comments[filed.id]
    assert "refused the assignee 'nobody'" in note["body"]


def test_a_defect_that_is_not_a_jira_key_gets_no_link_nor_comment(server: FakeJira) -> None:
    assert tracker(server).file(ticket(defect="#45")).id == "QA-1"
    assert server.calls("POST", "/rest/api/2/issueLink") == []
    assert server.calls(path=r".*/comment") == []


@pytest.mark.parametrize(("fields", "verdict", "reason"), [
    ({"status": {"name": "Open"}}, None, ""),
    ({"status": {"name": "In Progress"}, "labels": ["regression"]}, None, ""),
    ({"status": {"name": "Done"}, "resolution": {"name": "Done"}}, "accepted", "status Done"),
    ({"status": {"name": "Resolved"}}, "accepted", "status Resolved"),
    ({"status": {"name": "Closed"}, "resolution": {"name": "Regression"}}, "rejected",
     "resolution Regression"),
    ({"status": {"name": "Done"}, "labels": ["x", "regression"]}, "rejected", "label regression"),
])
def test_decision(server: FakeJira, fields: dict[str, object], verdict: str | None,
                  reason: str) -> None:
    server.add_issue("QA-9", assignee={"displayName": "Quinn Qa", "name": "qa1"},
                     resolutiondate="2026-12-01T10:00:00.000+0000", **fields)
    decision = tracker(server).decision(Filed("jira", "QA-9", ""))
    if verdict is None:
        assert decision is None
    else:
        assert decision is not None
        assert (decision.verdict, decision.by, decision.reason) == (verdict, "Quinn Qa", reason)
        assert decision.at == "2026-12-01T10:00:00.000+0000"


def test_decision_by_configured_names(server: FakeJira) -> None:
    server.add_issue("QA-9", status={"name": "Verified"})
    jira = tracker(server, accept_statuses=("Verified",))
    decision = jira.decision(Filed("jira", "QA-9"))
    assert decision is not None and decision.verdict == "accepted"


def test_regressed_comments_once_and_reopens(server: FakeJira) -> None:
    jira = tracker(server)
    jira.regressed("MNG-7", "Regressed by c0ffee: the fix test fails.", "r1")
    assert server.issues["MNG-7"]["fields"]["status"] == {"name": "Reopened"}
    (reopen,) = server.calls("POST", "/rest/api/2/issue/MNG-7/transitions")
    assert reopen.body == {"transition": {"id": "3"}}
    jira.regressed("MNG-7", "Regressed by c0ffee: the fix test fails.", "r1")
    (comment,) = server.comments["MNG-7"]
    assert comment["body"].startswith("Regressed by c0ffee") and marker("r1") in comment["body"]
    assert len(server.calls("POST", "/rest/api/2/issue/MNG-7/transitions")) == 1


def test_comment_marker_is_found_on_a_later_page(server: FakeJira) -> None:
    server.comments["MNG-7"] = [{"id": str(i), "body": f"note {i}"} for i in range(150)]
    server.comments["MNG-7"].append({"id": "150", "body": f"old {marker('r1')}"})
    tracker(server).regressed("MNG-7", "again", "r1")
    assert len(server.comments["MNG-7"]) == 151
    starts = [r.arg("startAt") for r in server.calls("GET", r".*/MNG-7/comment")]
    assert starts == ["0", "100"]


def test_owner_reporter_or_field(server: FakeJira) -> None:
    server.add_issue("MNG-8", reporter="rep2", customfield_10042={"name": "qa2",
                                                                  "accountId": "acc-qa2"})
    assert tracker(server).owner("MNG-8") == "rep2"
    assert tracker(server, owner_field="customfield_10042").owner("MNG-8") == "qa2"
    assert tracker(server, owner_field="customfield_99").owner("MNG-8") is None
    assert tracker(server).owner("#8") is None
    assert tracker(server).owner("MNG-404") is None  # not in this Jira


def test_cloud_uses_basic_auth_account_ids_and_search_jql(cloud: FakeJira) -> None:
    jira = tracker(cloud, email_env="JIRA_EMAIL")
    assert jira.file(ticket(assignee="qa1")).id == "QA-1"
    pair = base64.b64encode(f"{EMAIL}:{TOKEN}".encode()).decode()
    assert {r.auth for r in cloud.requests} == {f"Basic {pair}"}
    assert cloud.calls("GET", "/rest/api/2/search") == []
    # Before the create, and after it (the later of two racing recorders defers).
    assert len(cloud.calls("GET", "/rest/api/2/search/jql")) == 2
    assert cloud.calls("POST", "/rest/api/2/issue")[0].body["fields"]["assignee"] == {
        "accountId": "qa1"}
    assert jira.owner("MNG-7") == "acc-rep"
    no_hidden_lookups(cloud)


def test_server_uses_the_personal_access_token(server: FakeJira) -> None:
    tracker(server).file(ticket())
    assert {r.auth for r in server.requests} == {f"Bearer {TOKEN}"}


def test_refused_credentials_name_the_variable_not_the_token(server: FakeJira) -> None:
    wrong = "wrong-token-Hk3m9Pq2"
    with pytest.raises(CredentialsRefused) as err:
        make(qa(server.url), {"DASCT_JIRA_TOKEN": wrong}).file(ticket())
    assert str(err.value) == (f"jira: credentials refused for {server.url} "
                              "(check DASCT_JIRA_TOKEN)")
    assert err.value.__cause__ is None and err.value.__suppress_context__
    server.fail(403, headers={"X-Authentication-Denied-Reason": "CAPTCHA_CHALLENGE"})
    with pytest.raises(CredentialsRefused, match=r"check DASCT_JIRA_TOKEN"):
        tracker(server).owner("MNG-7")


def test_missing_credentials_name_the_variable(server: FakeJira) -> None:
    with pytest.raises(TrackerError, match=r"^jira: DASCT_JIRA_TOKEN is not set"):
        make(qa(server.url), {})
    with pytest.raises(TrackerError, match=r"^jira: JIRA_EMAIL is not set"):
        make(qa(server.url, email_env="JIRA_EMAIL"), {"DASCT_JIRA_TOKEN": TOKEN})
    assert server.requests == []


def test_rate_limit_waits_the_servers_seconds(server: FakeJira) -> None:
    server.fail(429, headers={"Retry-After": "17"})
    with pytest.raises(RetryLater) as err:
        tracker(server).file(ticket())
    assert err.value.seconds == 17
    server.fail(429)
    with pytest.raises(RetryLater) as err:
        tracker(server).file(ticket())
    assert err.value.seconds == 60
    assert len(server.requests) == 2  # the client did not retry on its own
    assert tracker(server).file(ticket()).id == "QA-1"


def test_server_error_and_outage_are_one_line(server: FakeJira) -> None:
    server.fail(500, times=5)
    with pytest.raises(TrackerError) as err:
        tracker(server).file(ticket())
    assert type(err.value) is TrackerError
    assert str(err.value).startswith(f"jira: looking for dasct-k1: HTTP 500 from {server.url}")
    assert len(server.requests) == 1  # no retry of the client's own
    dead = qa("http://127.0.0.1:9")  # discard: nothing listens
    with pytest.raises(TrackerError, match=r"^jira: looking for dasct-k1: cannot reach") as err:
        make(dead, ENV).file(ticket())
    for message in (str(err.value),):
        assert "\n" not in message and TOKEN not in message


def test_token_never_in_an_error_even_when_the_server_echoes_it(server: FakeJira) -> None:
    server.fail(500, body={"errorMessages": [f"bad header Bearer {TOKEN}"]})
    with pytest.raises(TrackerError) as err:
        tracker(server).file(ticket())
    assert TOKEN not in str(err.value) and "[redacted]" in str(err.value)


@given(st.text(min_size=1, max_size=200))
def test_key_label_fits_both_trackers(key: str) -> None:
    label = key_label(key)
    assert len(label) <= 50 and label.startswith("dasct-")
    assert all(c.isascii() and (c.isalnum() or c in "._-") for c in label)
    assert label == key_label(key)
    if key_label(key + "x") == label:  # distinct keys keep distinct labels
        pytest.fail(f"{key!r} and {key + 'x'!r} share {label}")


def test_key_label_of_dasct_keys() -> None:
    key = "dasct-3fa85f6457174562b3fc"  # the shape of qa's tickets.ticket_key
    assert key_label(key) == key  # no "dasct-dasct-" in QA's tracker
    assert key_label("k1") == "dasct-k1"
    assert key_label(f"{key}/reject") != key_label(key)


def test_cfg_without_url_or_project_is_one_line() -> None:
    with pytest.raises(TrackerError, match=r"^jira: \[qa.jira\] url is not set$"):
        make(QaConfig(), ENV)
    with pytest.raises(TrackerError, match=r"project is not set"):
        make(replace(QaConfig(), jira=JiraTracker(url="http://x")), ENV)


def test_importing_the_trackers_imports_no_client() -> None:
    probe = ("import sys\n"
             "import dasct.trackers, dasct.trackers.jira, dasct.trackers.github\n"
             "from dasct.qaconfig import QaConfig, JiraTracker, GithubTracker\n"
             "cfg = QaConfig(jira=JiraTracker(url='http://x', project='QA'),\n"
             "               github=GithubTracker(repository='o/r'))\n"
             "env = {'DASCT_JIRA_TOKEN': 't', 'DASCT_GITHUB_TOKEN': 't'}\n"
             "dasct.trackers.make('jira', cfg, env); dasct.trackers.make('github', cfg, env)\n"
             "print(' '.join(sorted(sys.modules)))\n")
    out = subprocess.run((sys.executable, "-c", probe), capture_output=True, text=True,
                         check=True).stdout.split()
    heavy = [m for m in out if m.split(".")[0] in ("jira", "github", "requests", "urllib3")]
    assert heavy == []


def test_the_token_reaches_no_log_nor_error(server: FakeJira, caplog: pytest.LogCaptureFixture,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DASCT_JIRA_TOKEN", TOKEN)
    caplog.set_level(logging.DEBUG)
    errors = []
    jira = make(qa(server.url), os.environ)
    for status in (401, 429, 500, 503):
        server.fail(status, body={"errorMessages": [f"echo {TOKEN}"]})
        with pytest.raises(TrackerError) as err:
            jira.file(ticket())
        errors.append(f"{err.value!s} {err.value!r}")
    jira.file(ticket())
    jira.regressed("MNG-7", "again", "r1")
    assert caplog.records  # urllib3 did log the requests
    assert TOKEN not in caplog.text and all(TOKEN not in e for e in errors)


@given(st.integers(0, 10**6), st.floats(0, 10**6, allow_nan=False))
def test_retry_after_takes_seconds_or_a_reset_time(seconds: int, ahead: float) -> None:
    now = 1_800_000_000.0
    assert retry_after({"Retry-After": str(seconds)}, now=now) == seconds
    reset = {"X-RateLimit-Reset": str(now + ahead)}
    assert retry_after(reset, now=now) == pytest.approx(ahead, abs=1e-3)
    assert retry_after({"retry-after": str(seconds), **reset}, now=now) == seconds
    assert retry_after({"X-RateLimit-Reset": str(now - ahead - 1)}, now=now) == 0
    assert retry_after({}, now=now) == retry_after({"Retry-After": "soon"}, now=now) == 60


KILLED_FILER = """
import os, sys
from dasct.qaconfig import JiraTracker, QaConfig
from dasct.trackers import Ticket
from dasct.trackers.jira import make
cfg = QaConfig(jira=JiraTracker(url=sys.argv[1], project="QA", timeout_seconds=60))
make(cfg, os.environ).file(Ticket(key="k1", defect="MNG-7", commit="c" * 40, title="t",
                                  body="b"))
"""


def test_a_filer_killed_after_the_create_leaves_one_ticket(server: FakeJira) -> None:
    server.stall(30.0, when=r"POST /rest/api/2/issue$")
    child = subprocess.Popen((sys.executable, "-c", KILLED_FILER, server.url),
                             env={**os.environ, "DASCT_JIRA_TOKEN": TOKEN})
    try:
        deadline = time.monotonic() + 30
        while "QA-1" not in server.issues:  # created; the child waits for the answer
            assert child.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert tracker(server).file(ticket()).id == "QA-1"
    assert [k for k in server.issues if k.startswith("QA-")] == ["QA-1"]
    assert len(server.links) == 1 and len(server.comments["MNG-7"]) == 1


def test_a_field_error_is_shown_as_jira_gave_it(server: FakeJira) -> None:
    said = "Field 'labels' cannot be set. It is not on the appropriate screen, or unknown."
    server.fail(400, when=r"POST /rest/api/2/issue$",
                body={"errorMessages": [], "errors": {"labels": said}})
    with pytest.raises(TrackerError) as err:
        tracker(server).file(ticket(assignee="qa1"))
    assert str(err.value) == (f"jira: creating the ticket for MNG-7: HTTP 400 from "
                              f"{server.url}: {said}")
    assert len(server.calls("POST", "/rest/api/2/issue")) == 1  # not retried unassigned


def test_a_defect_missing_from_jira_does_not_hold_the_ticket(server: FakeJira) -> None:
    jira = tracker(server)
    assert jira.file(ticket(defect="MNG-404")).id == "QA-1"
    assert jira.file(ticket(defect="MNG-404")).id == "QA-1"
    assert server.links == [] and server.comments.get("MNG-404") is None
    (note,) = server.comments["QA-1"]  # said once, on the ticket
    assert note["body"].startswith("dasct: could not link or comment on MNG-404: jira: "
                                   "linking QA-1 to MNG-404: HTTP 404")
    jira.regressed("MNG-404", "regressed", "r1")  # nothing to tell: done, not retried
    assert jira.decision(Filed("jira", "QA-404")) is None
    server.fail(500, when="POST /rest/api/2/issueLink")
    with pytest.raises(TrackerError, match="HTTP 500"):  # a 5xx still waits for a retry
        jira.file(ticket(key="k2"))


def test_an_answer_without_the_expected_field_files_nothing(server: FakeJira) -> None:
    # A proxy's or another service's JSON read as "no ticket yet" would file one each try.
    server.fail(200, when=r"GET /rest/api/2/search$", body={"status": "ok"})
    with pytest.raises(TrackerError, match=r"^jira: unexpected answer from .*: no 'issues' "
                                           r"in GET search$"):
        tracker(server).file(ticket())
    server.fail(200, when=r"GET .*/MNG-7/comment$", body=[])
    with pytest.raises(TrackerError, match=r"no 'comments' in GET issue/MNG-7/comment$"):
        tracker(server).file(ticket())
    assert server.comments["MNG-7"] == []
    assert tracker(server).file(ticket()).id == "QA-1"
    assert len(server.comments["MNG-7"]) == 1


def test_a_missing_client_library_is_one_line_naming_the_extra() -> None:
    probe = ("import sys\n"
             "sys.modules['jira'] = sys.modules['github'] = None  # as if not installed\n"
             "from dasct.qaconfig import QaConfig, JiraTracker, GithubTracker\n"
             "from dasct.trackers import TrackerError, make\n"
             "cfg = QaConfig(jira=JiraTracker(url='http://x', project='QA'),\n"
             "               github=GithubTracker(repository='o/r'))\n"
             "for name in ('jira', 'github'):\n"
             "    try:\n"
             "        make(name, cfg, {'DASCT_JIRA_TOKEN': 't', 'DASCT_GITHUB_TOKEN': 't'})\n"
             "    except TrackerError as e:\n"
             "        print(e)\n")
    out = subprocess.run((sys.executable, "-c", probe), capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out == ["jira: the jira library is not installed (pip install 'dasct[jira]')",
                   "github: PyGithub is not installed (pip install 'dasct[github]')"]


STEPS = (r"GET /rest/api/2/search$", r"POST /rest/api/2/issue$", r"POST /rest/api/2/issueLink$",
         r"GET .*/MNG-7/comment$", r"POST .*/MNG-7/comment$")
FAULTS = st.lists(st.tuples(st.sampled_from((500, 502, 429, 401, 0)), st.sampled_from(STEPS)),
                  max_size=3)


@settings(max_examples=20, deadline=None)
@given(FAULTS)
def test_any_faults_then_retries_file_exactly_once(faults: list[tuple[int, str]]) -> None:
    """Whatever step fails (status 0: answered too late, after the server acted), retrying
    until file() succeeds leaves one ticket, one link and one comment."""
    with FakeJira(TOKEN) as server:
        server.add_issue("MNG-7", status="Closed")
        for status, when in faults:
            if status:
                server.fail(status, when=when, headers={"Retry-After": "1"})
            else:
                server.stall(0.6, when=when)
        jira = make(qa(server.url, timeout_seconds=0.3), ENV)
        for _ in range(len(faults) + 5):  # + a loaded machine's own slow answers
            try:
                filed = jira.file(ticket())
                break
            except TrackerError:
                pass
        else:
            pytest.fail("still failing after every fault was spent")
        assert filed.id == "QA-1"
        assert [k for k in server.issues if k.startswith("QA-")] == ["QA-1"]
        assert len(server.links) == 1 and len(server.comments["MNG-7"]) == 1
