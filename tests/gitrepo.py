"""A real git repository in a temp dir, driven by real git, for tests."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


class GitRepo:
    """A work tree plus helpers to write files and commit."""

    def __init__(self, path: Path, *, init: bool = True) -> None:
        self.path = path
        if init:
            path.mkdir(parents=True, exist_ok=True)
            self.git("init", "-q", "-b", "main")

    def git(self, *args: str, check: bool = True, env: dict[str, str] | None = None) -> str:
        proc = subprocess.run(
            ("git", *args), cwd=self.path, capture_output=True, check=False,
            env={**os.environ, **(env or {})},
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr.decode()}")
        return proc.stdout.decode("utf-8", "surrogateescape")

    def write(self, name: str, text: str | bytes) -> Path:
        path = self.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, str):
            path.write_text(text)
        else:
            path.write_bytes(text)
        return path

    def commit(self, message: str, files: dict[str, str | bytes] | None = None) -> str:
        for name, text in (files or {}).items():
            self.write(name, text)
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.head()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD").strip()

    def blame(self, path: str, rev: str = "HEAD") -> list[str]:
        """The sha `git blame -w` names for every line of path (the oracle)."""
        args = ["-c", "blame.ignoreRevsFile=", "blame", "-w", "--porcelain"]
        if (self.path / ".git-blame-ignore-revs").exists():
            args += ["--ignore-revs-file", ".git-blame-ignore-revs"]
        out = self.git(*args, rev, "--", path)
        shas: dict[int, str] = {}
        for line in out.splitlines():
            parts = line.split(" ")
            header = len(parts) >= 3 and len(parts[0]) in (40, 64)
            if header and parts[1].isdigit() and parts[2].isdigit():
                shas[int(parts[2])] = parts[0]
        return [shas[i] for i in range(1, len(shas) + 1)]
