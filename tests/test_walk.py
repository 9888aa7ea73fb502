"""The forward walk: each commit of A..B gets exactly the findings `check --commit` gives."""

from __future__ import annotations

import json

import pytest

from dasct import check, git, index, kinds, settings, walk
from dasct_run import dasct
from gitrepo import GitRepo
from test_checkpoints import _grow, tight  # noqa: F401  (tight: a fixture)


def _by_check_commit(repo: GitRepo, sha: str, all_kinds: bool = False
                     ) -> list[dict[str, object]]:
    r = git.discover(repo.path)
    cfg = settings.load(r)
    found = check.run_check(r, cfg, check.commit(r, sha))
    return [f.as_dict() for f in kinds.reported(found, cfg.kinds, all_kinds)[0]]


@pytest.mark.usefixtures("tight")  # checkpoints every few commits
@pytest.mark.parametrize("seed", range(8))
def test_each_commit_gets_what_check_commit_gives(repo: GitRepo, seed: int) -> None:
    _grow(repo, 500 + seed, 22)
    r = git.discover(repo.path)
    cfg = settings.load(r)
    index.snapshot_at(r, cfg, r.head)  # warm at HEAD, with checkpoints (tight spacing)
    chain = repo.git("rev-list", "--first-parent", "--reverse", "HEAD").split()
    start = chain[len(chain) // 4]
    steps = walk.each(r, cfg, f"{start}..HEAD")
    assert [s.sha for s in steps] == chain[chain.index(start) + 1 :]
    for step in steps:
        assert [f.as_dict() for f in step.findings] == _by_check_commit(repo, step.sha)
        assert step.subject == repo.git("log", "-1", "--format=%s", step.sha).strip()
    for step in walk.each(r, cfg, f"{start}..HEAD", all_kinds=True):
        assert [f.as_dict() for f in step.findings] == _by_check_commit(repo, step.sha, True)
    # Findings did occur: the comparison above is not between two empty lists.
    assert sum(len(s.findings) for s in steps) > 0


def test_each_from_the_first_commit(repo: GitRepo) -> None:
    _grow(repo, 77, 10)
    r = git.discover(repo.path)
    cfg = settings.load(r)
    root = repo.git("rev-list", "--max-parents=0", "HEAD").split()[0]
    steps = walk.each(r, cfg, f"{root}..HEAD")
    for step in steps:
        assert [f.as_dict() for f in step.findings] == _by_check_commit(repo, step.sha)
    assert walk.each(r, cfg, "HEAD..HEAD") == []


@pytest.fixture
def fixed(repo: GitRepo) -> GitRepo:
    repo.commit("base", {"app.py": "a = 1\nb = 2\nc = 3\n"})
    repo.commit("Fix PROJ-7", {"app.py": "a = 1\nb = 20\nc = 3\n"})
    (repo.path / ".dasct.toml").write_text('[defects]\njira_projects = ["PROJ"]\n')
    repo.commit("config")
    repo.commit("touch it", {"app.py": "a = 1\nb = 21\nc = 3\n"})
    repo.commit("elsewhere", {"other.py": "x = 1\n"})
    return repo


def test_each_json_and_text(fixed: GitRepo) -> None:
    res = dasct(fixed.path, "check", "--each", "HEAD~3..HEAD", "--format", "json")
    assert res.code == 0, res.err
    commits = res.json()["commits"]
    assert [c["subject"] for c in commits] == ["config", "touch it", "elsewhere"]
    # One commit a line, each a JSON value of its own.
    lines = res.out.splitlines()
    assert lines[0] == '{"commits": [' and lines[-1] == "]}"
    assert [json.loads(x.rstrip(","))["subject"] for x in lines[1:-1]] == [
        c["subject"] for c in commits]
    touched = commits[1]
    assert [(f["defect"], f["path"], f["line"]) for f in touched["findings"]] == [
        ("PROJ-7", "app.py", 2)]
    assert touched["findings"] == _by_check_commit(fixed, touched["commit"])
    assert commits[0]["findings"] == commits[2]["findings"] == []
    text = dasct(fixed.path, "check", "--each", "HEAD~3..HEAD")
    assert text.code == 0
    assert text.out.count("lines that fixed") == 1 and "touch it" in text.out
    assert text.out.splitlines()[-1] == (
        "dasct: HEAD~3..HEAD: 3 commits checked, 1 touch protected lines (1 finding)")
    assert dasct(fixed.path, "check", "--each", "HEAD~3..HEAD", "--strict").code == 1


def test_each_refuses_what_it_cannot_do(fixed: GitRepo) -> None:
    res = dasct(fixed.path, "check", "--each", "HEAD~3..HEAD", "--format", "sarif")
    assert res.code != 0 and "--each writes text or json" in res.err
    res = dasct(fixed.path, "check", "--each", "HEAD~3")
    assert res.code != 0 and "--each wants A..B" in res.err


def test_each_reports_the_chosen_kinds(repo: GitRepo) -> None:
    repo.commit("base", {"app.py": "# the rate\nrate = 1\n"})
    repo.commit("Fix PROJ-7", {"app.py": "# the rate, fixed\nrate = 2\n"})
    (repo.path / ".dasct.toml").write_text('[defects]\njira_projects = ["PROJ"]\n')
    repo.commit("config")
    repo.commit("reword the comment", {"app.py": "# the rate (fixed)\nrate = 2\n"})
    repo.commit("change the code", {"app.py": "# the rate (fixed)\nrate = 3\n"})
    r = git.discover(repo.path)
    cfg = settings.load(r)
    steps = walk.each(r, cfg, "HEAD~2..HEAD")
    assert [(len(s.findings), len(s.left_out)) for s in steps] == [(0, 1), (1, 0)]
    assert steps[1].findings[0].kind == "code"
    every = walk.each(r, cfg, "HEAD~2..HEAD", all_kinds=True)
    assert [[f.kind for f in s.findings] for s in every] == [["comment"], ["code"]]
    res = dasct(repo.path, "check", "--each", "HEAD~2..HEAD", "--format", "json")
    assert [c["not_reported"] for c in res.json()["commits"]] == [1, 0]
