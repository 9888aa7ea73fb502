"""QA's decisions through the `dasct` CLI against real tracker clients: `qa sync` takes
what was decided in Jira and GitHub (a failing tracker does not hold back the others),
`qa reject` says which trackers were told (Jira, email and a webhook), and two CI clones
recording into one bare remote at once lose nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitrepo import GitRepo
from trackers.fake_ci import (
    GITHUB_TOKEN,
    JIRA_TOKEN,
    Hook,
    World,
    config,
    records,
    run,
    start,
    time_passes,
)
from trackers.fake_github import FakeGitHub
from trackers.fake_jira import FakeJira
from trackers.smtp_server import smtp_server

pytestmark = pytest.mark.slow  # CLI runs against servers: about 20 s in all

CREATE = "/rest/api/2/issue"


@pytest.fixture
def jira() -> Iterator[FakeJira]:
    with FakeJira(JIRA_TOKEN, users=("qa2", "qa@example.com")) as fake:
        fake.add_issue("PROJ-1", status="Closed", reporter="qa2")
        yield fake  # type: ignore[misc]


def _filed(clone: GitRepo) -> dict[tuple[str, str], str]:
    """(defect, tracker) -> the ticket's id there, from the clone's ledger."""
    defect = {r.data["key"]: r.data["defect"] for r in records(clone, "request")}
    return {(defect[r.data["key"]], r.data["tracker"]): r.data["id"]
            for r in records(clone, "filed")}


def _record(world: World, ci: GitRepo, env: dict[str, str] | None = None) -> None:
    result = run(ci, "ci", "record", "--range", f"{world.base}..{world.touch}", env=env)
    assert result.code == 0 and "2 revalidation requests" in result.out, result.err


def test_sync_takes_the_decisions_made_in_jira_and_github(
        repo: GitRepo, tmp_path: Path, jira: FakeJira) -> None:
    with FakeGitHub(GITHUB_TOKEN, users=("ghqa",)) as github:
        defect = github.add_issue("acme/app", author="ghqa", state="closed",
                                  state_reason="completed")
        world = World(tmp_path, repo, config(trackers=("jira", "github"), jira=jira.url,
                                             github=github.url))
        ci = world.clone("ci")
        _record(world, ci)
        filed = _filed(ci)
        # QA resolves PROJ-1's Jira ticket as Done, and closes #1's GitHub ticket as a
        # regression; the other two tickets stay open.
        done = jira.issues[filed["PROJ-1", "jira"]]["fields"]
        done.update(status={"name": "Done"}, resolution={"name": "Done"},
                    assignee={"name": "qa2", "displayName": "Qa Two"},
                    resolutiondate="2026-12-02T09:00:00.000+0000")
        closed = github.issues["acme/app", int(filed["#1", "github"])]
        closed.update(state="closed", state_reason="completed", closed_by=github._user("ghqa"),
                      labels=[*closed["labels"], github._label("regression")])
        # Jira fails while sync asks: GitHub's decision is taken all the same.
        jira.fail(500, when=r"GET /rest/api/2/issue/QA-")
        first = run(ci, "qa", "sync")
        assert first.code == 0, first.err
        assert first.out.splitlines() == [
            f"dasct: #1 at {world.touch[:12]}: rejected in the tracker",
            "dasct: 1 decision taken from the trackers"]
        (problem,) = first.err.splitlines()
        assert problem.startswith("dasct: qa sync: jira: ") and "HTTP 500" in problem
        (rejected,) = records(ci, "reject")
        assert rejected.data["defect"] == "#1" and rejected.by == "ghqa"
        assert rejected.data["via"] == f"github {filed['#1', 'github']}"
        # The defect heard of it: commented, reopened, labelled; the author got a notice.
        (comment,) = [c["body"] for c in github.comments["acme/app", 1]
                      if "regressed" in c["body"]]
        assert world.touch[:12] in comment and "label regression" in comment
        assert defect["state"] == "open"
        assert "regression" in {label["name"] for label in defect["labels"]}
        notices = ci.path / ".git" / "dasct" / "qa-notices" / "notifications.jsonl"
        (notice,) = [json.loads(x) for x in notices.read_text().splitlines()]
        assert notice["recipients"] == ["dev@example.com"] and notice["kind"] == "regression"
        # Jira back: its decision comes in; nothing is decided twice.
        second = run(ci, "qa", "sync")
        assert second.code == 0 and second.err == "", second.err
        assert second.out.splitlines()[0] == (
            f"dasct: PROJ-1 at {world.touch[:12]}: accepted in the tracker")
        (accepted,) = records(ci, "accept")
        assert accepted.by == "Qa Two" and accepted.data["via"] == (
            f"jira {filed['PROJ-1', 'jira']}")
        assert accepted.data["lines"] == {"src/parser.py": [[2, 2]]}
        assert "0 decisions" in run(ci, "qa", "sync").out
        fresh = world.clone("fresh")  # the decisions reached the remote
        assert run(fresh, "qa", "list", "--format", "json").json()["open"] == []


def test_one_sync_writes_its_decisions_in_one_ledger_commit(
        repo: GitRepo, tmp_path: Path, jira: FakeJira) -> None:
    """Two decisions taken in one sync: one ledger commit and one push, not one each
    (a sync after a day of QA work may bring dozens)."""
    with FakeGitHub(GITHUB_TOKEN, users=("ghqa",)) as github:
        github.add_issue("acme/app", author="ghqa", state="closed", state_reason="completed")
        world = World(tmp_path, repo, config(trackers=("jira", "github"), jira=jira.url,
                                             github=github.url))
        ci = world.clone("ci")
        _record(world, ci)
        filed = _filed(ci)
        jira.issues[filed["PROJ-1", "jira"]]["fields"].update(
            status={"name": "Done"}, resolution={"name": "Done"},
            assignee={"name": "qa2", "displayName": "Qa Two"})
        closed = github.issues["acme/app", int(filed["#1", "github"])]
        closed.update(state="closed", state_reason="completed", closed_by=github._user("ghqa"),
                      labels=[*closed["labels"], github._label("regression")])
        before = int(ci.git("rev-list", "--count", "dasct-ledger"))
        synced = run(ci, "qa", "sync")
        assert synced.code == 0, synced.err
        assert "dasct: 2 decisions taken from the trackers" in synced.out
        after = int(ci.git("rev-list", "--count", "dasct-ledger"))
        log = ci.git("log", "--format=%s", f"-{after - before}", "dasct-ledger").splitlines()
        # Oldest last: both decisions, then the two trackers told of the regression.
        assert log == ["dasct ledger: 2 record(s)"] * 2, log
        assert len(records(ci, "told")) == 2
        assert [r.data["defect"] for r in records(ci, "accept")] == ["PROJ-1"]
        assert [r.data["defect"] for r in records(ci, "reject")] == ["#1"]
        pushed = ci.git("ls-remote", "origin", "refs/heads/dasct-ledger").split()[0]
        assert ci.git("rev-parse", "dasct-ledger").strip() == pushed


def test_reject_says_which_trackers_were_told(repo: GitRepo, tmp_path: Path,
                                              jira: FakeJira) -> None:
    with smtp_server(tmp_path) as smtp, Hook() as hook:
        world = World(tmp_path, repo, config(trackers=("jira", "email", "webhook"),
                                             jira=jira.url, smtp=smtp.port))
        ci = world.clone("ci")
        env = {"DASCT_WEBHOOK_URL": hook.hook_url}
        _record(world, ci, env)
        jira.fail(503, when=r"GET /rest/api/2/issue/PROJ-1/comment")
        result = run(ci, "qa", "reject", "PROJ-1", "--commit", world.touch[:10],
                     "--reason", "parse(None) crashes again", env=env)
        assert result.code == 0, result.err
        assert result.out.strip() == (
            f"dasct: rejected {world.touch[:12]} for PROJ-1: recorded as a regression; told: "
            f"email, webhook and the author (dev@example.com); waiting: jira (jira: reading "
            f"the comments of PROJ-1: HTTP 503 from {jira.url})")
        (mail,) = [m for m in smtp.messages if m.message["Subject"] == "PROJ-1 regressed"]
        assert mail.rcpt_tos == ["qa-team@example.com"]
        posted = [r.body for r in hook.calls("POST")]
        assert len(posted) == 3  # the two tickets, then the regression
        assert posted[-1]["text"].startswith("*PROJ-1 regressed*\n")
        assert posted[-1]["dasct"]["regressed"] is True
        assert "parse(None) crashes again" in posted[-1]["dasct"]["text"]
        assert "s3cr3tW3bh00kT0k3n" not in result.out + result.err
        assert jira.issues["PROJ-1"]["fields"]["status"]["name"] == "Closed"
        time_passes(ci)
        flushed = run(ci, "qa", "flush", env=env)
        assert "1 sent, 0 failed, 0 waiting" in flushed.out, flushed.err
        (comment,) = [c["body"] for c in jira.comments["PROJ-1"] if "regressed" in c["body"]]
        assert "parse(None) crashes again" in comment
        assert jira.issues["PROJ-1"]["fields"]["status"]["name"] == "Reopened"
        told = sorted(r.data["tracker"] for r in records(ci, "told"))
        assert told == ["email", "jira", "webhook"]


def _record_at_once(world: World) -> list[GitRepo]:
    """Two CI clones record the same push at the same moment."""
    clones = [world.clone("ci1"), world.clone("ci2")]
    procs = [start(c, "ci", "record", "--range", f"{world.base}..{world.touch}")
             for c in clones]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
    return clones


def test_two_ci_clones_recording_at_once_lose_nothing(repo: GitRepo, tmp_path: Path,
                                                      jira: FakeJira) -> None:
    world = World(tmp_path, repo, config(trackers=("jira",), jira=jira.url))
    _record_at_once(world)
    fresh = world.clone("fresh")
    listed = run(fresh, "qa", "list", "--format", "json").json()["open"]
    assert sorted(o["defect"] for o in listed) == ["#1", "PROJ-1"]
    assert all([t["tracker"] for t in o["tickets"]] == ["jira"] for o in listed)
    assert {o["tickets"][0]["id"] for o in listed} <= set(jira.issues)
    # Nothing waits anywhere, and a third run files nothing.
    again = run(fresh, "ci", "record", "--range", f"{world.base}..{world.touch}",
                "--format", "json").json()
    assert again["requests"] == [] and again["sent"]["waiting"] == 0


@pytest.mark.parametrize("can_delete", [True, False])
def test_two_ci_clones_recording_at_once_leave_one_ticket_in_jira(
        repo: GitRepo, tmp_path: Path, jira: FakeJira, can_delete: bool) -> None:
    """Two recorders that both searched before either created (two CI jobs on one push)
    both create; each searches again after its create, and the later one deletes its own
    ticket (or, without the permission, says on it which ticket holds the revalidation)
    and files under the earlier."""
    # One touched defect (#1 is no defect without GitHub's keywords): each recorder's
    # first search is for the same ticket.
    world = World(tmp_path, repo, config(trackers=("jira",), jira=jira.url)
                  + "\n[defects]\ngithub = false\n")
    jira.can_delete = can_delete
    # Both first searches answer "none yet" before either create lands, as when two jobs
    # start together (each answered once both have arrived: the same on every run).
    jira.gate(2, when=r"GET /rest/api/2/search")
    clones = _record_at_once(world)
    assert len(jira.calls("POST", f"{CREATE}$")) == 2  # the race happened
    labelled = sorted(k for k, i in jira.issues.items()
                      if any(x.startswith("dasct-") and x != "dasct-revalidation"
                             for x in i["fields"]["labels"]))
    first = labelled[0]
    if can_delete:
        assert labelled == [first] and len(jira.calls("DELETE", r"/rest/api/2/issue/[^/]+")) == 1
    else:
        (dup,) = labelled[1:]
        assert any(f"duplicate of {first}" in c["body"] for c in jira.comments[dup])
    # Every clone, and a fresh one, knows the ticket by the first one's key.
    for c in clones:
        assert {r.data["id"] for r in records(c, "filed")} == {first}
    fresh = world.clone("fresh")
    (listed,) = run(fresh, "qa", "list", "--format", "json").json()["open"]
    assert [t["id"] for t in listed["tickets"]] == [first]
