"""The index must agree with `git blame -w` line for line, on generated histories.

Each history mixes line edits, insertions, deletions, whitespace-only edits, renames
(with and without edits), file deletions and re-additions, branches and merges (clean,
conflicting and evil), and a `.git-blame-ignore-revs` file. The oracle is real
`git blame -w` on every file; the index is checked both rebuilt from scratch and updated
incrementally while the history grows, including after branch switches and amends.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from dasct import git, index, settings
from gitrepo import GitRepo

WORDS = ["alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta", "iota", "kappa"]
PATHS = ["a.txt", "src/b.py", "src/c.py", "docs/d.md", "e.txt", "src/deep/f.c"]


def _line(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 4)))


class History:
    """Random but reproducible edits on a real repository."""

    def __init__(self, repo: GitRepo, seed: int) -> None:
        self.repo = repo
        self.rng = random.Random(seed)
        self.n = 0

    def files(self) -> list[str]:
        return [p for p in PATHS if (self.repo.path / p).exists()]

    def read(self, path: str) -> list[str]:
        return (self.repo.path / path).read_text().splitlines()

    def write(self, path: str, lines: list[str]) -> None:
        self.repo.write(path, "".join(x + "\n" for x in lines))

    def edit(self) -> None:
        rng = self.rng
        files = self.files()
        op = rng.random()
        if not files or op < 0.12:
            path = rng.choice(PATHS)
            if path not in files:
                self.write(path, [_line(rng) for _ in range(rng.randint(3, 25))])
                return
        path = rng.choice(files or PATHS)
        lines = self.read(path)
        if op < 0.45:  # rewrite a few lines
            for _ in range(rng.randint(1, 3)):
                if lines:
                    lines[rng.randrange(len(lines))] = _line(rng)
        elif op < 0.6:  # insert a block
            at = rng.randint(0, len(lines))
            lines[at:at] = [_line(rng) for _ in range(rng.randint(1, 4))]
        elif op < 0.7:  # delete a block
            if lines:
                at = rng.randrange(len(lines))
                del lines[at : at + rng.randint(1, 3)]
        elif op < 0.8:  # whitespace only: blame -w must see no change
            for _ in range(rng.randint(1, 3)):
                if lines:
                    i = rng.randrange(len(lines))
                    lines[i] = "    " + lines[i].replace(" ", "  ")
        elif op < 0.88:  # rename, sometimes with an edit
            free = [p for p in PATHS if not (self.repo.path / p).exists()]
            if not free:
                return
            target = rng.choice(free)
            (self.repo.path / target).parent.mkdir(parents=True, exist_ok=True)
            self.repo.git("add", path)
            self.repo.git("mv", path, target)
            if lines and rng.random() < 0.5:
                lines[rng.randrange(len(lines))] = _line(rng)
                self.write(target, lines)
            return
        elif op < 0.94:  # delete the file (it may come back later with old or new lines)
            (self.repo.path / path).unlink()
            return
        else:  # duplicate a line next to itself: where blame's diff slides matters
            if lines:
                i = rng.randrange(len(lines))
                lines.insert(i, lines[i])
        self.write(path, lines)

    def commit(self) -> str:
        self.n += 1
        for _ in range(self.rng.randint(1, 3)):
            self.edit()
        msg = f"change {self.n}"
        if self.rng.random() < 0.4:
            msg += f"\n\nFixes PROJ-{self.rng.randint(1, 9)}"
        return self.repo.commit(msg)

    def resolve(self) -> None:
        """Conclude a conflicted merge by hand: keep both sides' lines in some order."""
        repo = self.repo
        if not repo.git("ls-files", "-u"):
            return
        for path in {x.split("\t")[1] for x in repo.git("ls-files", "-u").splitlines()}:
            full = repo.path / path
            if full.exists():
                text = full.read_text().splitlines()
                kept = [x for x in text if not x.startswith(("<<<<<<<", "=======", ">>>>>>>"))]
                self.write(path, kept)
                repo.git("add", path)
            else:
                repo.git("rm", "-q", "--cached", path, check=False)
        repo.git("commit", "-q", "--no-edit")

    def merge(self) -> None:
        repo = self.repo
        base = repo.git("rev-parse", "--abbrev-ref", "HEAD").strip()
        branch = f"topic{self.n}"
        repo.git("checkout", "-q", "-b", branch)
        for _ in range(self.rng.randint(1, 3)):
            self.commit()
        repo.git("checkout", "-q", base)
        for _ in range(self.rng.randint(0, 2)):
            self.commit()
        strategy = self.rng.choice(["plain", "ours", "theirs", "evil"])
        args = ["merge", "-q", "--no-ff", "-m", f"Merge {branch}"]
        if strategy in ("ours", "theirs"):
            args += ["-X", strategy]
        done = repo.git(*args, branch, check=False)
        del done
        self.resolve()
        if strategy == "evil":
            files = self.files()
            if files:
                path = self.rng.choice(files)
                lines = self.read(path)
                lines.append("evil " + _line(self.rng))
                self.write(path, lines)
                repo.git("commit", "-q", "-a", "--amend", "--no-edit")


