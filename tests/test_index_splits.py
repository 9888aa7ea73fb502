"""One file split into several new files: each new file finds the old one as its source,
as `git blame` does (a rename search per destination), not only the one file git's global
`-M` pairing gives it to. Every line of every file is compared with `git blame -w`."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from pathlib import Path

import pytest

from dasct import diff, git, index, renames, settings
from gitrepo import GitRepo

ORIGINAL = [f"    statement number {i} of the original file;" for i in range(120)]


def _text(lines: Iterable[str]) -> str:
    return "".join(x + "\n" for x in lines)


def _compare(repo: GitRepo, rebuild: bool) -> None:
    r = git.discover(repo.path)
    snap = index.snapshot_at(r, settings.load(r), r.head, rebuild=rebuild)
    for path in repo.git("ls-files").splitlines():
        got = [snap.sha(o) for o in snap.origins(path)]
        assert got == repo.blame(path), f"{path} differs from git blame -w"


def _split(repo: GitRepo, source: list[str], parts: int, *, edit: bool, keep: bool) -> None:
    """Replace Big.java (holding source) by `parts` new files, each with most of its lines."""
    size = len(source)
    files: dict[str, str] = {}
    for k in range(parts):
        # Overlapping slices: each part holds more than half of the original's lines, so
        # that each is similar enough to be a rename of it on its own.
        start = k * (size // (2 * parts))
        chunk = source[start : start + size * 6 // 10]
        if edit:
            chunk = [*chunk[:5], f"    // part {k} edited", *chunk[6:]]
        files[f"src/Part{k}.java"] = _text(chunk)
    if not keep:
        repo.git("rm", "-q", "src/Big.java")
    repo.commit("Split Big into parts", files)


@pytest.mark.parametrize("parts", [2, 3])
@pytest.mark.parametrize("edit", [False, True])
@pytest.mark.parametrize("merge", [False, True])
def test_a_file_split_into_new_files_keeps_its_origins(
    repo: GitRepo, parts: int, edit: bool, merge: bool
) -> None:
    repo.commit("initial", {"src/Big.java": _text(ORIGINAL), "README": "x\n"})
    fixed = list(ORIGINAL)
    for i in (10, 50, 70, 90):
        fixed[i] = fixed[i].replace("statement", "fixed statement")
    repo.commit("Fix PROJ-1 in Big", {"src/Big.java": _text(fixed)})
    if merge:
        repo.git("checkout", "-q", "-b", "split")
    _split(repo, fixed, parts, edit=edit, keep=False)
    if merge:
        repo.git("checkout", "-q", "main")
        repo.commit("Unrelated work on main", {"README": "x\ny\n"})
        repo.git("merge", "-q", "--no-ff", "-m", "Merge the split", "split")
    _compare(repo, rebuild=True)
    repo.commit("Later work", {"src/Part0.java": (repo.path / "src/Part0.java").read_text()
                               + "    tail;\n"})
    _compare(repo, rebuild=False)  # incremental, from the snapshot before


def test_a_split_that_keeps_the_original_file(repo: GitRepo) -> None:
    # Without -C, blame does not look for sources among files that stay: the new files'
    # lines are the split commit's own, and the index agrees.
    repo.commit("initial", {"src/Big.java": _text(ORIGINAL)})
    _split(repo, ORIGINAL, 2, edit=False, keep=True)
    _compare(repo, rebuild=True)


def test_split_with_pathspec_characters_in_names(repo: GitRepo) -> None:
    repo.commit("initial", {"src/[Big]*.java": _text(ORIGINAL)})
    repo.git("rm", "-q", "src/[Big]*.java")
    repo.commit("Split", {"src/a*.java": _text(ORIGINAL[:80]),
                          "src/b?.java": _text(ORIGINAL[30:])})
    _compare(repo, rebuild=True)


def test_a_split_of_a_file_with_lone_carriage_returns(repo: GitRepo) -> None:
    # Found on apache/maven: a lone CR inside a line is content, not a line break (what
    # follows it here would read as a hunk header or a file header).
    source = [f"    value {i} = old\r@@ -1 +1 @@ {i}\rdiff --git a/x b/x;" for i in range(120)]
    repo.commit("initial", {"src/Big.java": _text(source)})
    _split(repo, source, 2, edit=True, keep=False)
    _compare(repo, rebuild=True)


def test_identical_sources_are_chosen_as_blame_chooses(repo: GitRepo) -> None:
    # Found on sphinx-doc/sphinx: a directory of identical files renamed at once; the
    # global pairing gave a file the other copy's history than blame follows.
    content = _text([f"    same line {i};" for i in range(30)])
    repo.commit("Fix PROJ-1: add the first copy", {"glob/img.txt": content})
    repo.commit("Add a second copy", {"glob/sub/img.txt": content, "glob/img.xx.txt": content})
    repo.git("mv", "glob", "images")
    repo.commit("Rename glob to images")
    _compare(repo, rebuild=True)



@pytest.mark.parametrize("share", [0.52, 0.56, 0.6])
def test_the_size_filter_keeps_every_pair_git_could_make(repo: GitRepo, share: float) -> None:
    """A destination is asked about only when some deleted file is within 2x of its size
    (git scores other pairs 0 unread). Here every new file is a rename of the old one for
    blame, at sizes near that bound: two pieces of a little over half of it, and two
    copies grown to a little under twice its size (one taken by git's global pairing,
    the other found by the per-destination search)."""
    lines = [f"    statement number {i} of the original file;" for i in range(400)]
    repo.commit("initial", {"src/Big.java": _text(lines), "README": "x\n"})
    for i in (3, 150, 390):
        lines[i] = lines[i].replace("statement", "fixed statement")
    repo.commit("Fix PROJ-1 in Big", {"src/Big.java": _text(lines)})
    keep = int(len(lines) * share)
    grown = list(lines)
    while len(_text(grown)) * share < len(_text(lines)) - 50:  # in bytes, as git sizes
        grown.append(f"    grown line {len(grown)};")
    repo.git("rm", "-q", "src/Big.java")
    repo.commit("Split and grow", {
        "src/Head.java": _text(lines[:keep]), "src/Tail.java": _text(lines[-keep:]),
        "src/Grown1.java": _text(grown),
        "src/Grown2.java": _text(x.replace("grown", "other") for x in grown),
    })
    r = git.discover(repo.path)
    snap = index.snapshot_at(r, settings.load(r), r.head, rebuild=True)
    fix = repo.git("rev-parse", "HEAD~1").strip()
    for path in ("src/Head.java", "src/Tail.java", "src/Grown1.java", "src/Grown2.java"):
        assert fix in repo.blame(path), f"blame does not follow {path} to Big.java"
    _compare(repo, rebuild=False)
    assert snap.links


def test_a_renamed_file_whose_best_source_went_elsewhere(repo: GitRepo) -> None:
    """`git log -M` gives each source to its best-scoring destination first: here Props
    goes to Other (90%), so NewScope gets Scope (60%); blame asks for NewScope alone and
    follows Props (80%). The shape of apache/maven's 3f9fec2307."""
    props = [f"    property line {i} of the props file;" for i in range(100)]
    scope = [*props[:60], *(f"    scope line {i};" for i in range(10))]
    repo.commit("initial", {"src/Props.java": _text(props), "src/Scope.java": _text(scope),
                            "README": "x\n"})
    fixed = [x.replace("property line 5 ", "fixed property line 5 ") for x in props]
    repo.commit("Fix PROJ-1 in Props", {"src/Props.java": _text(fixed)})
    repo.git("rm", "-q", "src/Props.java", "src/Scope.java")
    other = [*fixed, *(f"    other line {i};" for i in range(10))]
    new_scope = [*fixed[:80], *(f"    new scope line {i};" for i in range(20))]
    repo.commit("Reorganise scopes", {"src/Other.java": _text(other),
                                      "src/NewScope.java": _text(new_scope)})
    raw = repo.git("show", "--raw", "-M", "--format=", "HEAD")
    assert "src/Scope.java\tsrc/NewScope.java" in raw  # the log's pairing
    assert repo.git("rev-parse", "HEAD~1").strip() in repo.blame("src/NewScope.java")
    _compare(repo, rebuild=True)


