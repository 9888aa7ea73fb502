"""Checkpoints: answers about old commits from a checkpoint agree with `git blame -w` at
that commit, stay within their bound, and are never trusted when damaged or stale."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dasct import git, index, index_checkpoints, settings
from dasct_run import dasct
from gitrepo import GitRepo
from test_index_oracle import History


@pytest.fixture
def tight(monkeypatch: pytest.MonkeyPatch) -> None:
    """Checkpoints every few commits, at most four: small histories exercise them."""
    monkeypatch.setattr(index_checkpoints, "MIN_SPACING", 3)
    monkeypatch.setattr(index_checkpoints, "MAX_CHECKPOINTS", 4)


def _grow(repo: GitRepo, seed: int, steps: int) -> History:
    history = History(repo, seed)
    history.commit()
    for _ in range(steps):
        if history.rng.random() < 0.3:
            history.merge()
        else:
            history.commit()
    return history


def _at(repo: GitRepo, rev: str | None = None) -> index.Snapshot:
    r = git.discover(repo.path)
    return index.snapshot_at(r, settings.load(r), rev or r.head)


def _compare_at(repo: GitRepo, snap: index.Snapshot, rev: str) -> None:
    """snap against `git blame -w` of every file of rev."""
    files = repo.git("ls-tree", "-r", "--name-only", rev).splitlines()
    nonempty = [p for p in files if int(repo.git("cat-file", "-s", f"{rev}:{p}"))]
    assert sorted(p for p, v in dict.items(snap.files) if v) == sorted(nonempty)
    for path in files:
        got = [snap.sha(o) for o in snap.origins(path)]
        assert got == repo.blame(path, rev), f"{path} differs from git blame -w at {rev}"


def _points(repo: GitRepo) -> dict[str, tuple[int, object]]:
    return dict(index_checkpoints.listing(git.discover(repo.path)))


def _snap_names(repo: GitRepo) -> set[str]:
    return {p.stem for p in index.index_dir(git.discover(repo.path)).glob("*.snap")}


@pytest.mark.parametrize("seed", range(8))
def test_answers_from_checkpoints_agree_with_blame(repo: GitRepo, tight: None,
                                                   seed: int) -> None:
    _grow(repo, 300 + seed, 24)
    head = repo.head()
    _at(repo)
    assert _points(repo), "a rebuild of 25+ commits writes checkpoints"
    rng = random.Random(seed)
    every = repo.git("rev-list", "HEAD").split()  # side-branch commits as well
    kept, from_points = set(), 0
    for rev in rng.sample(every[1:], min(8, len(every) - 1)):
        snap = _at(repo, rev)
        assert snap.head == rev
        _compare_at(repo, snap, rev)
        if snap.stats["checkpoint"]:
            from_points += 1
        else:  # a side commit forked before every checkpoint: rebuilt, or from that
            kept.add(rev)
    # The questions left HEAD's snapshot alone; the answers are kept within the bound.
    names = _snap_names(repo)
    assert head in names and len(names) <= index.KEEP_SNAPSHOTS
    assert from_points


def test_a_series_of_old_commits_replays_one_commit_each_and_keeps_head(
        repo: GitRepo, tight: None) -> None:
    """CI checks each commit of a push oldest first: each answer is the next one's base
    (one commit replayed), however many there are, and HEAD's snapshot survives them."""
    history = History(repo, 43)
    shas = [history.commit() for _ in range(index.KEEP_SNAPSHOTS + 8)]
    _at(repo)
    for sha in shas[3:-1]:
        snap = _at(repo, sha)
        _compare_at(repo, snap, sha)
    assert snap.stats["commits"] == 1
    assert repo.head() in _snap_names(repo)
    assert len(_snap_names(repo)) == index.KEEP_SNAPSHOTS
    assert _at(repo).stats["kind"] == 0  # HEAD: still cached


