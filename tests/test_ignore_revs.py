"""Commits in `.git-blame-ignore-revs`: the index gives their lines what `git blame -w
--ignore-revs-file` gives, line for line, at every later commit.

The index takes one step of blame per file an ignored commit changes (replay.py); these
histories make the step matter: reformatting commits that rewrap, requote, rename and
reorder lines (not whitespace alone, which `-w` already ignores), ignored merges,
ignored commits on both sides of a merge, and several ignored commits in a row.
"""

from __future__ import annotations

import random

import pytest

from dasct import git, index, settings
from gitrepo import GitRepo
from test_index_oracle import History, _compare


def _reformat(history: History, how: str) -> None:
    """Rewrite most lines of most files the way formatters do (never whitespace only)."""
    rng = history.rng
    for path in history.files():
        lines = history.read(path)
        if how == "wrap":  # join pairs of lines, split long ones
            out: list[str] = []
            i = 0
            while i < len(lines):
                if i + 1 < len(lines) and rng.random() < 0.4:
                    out.append(lines[i] + " " + lines[i + 1].strip())
                    i += 2
                    continue
                words = lines[i].split(" ")
                if len(words) > 2 and rng.random() < 0.4:
                    cut = rng.randint(1, len(words) - 1)
                    out += [" ".join(words[:cut]), "    " + " ".join(words[cut:])]
                else:
                    out.append(lines[i])
                i += 1
            lines = out
        elif how == "quotes":  # quote style and trailing punctuation on most lines
            lines = [f'"{x}",' if rng.random() < 0.7 else x for x in lines]
        elif how == "rename":  # a renamed identifier on some lines, a few lines moved
            lines = [x.replace("alpha", "ALPHA").replace("eta", "ETA") for x in lines]
            if len(lines) > 3 and rng.random() < 0.5:
                j = rng.randrange(len(lines) - 1)
                lines[j], lines[j + 1] = lines[j + 1], lines[j]
        history.write(path, lines)


def _ignore(repo: GitRepo, *shas: str) -> None:
    text = "# formatters\n" + "".join(f"{s}\n" for s in shas)
    repo.write(".git-blame-ignore-revs", text)


def _snapshot(repo: GitRepo, **kw: bool) -> index.Snapshot:
    r = git.discover(repo.path)
    return index.snapshot_at(r, settings.load(r), r.head, **kw)


def _differs_from_plain_blame(repo: GitRepo) -> bool:
    """Whether ignoring the revisions changes anything blame says (the test has teeth)."""
    ignore = repo.path / ".git-blame-ignore-revs"
    files = [p for p in repo.git("ls-files").splitlines() if p != ignore.name]
    with_ignore = {p: repo.blame(p) for p in files}
    text = ignore.read_text()
    ignore.unlink()
    try:
        return any(repo.blame(p) != with_ignore[p] for p in files)
    finally:
        ignore.write_text(text)


@pytest.mark.parametrize("how", ["wrap", "quotes", "rename"])
@pytest.mark.parametrize("seed", range(3))
def test_a_reformatting_commit_is_blamed_through(repo: GitRepo, seed: int, how: str) -> None:
    history = History(repo, 300 + seed)
    for _ in range(8):
        history.merge() if history.rng.random() < 0.25 else history.commit()
    _reformat(history, how)
    reformat = repo.commit("reformat")
    for _ in range(3):
        history.commit()
    _ignore(repo, reformat)
    repo.commit("ignore the reformat")
    assert _differs_from_plain_blame(repo)
    _compare(repo, _snapshot(repo))
    _compare(repo, _snapshot(repo, rebuild=True))


@pytest.mark.parametrize("seed", range(3))
def test_an_ignored_merge_and_ignored_commits_on_both_sides(repo: GitRepo, seed: int) -> None:
    history = History(repo, 400 + seed)
    for _ in range(5):
        history.commit()
    repo.git("checkout", "-q", "-b", "side")
    history.commit()
    _reformat(history, "quotes")
    side = repo.commit("reformat on the side")
    repo.git("checkout", "-q", "main")
    history.commit()
    _reformat(history, "wrap")
    ours = repo.commit("reformat on main")
    repo.git("merge", "-q", "--no-ff", "-m", "merge side", "side", check=False)
    history.resolve()
    if repo.git("rev-parse", "HEAD").strip() == ours:  # the merge conflicted
        repo.git("commit", "-q", "--no-edit", check=False)
    # An evil merge that reformats once more is a formatter's commit too.
    _reformat(history, "rename")
    repo.git("commit", "-q", "-a", "--amend", "--no-edit")
    merge = repo.head()
    assert len(repo.git("rev-parse", f"{merge}^@").split()) == 2
    history.commit()
    _ignore(repo, side, ours, merge)
    repo.commit("ignore the formatters")
    assert _differs_from_plain_blame(repo)
    _compare(repo, _snapshot(repo))
    _compare(repo, _snapshot(repo, rebuild=True))


def test_ignored_commits_in_a_row_and_a_renamed_file(repo: GitRepo) -> None:
    history = History(repo, 500)
    for _ in range(6):
        history.commit()
    shas = []
    for how in ("wrap", "quotes"):
        _reformat(history, how)
        shas.append(repo.commit(f"reformat {how}"))
    path = history.files()[0]
    repo.git("mv", path, "renamed.txt")
    lines = history.read("renamed.txt")
    history.write("renamed.txt", [x.upper() if random.Random(1).random() < 0.5 else x
                                  for x in lines])
    shas.append(repo.commit("rename and reformat"))
    history.commit()
    _ignore(repo, *shas)
    repo.commit("ignore them")
    assert _differs_from_plain_blame(repo)
    _compare(repo, _snapshot(repo, rebuild=True))
    # An ignored commit added while the index is warm: the snapshot follows the new file.
    _reformat(history, "rename")
    late = repo.commit("another reformat")
    _ignore(repo, *shas, late)
    repo.commit("ignore it too")
    _compare(repo, _snapshot(repo))