def _compare(repo: GitRepo, snap: index.Snapshot) -> None:
    files = [p for p in repo.git("ls-files").splitlines()]
    assert sorted(p for p, v in dict.items(snap.files) if v) == sorted(
        p for p in files if (repo.path / p).stat().st_size
    )
    for path in files:
        expected = repo.blame(path)
        got = [snap.sha(o) for o in snap.origins(path)]
        assert got == expected, f"{path} differs from git blame -w at {snap.head}"


def _snapshot(repo: GitRepo, **kw: bool) -> index.Snapshot:
    r = git.discover(repo.path)
    return index.snapshot_at(r, settings.load(r), r.head, **kw)


@pytest.mark.parametrize("seed", range(12))
def test_index_matches_blame_on_generated_history(repo: GitRepo, seed: int) -> None:
    history = History(repo, seed)
    history.commit()
    for step in range(14):
        if history.rng.random() < 0.3:
            history.merge()
        else:
            history.commit()
        if step % 3 == 0:
            _compare(repo, _snapshot(repo))  # incremental updates as the history grows
    if seed % 3 == 0:
        # Ignore a whitespace-ish reformatting commit the way .git-blame-ignore-revs does.
        history.commit()
        ignored = repo.head()
        repo.write(".git-blame-ignore-revs", f"# reformat\n{ignored}\n")
        history.commit()
    _compare(repo, _snapshot(repo))
    _compare(repo, _snapshot(repo, rebuild=True))


@pytest.mark.parametrize("seed", range(4))
def test_index_follows_branch_switches_and_amends(repo: GitRepo, seed: int) -> None:
    history = History(repo, 100 + seed)
    for _ in range(6):
        history.commit()
    _compare(repo, _snapshot(repo))
    repo.git("checkout", "-q", "-b", "other", "HEAD~3")
    history.commit()
    _compare(repo, _snapshot(repo))
    repo.git("commit", "-q", "--amend", "-m", "amended\n\nFixes PROJ-3")
    _compare(repo, _snapshot(repo))
    repo.git("checkout", "-q", "main")
    history.merge()
    _compare(repo, _snapshot(repo))
    repo.git("rebase", "-q", "other", check=False)
    dot_git = repo.path / ".git"
    if (dot_git / "rebase-merge").exists() or (dot_git / "rebase-apply").exists():
        repo.git("rebase", "--abort")
    _compare(repo, _snapshot(repo))


def test_corrupt_snapshot_is_rebuilt(repo: GitRepo, tmp_path: Path) -> None:
    history = History(repo, 7)
    for _ in range(5):
        history.commit()
    snap = _snapshot(repo)
    r = git.discover(repo.path)
    path = index.index_dir(r) / f"{snap.head}.snap"
    path.write_bytes(b"garbage")
    _compare(repo, _snapshot(repo))
    assert path.read_bytes() != b"garbage"


def test_snapshots_in_use_survive_eviction(repo: GitRepo) -> None:
    history = History(repo, 11)
    shas = [history.commit() for _ in range(index.KEEP_SNAPSHOTS + 3)]
    repo.git("checkout", "-q", shas[0])
    _snapshot(repo)
    for sha in shas[1:]:
        repo.git("checkout", "-q", sha)
        _snapshot(repo)
        repo.git("checkout", "-q", shas[0])
        # HEAD is back on the first commit: its snapshot is in use, never evicted.
        assert _snapshot(repo).stats["kind"] == 0
    r = git.discover(repo.path)
    kept = {p.stem for p in index.index_dir(r).glob("*.snap")}
    assert shas[0] in kept and len(kept) == index.KEEP_SNAPSHOTS


@pytest.mark.parametrize("seed", range(6))
def test_merging_a_branch_forked_before_the_snapshot(repo: GitRepo, seed: int) -> None:
    # The branch's commits have parents the update never replays (older than the
    # snapshot it starts from): their states come from `git blame -w` per file.
    history = History(repo, 200 + seed)
    for _ in range(6):
        history.commit()
    fork = repo.git("rev-parse", "HEAD~4").strip()
    _compare(repo, _snapshot(repo))
    repo.git("checkout", "-q", "-b", "old-topic", fork)
    for _ in range(3):
        history.commit()
    repo.git("checkout", "-q", "main")
    history.commit()
    _compare(repo, _snapshot(repo))
    repo.git("merge", "-q", "--no-ff", "-m", "Merge old-topic", "old-topic", check=False)
    history.resolve()
    snap = _snapshot(repo)
    assert snap.stats["kind"] == 1  # updated incrementally, not rebuilt
    _compare(repo, snap)
