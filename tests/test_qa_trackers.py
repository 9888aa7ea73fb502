"""The QA loop through the `dasct` CLI against real tracker clients: `ci record` in a CI
clone of a real bare remote files its tickets in Jira, GitHub and by email at once (the
real `jira` and PyGithub clients talking to the loopback fakes, a real aiosmtpd server),
and every fault a tracker can show (down, 429, 5xx, refused credentials, an answer that
comes too late, a SIGKILL between "ticket created" and "ledger written") loses nothing
and files nothing twice."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitrepo import GitRepo
from trackers.fake_ci import (
    FMT_FIX_SUBJECT,
    GITHUB_TOKEN,
    JIRA_TOKEN,
    PARSE_FIX_SUBJECT,
    World,
    config,
    outbox_path,
    records,
    run,
    start,
    time_passes,
    wait_for,
    waiting,
)
from trackers.fake_github import FakeGitHub
from trackers.fake_jira import FakeJira
from trackers.smtp_server import free_port, smtp_server

pytestmark = pytest.mark.slow  # dozens of CLI runs against servers: about 30 s in all

CREATE = "/rest/api/2/issue"


@pytest.fixture
def jira() -> Iterator[FakeJira]:
    with FakeJira(JIRA_TOKEN, users=("qa2", "qa@example.com")) as fake:
        fake.add_issue("PROJ-1", status="Closed", reporter="qa2")
        yield fake  # type: ignore[misc]


def _github() -> FakeGitHub:
    return FakeGitHub(GITHUB_TOKEN, users=("ghqa",))


def _tickets(jira: FakeJira) -> list[str]:
    """The revalidation tickets Jira holds (project QA)."""
    return sorted(k for k in jira.issues if k.startswith("QA-"))


def _filed(clone: GitRepo) -> dict[tuple[str, str], str]:
    """(defect, tracker) -> the ticket's id there, from the clone's ledger."""
    defect = {r.data["key"]: r.data["defect"] for r in records(clone, "request")}
    return {(defect[r.data["key"]], r.data["tracker"]): r.data["id"]
            for r in records(clone, "filed")}


def test_one_record_files_each_touched_defect_in_jira_github_and_email(
        repo: GitRepo, tmp_path: Path, jira: FakeJira) -> None:
    with _github() as github, smtp_server(tmp_path) as smtp:
        github.add_issue("acme/app", author="ghqa", state="closed", state_reason="completed")
        world = World(tmp_path, repo, config(trackers=("jira", "github", "email"),
                                             jira=jira.url, github=github.url,
                                             smtp=smtp.port))
        ci = world.clone("ci")
        result = run(ci, "ci", "record", "--range", f"{world.base}..{world.touch}",
                     "--format", "json")
        assert result.code == 0 and result.err == "", result.err
        out = result.json()
        assert sorted(r["defect"] for r in out["requests"]) == ["#1", "PROJ-1"]
        assert out["sent"] == {"delivered": 6, "failed": 0, "waiting": 0}
        touch = world.touch[:12]

        # Jira: one ticket per defect, assigned by the owner rules (PROJ-1: its reporter
        # in Jira; #1 is no Jira issue: [qa] default_assignee), linked to and announced on
        # the defect when the defect lives in Jira.
        creates = [r.body["fields"] for r in jira.calls("POST", CREATE)]
        by_defect = {f["summary"].split(":")[0]: f for f in creates}
        assert sorted(by_defect) == ["Revalidate #1", "Revalidate PROJ-1"]
        proj = by_defect["Revalidate PROJ-1"]
        assert proj["summary"] == f"Revalidate PROJ-1: {touch} changed 1 protected line"
        assert proj["project"] == {"key": "QA"} and proj["assignee"] == {"name": "qa2"}
        assert (f"-    tokens = text.split() if text else []    # protected: PROJ-1 via "
                f"{world.parse_fix[:12]}") in proj["description"]
        assert '+    tokens = (text or "").split()' in proj["description"]
        assert f'{world.parse_fix[:12]} "{PARSE_FIX_SUBJECT}"' in proj["description"]
        assert "dasct-revalidation" in proj["labels"]
        assert by_defect["Revalidate #1"]["assignee"] == {"name": "qa@example.com"}
        filed = _filed(ci)
        (link,) = [r.body for r in jira.calls("POST", "/rest/api/2/issueLink")]
        assert link == {"type": {"name": "Relates"},
                        "inwardIssue": {"key": filed["PROJ-1", "jira"]},
                        "outwardIssue": {"key": "PROJ-1"}}
        (note,) = [r.body["body"] for r in jira.calls("POST", r".*/issue/PROJ-1/comment")]
        assert touch in note and filed["PROJ-1", "jira"] in note
        assert len(_tickets(jira)) == 2

        # GitHub: the #1 ticket is assigned to #1's author and announced on #1; PROJ-1's
        # owner from [qa] owners is no GitHub user: the issue is filed unassigned.
        posts = [r.body for r in github.calls("POST", "/repos/acme/app/issues")]
        gh_one = [b for b in posts if b["title"].startswith("Revalidate #1:")]
        assert [b["assignees"] for b in gh_one] == [["ghqa"]]
        assert f'{world.fmt_fix[:12]} "{FMT_FIX_SUBJECT}"' in gh_one[0]["body"]
        assert "+    return \", \".join(map(repr, items))" in gh_one[0]["body"]
        gh_proj = [b for b in posts if b["title"].startswith("Revalidate PROJ-1:")]
        assert [b.get("assignees") for b in gh_proj] == [["proj-qa@example.com"], None]
        (comment,) = [r.body["body"] for r in github.calls("POST", r".*/issues/1/comments")]
        assert f"acme/app#{filed['#1', 'github']}" in comment and touch in comment
        assert len(github.issues) == 3  # #1 and the two tickets

        # Email: one message per defect, to its owner (config, then default), the fix's
        # author and [qa.email] to.
        mails = {m.message["Subject"]: m for m in smtp.messages}
        assert sorted(mails) == sorted(f["summary"] for f in creates)
        proj_mail = mails[proj["summary"]]
        assert proj_mail.rcpt_tos == ["proj-qa@example.com", "dev@example.com",
                                      "qa-team@example.com"]
        assert mails[by_defect["Revalidate #1"]["summary"]].rcpt_tos[0] == "qa@example.com"
        text = proj_mail.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert PARSE_FIX_SUBJECT in text and "# protected: PROJ-1" in text

        # The ledger knows where each ticket is, and it reached the remote.
        assert sorted(filed) == sorted((d, t) for d in ("#1", "PROJ-1")
                                       for t in ("jira", "github", "email"))
        assert len(records(world.clone("fresh"), "filed")) == 6


def _record(world: World, ci: GitRepo, env: dict[str, str] | None = None,
            spec: str = "") -> dict[str, object]:
    result = run(ci, "ci", "record", "--range", spec or f"{world.base}..{world.touch}",
                 "--format", "json", env=env)
    assert result.code == 0, result.err
    assert JIRA_TOKEN not in result.out + result.err
    out: dict[str, object] = result.json()
    return out


def _nothing_twice(world: World, ci: GitRepo, jira: FakeJira) -> None:
    """Everything delivered once; an overlapping range (a superset) files nothing again."""
    creates = len(jira.calls("POST", CREATE))
    again = _record(world, ci, spec=f"{world.parse_fix}..{world.touch}")
    assert again["requests"] == [] and again["already_recorded"] == 2
    assert len(jira.calls("POST", CREATE)) == creates
    tickets = _tickets(jira)
    assert len(tickets) == 2
    filed = _filed(ci)
    assert sorted(filed) == [("#1", "jira"), ("PROJ-1", "jira")]
    assert sorted(filed.values()) == tickets


def test_a_jira_that_is_down_keeps_the_tickets_until_it_is_back(
        repo: GitRepo, tmp_path: Path) -> None:
    port = free_port()
    world = World(tmp_path, repo, config(trackers=("jira",), jira=f"http://127.0.0.1:{port}"))
    ci = world.clone("ci")
    out = _record(world, ci)
    assert len(out["requests"]) == 2  # type: ignore[arg-type]
    assert out["sent"] == {"delivered": 0, "failed": 2, "waiting": 2}
    reasons = out["waiting_because"]
    assert isinstance(reasons, list) and reasons
    assert all(r.startswith("jira: ") and f"cannot reach http://127.0.0.1:{port}" in r
               for r in reasons)
    assert len(records(world.clone("fresh"), "request")) == 2  # the requests are safe
    jira = FakeJira(JIRA_TOKEN, users=("qa2", "qa@example.com"))
    jira.port = port
    with jira:
        jira.add_issue("PROJ-1", status="Closed", reporter="qa2")
        early = run(ci, "qa", "flush")
        assert "0 sent, 0 failed, 2 waiting" in early.out  # the backoff is not over
        time_passes(ci)
        flushed = run(ci, "qa", "flush")
        assert flushed.code == 0 and "2 sent, 0 failed, 0 waiting" in flushed.out
        _nothing_twice(world, ci, jira)


def _fault_429(jira: FakeJira) -> None:
    jira.fail(429, when="GET /rest/api/2/search", headers={"Retry-After": "900"})


def _fault_500(jira: FakeJira) -> None:
    jira.fail(500, when=f"POST {CREATE}$", body={"errorMessages": ["boom"], "errors": {}})


def _fault_late(jira: FakeJira) -> None:
    jira.stall(2.5, when=f"POST {CREATE}$")  # created, but answered after the timeout


@pytest.mark.parametrize(("fault", "reason", "left"), [
    (_fault_429, "rate limited by {url}, retry in 900s", 2),  # the second waits as long
    (_fault_500, "HTTP 500 from {url}", 1),
    (_fault_late, "no answer from {url} within 1s", 1),
], ids=["429", "5xx", "timeout"])
def test_a_failing_jira_loses_nothing_and_files_nothing_twice(
        repo: GitRepo, tmp_path: Path, jira: FakeJira, fault: object, reason: str,
        left: int) -> None:
    world = World(tmp_path, repo, config(trackers=("jira",), jira=jira.url, jira_timeout=1.0))
    ci = world.clone("ci")
    fault(jira)  # type: ignore[operator]
    before = time.time()
    out = _record(world, ci)
    assert out["sent"] == {"delivered": 2 - left, "failed": left, "waiting": left}
    (why,) = out["waiting_because"]  # type: ignore[misc]
    assert why.startswith("jira: ") and reason.format(url=jira.url) in why
    rows = waiting(ci)
    assert len(rows) == left
    if fault is _fault_429:  # Retry-After honoured, beyond the first backoff (60 s)
        assert all(next_try >= before + 890 for _, next_try, _ in rows)
    time_passes(ci)
    flushed = run(ci, "qa", "flush")
    assert flushed.code == 0 and f"{left} sent, 0 failed, 0 waiting" in flushed.out
    if fault is _fault_late:  # the retry found the ticket the late answer had created
        assert len(jira.calls("POST", CREATE)) == 2
    _nothing_twice(world, ci, jira)


def test_refused_credentials_are_one_line_and_the_token_is_never_shown(
        repo: GitRepo, tmp_path: Path, jira: FakeJira) -> None:
    wrong = "jira-pat-WRONGxK2mQ9vL4"
    world = World(tmp_path, repo, config(trackers=("jira",), jira=jira.url))
    ci = world.clone("ci")
    unset = run(ci, "ci", "record", "--range", f"{world.base}..{world.touch}",
                env={"DASCT_JIRA_TOKEN": ""})
    assert unset.code == 0 and "0 sent, 2 failed, 2 waiting" in unset.out, unset.err
    assert unset.err.splitlines() == [
        "dasct: waiting: jira: DASCT_JIRA_TOKEN is not set (the Jira API token)"]
    assert jira.requests == []
    time_passes(ci)
    result = run(ci, "qa", "flush", env={"DASCT_JIRA_TOKEN": wrong})
    assert result.code == 0, result.err
    assert result.err.splitlines() == [
        f"dasct: waiting: jira: credentials refused for {jira.url} (check DASCT_JIRA_TOKEN)"]
    assert "0 sent, 2 failed, 2 waiting" in result.out
    # One refused login for both tickets: Jira locks accounts after a few.
    assert len(jira.requests) == 1 and _tickets(jira) == []
    stored = outbox_path(ci).read_bytes() + json.dumps(
        [r.data for r in records(ci, "request")]).encode()
    for secret in (wrong, JIRA_TOKEN):
        assert secret not in result.out + result.err and secret.encode() not in stored
    time_passes(ci)
    flushed = run(ci, "qa", "flush")  # the right token again
    assert "2 sent, 0 failed, 0 waiting" in flushed.out, flushed.err
    _nothing_twice(world, ci, jira)


def test_a_sigkill_between_ticket_created_and_ledger_written_files_no_second_ticket(
        repo: GitRepo, tmp_path: Path, jira: FakeJira) -> None:
    world = World(tmp_path, repo, config(trackers=("jira",), jira=jira.url,
                                         jira_timeout=30.0))
    ci = world.clone("ci")
    # The first create is done in Jira, and its answer held back: the recorder is killed
    # while it waits, after "ticket created", before "ledger written".
    jira.stall(30.0, when=f"POST {CREATE}$")
    proc = start(ci, "ci", "record", "--range", f"{world.base}..{world.touch}")
    wait_for(lambda: _tickets(jira) == ["QA-1"] or proc.poll() is not None)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    assert records(ci, "filed") == []
    killed = jira.issues["QA-1"]["fields"]["labels"]
    # Another CI job (a fresh clone: the ledger was not pushed) records the same push.
    other = world.clone("ci2")
    out = _record(world, other)
    assert out["sent"] == {"delivered": 2, "failed": 0, "waiting": 0}
    assert _tickets(jira) == ["QA-1", "QA-2"]
    filed = _filed(other)
    assert filed[next(d for d in ("PROJ-1", "#1") if f"Revalidate {d}:" in
                      jira.issues["QA-1"]["fields"]["summary"]), "jira"] == "QA-1"
    assert any(label.startswith("dasct-") and label != "dasct-revalidation"
               for label in killed)
    # The killed job's own clone, once its lease is over, files nothing twice either.
    time_passes(ci)
    _nothing_twice(world, ci, jira)