def _loose_objects(repo: GitRepo) -> set[str]:
    objects = repo.path / ".git" / "objects"
    return {str(p.relative_to(objects)) for p in objects.glob("??/*")}


def test_the_searches_write_nothing_into_the_repository(
    repo: GitRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The searches' trees go to a private object directory, removed after the replay.
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(renames, "SCRATCH", str(scratch))
    repo.commit("initial", {"src/Big.java": _text(ORIGINAL), "README": "x\n"})
    _split(repo, ORIGINAL, 3, edit=True, keep=False)
    before = _loose_objects(repo)
    searched = []
    real = renames.Search.ask

    def counted(self: renames.Search, sources: str, destination: diff.FileChange
                ) -> diff.FileChange | None:
        searched.append(destination)
        assert [p.name[:14] for p in scratch.iterdir()] == ["dasct-renames-"]
        return real(self, sources, destination)

    monkeypatch.setattr(renames.Search, "ask", counted)
    _compare(repo, rebuild=True)
    assert len(searched) >= 2  # the split's new files were searched
    assert _loose_objects(repo) == before
    assert list(scratch.iterdir()) == []


def test_a_split_in_a_sha256_repository(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "repo", init=False)
    repo.path.mkdir()
    repo.git("init", "-q", "-b", "main", "--object-format=sha256")
    repo.commit("initial", {"src/Big.java": _text(ORIGINAL), "README": "x\n"})
    _split(repo, ORIGINAL, 2, edit=True, keep=False)
    part = (repo.path / "src/Part1.java").read_text().splitlines()
    repo.git("rm", "-q", "src/Part1.java")
    repo.commit("Split a part into deep directories", {
        "src/deep/dir/A.java": _text(part[:50]), "src/deep/er/B.java": _text(part[10:])})
    repo.commit("Move a part")
    _compare(repo, rebuild=True)


def test_a_split_in_a_clone_that_borrows_its_objects(repo: GitRepo, tmp_path: Path) -> None:
    # `git clone --shared`: every blob lives in the other repository (an alternate), which
    # the searches' private object directory must still reach.
    repo.commit("initial", {"src/Big.java": _text(ORIGINAL), "README": "x\n"})
    _split(repo, ORIGINAL, 3, edit=False, keep=False)
    borrower = GitRepo(tmp_path / "borrower", init=False)
    subprocess.run(["git", "clone", "-q", "--shared", str(repo.path), str(borrower.path)],
                   check=True)
    assert (borrower.path / ".git" / "objects" / "info" / "alternates").exists()
    assert not list((borrower.path / ".git" / "objects").glob("pack/*.pack"))
    _compare(borrower, rebuild=True)


def test_a_conversation_whose_git_fails_says_why(repo: GitRepo) -> None:
    repo.commit("initial", {"README": "x\n"})
    talk = git.conversation("diff-tree", "--stdin", "--no-such-option", cwd=repo.path,
                            echo=b"~end\n")
    with pytest.raises(git.GitError, match="no-such-option"):
        talk.ask(b"HEAD\n")
    talk.close()  # closing again is harmless
    assert talk.pid == 0
