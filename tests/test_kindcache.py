"""The kinds the refresh keeps for the files at HEAD (kindcache.py): the classifier's
answer for every line, believed only when intact, and never a different warning."""

from __future__ import annotations

from pathlib import Path

import pytest

from dasct import cache, git, kindcache, kinds
from dasct_run import dasct
from gitrepo import GitRepo

JAVA = """package org.example;

import java.util.List;

/**
 * A Javadoc sentence.
 */
public class Thing {
    // a line comment
    private int n = 1; /* trailing */

    public int get() {
        return n;
    }
}
"""
PYTHON = '''"""Module docstring."""

import os
from typing import (
    Any,
)


def f(x):
    # comment
    return os.path.join(x, "#not a comment")
'''
C = """#include <stdio.h>
/* a block
   over lines */
int main(void) {
    return 0; // done
}
"""
FILES = {"src/Thing.java": JAVA, "lib/mod.py": PYTHON, "main.c": C,
         "notes.txt": "# not a comment in text\nplain\n", "Makefile": "# a comment\nall:\n"}


def before(text: str) -> str:
    """Every line other, so that the fix commit protects all of them."""
    return "".join(f"old{n}\n" for n, _ in enumerate(text.splitlines()))


@pytest.fixture
def protected(repo: GitRepo) -> GitRepo:
    repo.commit("initial", {path: before(text) for path, text in FILES.items()})
    repo.commit("Fix PROJ-1: everything", {path: text for path, text in FILES.items()})
    result = dasct(repo.path, "index")
    assert result.code == 0, result.err
    return repo


def state_dir(repo: GitRepo) -> str:
    return str(repo.path / ".git" / "dasct")


def test_the_cache_holds_what_the_classifier_says_of_every_line(protected: GitRepo) -> None:
    blobs = git.ls_tree(protected.path, "HEAD")
    held = 0
    for path, text in FILES.items():
        body = kindcache.kinds_of(state_dir(protected), blobs[path], path)
        assert body is not None, path
        count = len(text.splitlines())
        # The route a hook takes for a few lines: each line classified on its own.
        one_by_one = [kinds.classify(path, text.encode(), [n])[n] for n in range(1, count + 1)]
        assert [kindcache.KIND_OF[b] for b in body] == one_by_one, path
        held += 1
    assert held == len(FILES)
    assert set(kindcache.KIND_OF.values()) == set(kinds.KINDS)


def staged_findings(repo: GitRepo, *extra: str) -> str:
    result = dasct(repo.path, "check", "--staged", "--format", "json", *extra)
    assert result.code == 0, result.err
    assert "Traceback" not in result.err
    return result.out


def test_a_check_says_the_same_with_the_cache_and_without(protected: GitRepo) -> None:
    for path, text in FILES.items():
        protected.write(path, text.replace("\n", " \n").replace("n", "N"))
    protected.git("add", "-A")
    cached = {"--all": staged_findings(protected, "--all"), "": staged_findings(protected)}
    assert '"kind": "comment"' in cached["--all"] and '"kind": "import"' in cached["--all"]
    kept = Path(state_dir(protected), kindcache.DIR)
    for bucket in kept.iterdir():
        bucket.unlink()
    assert cached == {"--all": staged_findings(protected, "--all"),
                      "": staged_findings(protected)}


def test_a_damaged_or_foreign_entry_is_not_believed(protected: GitRepo) -> None:
    blob = git.ls_tree(protected.path, "HEAD")["src/Thing.java"]
    bucket = Path(state_dir(protected), kindcache.DIR, blob[:2])
    data = bucket.read_bytes()
    start = data.index(blob.encode())
    body_at = data.index(b"\n", start) + 1
    # Another kind for the first line (a letter that is still a kind): the CRC catches it.
    flipped = data[:body_at] + (b"c" if data[body_at:body_at + 1] != b"c" else b"m") + data[
        body_at + 1:]
    bucket.write_bytes(flipped)
    assert kindcache.kinds_of(state_dir(protected), blob, "src/Thing.java") is None
    # The same blob under a name of another language is another entry (here: none).
    assert kindcache.kinds_of(state_dir(protected), blob, "src/Thing.txt") is None
    bucket.write_bytes(data[: len(data) // 2])  # cut short
    assert kindcache.kinds_of(state_dir(protected), blob, "src/Thing.java") is None
    protected.write("src/Thing.java", JAVA.replace("A Javadoc", "The Javadoc"))
    protected.git("add", "-A")
    out = staged_findings(protected, "--all")
    assert '"kind": "comment"' in out  # classified by the check itself


def test_the_refresh_adds_the_files_that_changed(protected: GitRepo) -> None:
    kept = Path(state_dir(protected), kindcache.DIR)
    before = {b.name: b.read_bytes() for b in kept.iterdir()}
    protected.commit("Fix PROJ-2: the C file", {"main.c": C.replace("return 0", "return 1")})
    result = dasct(protected.path, "refresh")
    assert result.code == 0, result.err
    after = {b.name: b.read_bytes() for b in kept.iterdir()}
    blob = git.ls_tree(protected.path, "HEAD")["main.c"]
    assert kindcache.kinds_of(state_dir(protected), blob, "main.c") is not None
    assert (kept / "HEAD").read_text().strip() == protected.head()
    changed = {name for name in after if after[name] != before.get(name)}
    assert changed == {blob[:2], "HEAD"}


def test_a_bucket_keeps_its_newest_entries(protected: GitRepo,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kindcache, "MAX_PER_BUCKET", 2)
    repo = git.discover(protected.path)
    texts = {f"f{n}.py": f"# {n}\nx = {n}\n" for n in range(40)}
    protected.commit("more", texts)
    blobs = git.ls_tree(protected.path, "HEAD")
    assert kindcache.fill(repo, {p: blobs[p] for p in texts}) == len(texts)
    for bucket in Path(state_dir(protected), kindcache.DIR).iterdir():
        if bucket.name != "HEAD":
            assert len(list(kindcache._entries(bucket.read_bytes()))) <= 2
    newest = sorted(texts)[-1]  # filled in path order: the last one is in its bucket
    assert kindcache.kinds_of(state_dir(protected), blobs[newest], newest) == b"mc"
    # A bucket that cannot be written (a directory in its place, which stops root too) is
    # only a slower check, and says so once.
    protected.commit("one more", {"g.py": "# g\n"})
    g = git.ls_tree(protected.path, "HEAD")["g.py"]
    bucket = Path(state_dir(protected), kindcache.DIR, g[:2])
    if bucket.exists():
        bucket.unlink()
    bucket.mkdir()
    cache.failed_writes()
    assert kindcache.fill(repo, {"g.py": g}) == 0
    assert "could not save the cache file" in (cache.failed_writes() or "")
    assert kindcache.kinds_of(state_dir(protected), g, "g.py") is None
