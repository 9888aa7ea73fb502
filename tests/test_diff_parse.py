"""The one diff parser on real git output where "\\ No newline at end of file" markers
sit inside and after hunks, beside content that looks like headers: every file and hunk
is read as git wrote it, and the index built from such history agrees with blame."""

from __future__ import annotations

from dasct import diff, git, index, settings
from gitrepo import GitRepo


def _parse(repo: GitRepo, *args: str) -> list[diff.FileChange]:
    out = git.run("diff", *diff.PATCH_OPTIONS, *args, cwd=repo.path)
    sections = list(diff.parse(diff.lines_of(out), commits=False))
    assert len(sections) == 1
    return sections[0].files


def test_a_missing_final_newline_inside_hunks_is_not_counted(repo: GitRepo) -> None:
    # Content lines that look like headers follow the marker lines: a miscount would
    # take them for a new file or a new hunk.
    repo.commit("initial", {
        "a.txt": "one\ntwo\nlast without newline",
        "b.txt": "+++ b/fake\n@@ -1 +1 @@\nend",
        "c.txt": "kept\n",
    })
    repo.commit("change", {
        "a.txt": "one\nTWO\nlast changed, still without",
        "b.txt": "+++ b/fake\n@@ -9 +9 @@\ndiff --git a/x b/x\nend\n",
        "c.txt": "kept\nadded\n",
    })
    out = git.run("diff", *diff.PATCH_OPTIONS, "HEAD~1", "HEAD", cwd=repo.path)
    # One marker in the middle of a.txt's hunk, one at its end.
    assert out.count(b"\\ No newline at end of file") == 2
    files = {c.new_path: [(h.old_start, h.old_len, h.new_start, h.new_len) for h in c.hunks]
             for c in _parse(repo, "HEAD~1", "HEAD")}
    assert files == {
        "a.txt": [(2, 2, 2, 2)],
        "b.txt": [(2, 1, 2, 2)],
        "c.txt": [(1, 0, 2, 1)],
    }


def test_the_index_agrees_with_blame_on_files_without_final_newlines(repo: GitRepo) -> None:
    repo.commit("initial", {"a.txt": "1\n2\n3", "b.txt": "x\n+++ b/y\n@@ -1 +1 @@"})
    repo.commit("Fix PROJ-1: end", {"a.txt": "1\n2\n3 fixed", "b.txt": "x\n+++ b/y\nz"})
    repo.commit("Fix PROJ-2: middle", {"a.txt": "1\n2 fixed\n3 fixed\n",
                                       "b.txt": "x\n+++ b/y changed\nz\n"})
    repo.commit("more", {"a.txt": "0\n1\n2 fixed\n3 fixed again", "b.txt": "w\nx\nz"})
    r = git.discover(repo.path)
    snap = index.snapshot_at(r, settings.load(r), r.head, rebuild=True)
    for path in ("a.txt", "b.txt"):
        assert [snap.sha(o) for o in snap.origins(path)] == repo.blame(path), path