def test_a_question_replays_from_the_nearest_checkpoint(repo: GitRepo, tight: None) -> None:
    history = History(repo, 41)
    shas = [history.commit() for _ in range(30)]
    _at(repo)
    points = _points(repo)
    nearest = min(p for p, _ in points.values())
    deep = shas[nearest + 1]  # at position nearest + 2: two commits past the checkpoint
    snap = _at(repo, deep)
    assert snap.stats["kind"] == 1 and snap.stats["commits"] == 2
    _compare_at(repo, snap, deep)
    on_point = next(sha for sha in points if sha != repo.head())
    assert _at(repo, on_point).stats["commits"] == 0  # answered by the checkpoint itself


def test_checkpoints_stay_within_their_bound_and_spread(repo: GitRepo, tight: None) -> None:
    history = History(repo, 5)
    for _ in range(40):
        history.commit()
    _at(repo)
    positions = sorted(p for p, _ in _points(repo).values())
    # One every 40/4 commits along the chain, HEAD's own included.
    assert positions == [10, 20, 30, 40]
    for _ in range(30):  # an update for HEAD past many spacings writes and thins again
        history.commit()
    _at(repo)
    after = sorted(p for p, _ in _points(repo).values())
    assert len(after) == 4 and after[-1] > positions[-1]


@given(st.lists(st.integers(1, 10_000), unique=True, max_size=60), st.integers(1, 40))
def test_thinning_keeps_the_bound_and_the_newest(positions: list[int], keep: int) -> None:
    positions.sort()
    gone = index_checkpoints.to_thin(positions, keep)
    left = [p for p in positions if p not in gone]
    assert len(left) == min(len(positions), keep)
    if positions:
        assert left[-1] == positions[-1]


@given(st.integers(2, 150), st.integers(2, 40), st.integers(1, 500))
def test_thinning_an_even_series_leaves_it_even(count: int, keep: int, step: int) -> None:
    # What a long-lived repository gets: checkpoints one spacing apart, thinned again and
    # again. No gap left is more than twice another.
    positions = [step * (i + 1) for i in range(count)]
    gone = set(index_checkpoints.to_thin(positions, keep))
    left = [p for p in positions if p not in gone]
    gaps = [b - a for a, b in zip([0, *left], left, strict=False)]
    assert max(gaps) <= 2 * min(gaps)


def test_a_damaged_checkpoint_is_discarded_and_the_answer_still_right(
    repo: GitRepo, tight: None, capsys: pytest.CaptureFixture[str]
) -> None:
    history = History(repo, 9)
    shas = [history.commit() for _ in range(30)]
    _at(repo)
    points = sorted(_points(repo).values())
    position, path = points[1]
    path.write_bytes(path.read_bytes()[:-7])  # truncated
    rev = shas[position]  # the commit after the damaged checkpoint's: it would serve
    _compare_at(repo, _at(repo, rev), rev)
    assert not path.exists()
    assert "discarded the cache file" in capsys.readouterr().err


def test_a_checkpoint_of_another_history_is_ignored(repo: GitRepo, tight: None) -> None:
    history = History(repo, 13)
    shas = [history.commit() for _ in range(30)]
    _at(repo)
    before = _points(repo)
    # Ignoring a revision changes what blame sees: every checkpoint is of another history.
    repo.write(".git-blame-ignore-revs", f"{shas[2]}\n")
    rev = shas[20]
    _compare_at(repo, _at(repo, rev), rev)
    r = git.discover(repo.path)
    fingerprint = index.history(r)[2]
    after = _points(repo)
    assert set(before) - set(after), "the checkpoints of the old history were deleted"
    assert all(index.read_snapshot(p).history_fp == fingerprint for _, p in after.values())
    _compare_at(repo, _at(repo), repo.head())


def test_index_reports_checkpoints(repo: GitRepo) -> None:
    history = History(repo, 21)
    for _ in range(index_checkpoints.MIN_SPACING + 5):
        history.commit()
    report = dasct(repo.path, "index", "--format", "json").json()
    points = index_checkpoints.listing(git.discover(repo.path))
    assert report["checkpoints"] == len(points) == 1
    assert report["checkpoint_bytes"] == sum(p.stat().st_size for _, p in points.values())
    text = dasct(repo.path, "index").out
    assert f"1 checkpoint, {report['checkpoint_bytes']} bytes" in text
    assert json.loads(dasct(repo.path, "index", "--format", "json").out)["checkpoints"] == 1
