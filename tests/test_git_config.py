"""The user's own git config must not change what dasct parses.

Each setting below changes the output of a git command dasct reads (diff and log hunks,
prefixes, colours, rename pairing, commit message encoding, the root commit's diff, blame
marks). With each one set in the repository's config, every command must print exactly
what it prints on a plain config, byte for byte, from a freshly built index.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dasct_run import dasct
from gitrepo import GitRepo

# setting -> a value that differs from git's default and changes some output dasct reads
SETTINGS: dict[str, str] = {
    "diff.interHunkContext": "10",
    "diff.context": "8",
    "diff.noprefix": "true",
    "diff.mnemonicPrefix": "true",
    "diff.relative": "true",
    "diff.external": "false",
    "diff.suppressBlankEmpty": "true",
    "diff.algorithm": "histogram",
    "diff.indentHeuristic": "false",
    "diff.renames": "false",
    "diff.renameLimit": "1",
    "diff.submodule": "log",
    "diff.ignoreSubmodules": "all",
    "diff.orderFile": "order.txt",
    "diff.colorMoved": "zebra",
    "color.ui": "always",
    "color.diff": "always",
    "color.blame.highlightRecent": "red",
    "blame.coloring": "highlightRecent",
    "blame.markIgnoredLines": "true",
    "blame.markUnblamableLines": "true",
    "blame.blankBoundary": "true",
    "blame.showRoot": "false",
    "core.quotePath": "true",
    "core.abbrev": "12",
    "log.showRoot": "false",
    "log.showSignature": "true",
    "log.decorate": "full",
    "log.abbrevCommit": "true",
    "log.follow": "true",
    "format.pretty": "fuller",
    "i18n.logOutputEncoding": "ISO-8859-1",
    "notes.displayRef": "refs/notes/*",
    "diff.srcPrefix": "x/",
    "diff.dstPrefix": "y/",
    "core.bigFileThreshold": "1",
    "diff.statGraphWidth": "5",
    "diff.wsErrorHighlight": "all",
    "core.whitespace": "trailing-space,space-before-tab,indent-with-non-tab",
}


def _history(repo: GitRepo) -> None:
    body = "".join(f"    value_{i} = compute({i})\n" for i in range(1, 31))
    repo.commit("initial", {"app/main.py": f"def main():\n{body}",
                            "app/util.py": "def helper():\n    return 1\n\n\n\nend = 0\n",
                            "docs/caf\u00e9.txt": "one\ntwo\nthree\n",
                            "order.txt": "docs/*\napp/*\n"})
    # Two hunks close together: interHunkContext would merge them with context lines.
    text = (repo.path / "app/main.py").read_text().replace("compute(3)", "compute(3) or 0")
    text = text.replace("compute(9)", "compute(9) or 0")
    repo.commit("Fix PROJ-1: compute may return None \u2014 caf\u00e9", {"app/main.py": text})
    repo.git("mv", "app/util.py", "app/helpers.py")
    repo.commit("Move helpers (fixes #4)",
                {"app/helpers.py": "def helper():\n    return 2\n\n\n\nend = 0\n"})
    repo.commit("Fix PROJ-2 in the docs: caf\u00e9 cr\u00e8me",
                {"docs/caf\u00e9.txt": "one\nTWO\nthree\n"})
    repo.git("notes", "add", "-m", "a note PROJ-9", "HEAD")
    repo.git("checkout", "-q", "-b", "side", "HEAD~1")
    text = (repo.path / "app/main.py").read_text().replace("compute(20)", "compute(20) + 1")
    repo.commit("Fix PROJ-3 on a branch", {"app/main.py": text})
    repo.git("checkout", "-q", "main")
    repo.git("merge", "-q", "--no-ff", "-m", "Merge side", "side")


def _outputs(repo: GitRepo) -> list[tuple[str, int, str, str]]:
    shutil.rmtree(repo.path / ".git" / "dasct", ignore_errors=True)
    text = (repo.path / "app/main.py").read_text()
    repo.write("app/main.py", text.replace("compute(3) or 0", "compute(3) or -1")
               .replace("compute(20) + 1", "compute(20) + 2"))
    repo.write("app/helpers.py", "def helper():\n    return 3\n\n\n\nend = 0\n")
    repo.git("add", "-A")
    try:
        runs = [
            ("index", "--rebuild"),
            ("scan", "--format", "json"),
            ("scan",),
            ("check", "--staged", "--format", "json"),
            ("check", "--staged"),
            ("check", "--commit", "HEAD^1"),
            ("check", "--range", "HEAD~3..HEAD", "--format", "json"),
            ("why", "app/main.py:4"),
            ("show", "PROJ-1"),
            ("show", "#4"),
            ("show", "PROJ-2"),
        ]
        out = []
        for args in runs:
            r = dasct(repo.path, *args)
            text = r.out
            if args[0] == "index":  # its timing figures vary from run to run
                text = ""
            out.append((" ".join(args), r.code, text, r.err))
        return out
    finally:
        repo.git("reset", "-q", "--hard")


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gitcfg") / "repo"
    _history(GitRepo(path))
    return path


@pytest.fixture
def plain(history: Path, tmp_path: Path) -> GitRepo:
    repo = GitRepo(tmp_path / "repo", init=False)
    shutil.copytree(history, repo.path, symlinks=True)
    return repo


@pytest.fixture(scope="module")
def expected(history: Path, tmp_path_factory: pytest.TempPathFactory
             ) -> list[tuple[str, int, str, str]]:
    copy = tmp_path_factory.mktemp("expected") / "repo"
    shutil.copytree(history, copy, symlinks=True)
    return _outputs(GitRepo(copy, init=False))


def test_the_plain_history_has_findings(expected: list[tuple[str, int, str, str]]) -> None:
    by_command = {cmd: (code, out) for cmd, code, out, _ in expected}
    assert all(code == 0 for code, _ in by_command.values()), expected
    assert '"defect": "PROJ-1"' in by_command["check --staged --format json"][1]
    assert '"defect": "PROJ-3"' in by_command["check --staged --format json"][1]
    assert '"defect": "#4"' in by_command["check --staged --format json"][1]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_a_git_setting_changes_nothing(
    name: str, plain: GitRepo, expected: list[tuple[str, int, str, str]]
) -> None:
    plain.git("config", name, SETTINGS[name])
    assert _outputs(plain) == expected


def test_all_git_settings_at_once_change_nothing(
    plain: GitRepo, expected: list[tuple[str, int, str, str]]
) -> None:
    for name, value in SETTINGS.items():
        plain.git("config", name, value)
    assert _outputs(plain) == expected
