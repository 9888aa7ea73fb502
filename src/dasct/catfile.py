"""One `git cat-file --batch` asked for batch after batch of blobs over a long walk.

A walk reads blobs in batches as it goes (walk.py classifies each batch of touching
commits at their parents, ci record reads the blobs of their tickets: qarecord.py). One
process per batch starts cold each time: its pack indexes opened again, its delta base
cache empty, so every blob at the end of a long delta chain is rebuilt from the chain's
base again. On the generated 10,000-commit repository the 34 batches of a 1,000-commit
`ci record` took 1.0 s of git in 34 processes and 0.25 s in one (docs/benchmarks.md).

git answers in the order asked; a thread writes the names (so asking never waits for
git) and another reads the answers into the batch they belong to, so git works on the
other core while the caller goes on, and result() waits only for the batches asked
before it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable

from dasct import git
from dasct.errors import GitError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import IO


class Asked:
    """One batch asked of a Batches: its blobs by name once git has answered them all."""

    def __init__(self, wanted: list[str]) -> None:
        self.wanted = wanted
        self._ready = threading.Event()
        self._blobs: dict[str, bytes] = {}
        self._error: GitError | None = None

    def _answer(self, blobs: dict[str, bytes], error: GitError | None) -> None:
        self._blobs, self._error = blobs, error
        self._ready.set()

    def result(self) -> dict[str, bytes]:
        """What git.cat_blobs would have given for these names (GitError as it would)."""
        self._ready.wait()
        if self._error is not None:
            raise self._error
        return self._blobs


class Batches:
    """`git cat-file --batch` in the repository at cwd, started on the first ask and
    ended by close() (a with-block closes it too)."""

    def __init__(self, cwd: str | Path) -> None:
        self._git = git.conversation("cat-file", "--batch", cwd=cwd, echo=b"")
        self._writes: queue.Queue[bytes | None] = queue.Queue()
        self._asked: queue.Queue[Asked | None] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._failed: GitError | None = None

    def __enter__(self) -> Batches:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(kill=exc[0] is not None)

    def ask(self, names: Iterable[str]) -> Asked:
        """Ask for these blobs (object names git understands: ids, rev:path); read them
        with the answer's result()."""
        asked = Asked(list(dict.fromkeys(names)))
        if not asked.wanted:
            asked._answer({}, None)
            return asked
        if self._failed is not None:
            asked._answer({}, self._failed)
            return asked
        if not self._threads:
            stdin, stdout = self._git.pipes()
            self._threads = [
                threading.Thread(target=self._write, args=(stdin,), name="cat-file-write",
                                 daemon=True),
                threading.Thread(target=self._read, args=(stdout,), name="cat-file-read",
                                 daemon=True)]
            for thread in self._threads:
                thread.start()
        self._asked.put(asked)
        self._writes.put("".join(f"{name}\n" for name in asked.wanted).encode())
        return asked

    def _write(self, stdin: IO[bytes]) -> None:
        try:
            while (data := self._writes.get()) is not None:
                stdin.write(data)
                stdin.flush()
        except (BrokenPipeError, ValueError):
            pass  # git ended: the reader sees its end and says why
        finally:
            try:
                stdin.close()  # git answers what it has, then exits
            except BrokenPipeError:
                pass

    def _read(self, stdout: IO[bytes]) -> None:
        while (asked := self._asked.get()) is not None:
            if self._failed is not None:
                asked._answer({}, self._failed)
                continue
            try:
                asked._answer(*git.read_batch(stdout, asked.wanted))
            except (OSError, ValueError, GitError) as exc:
                # git ended early (killed, or it failed): this and every later batch fail.
                self._failed = exc if isinstance(exc, GitError) else GitError(
                    f"git cat-file --batch ended early: {exc}")
                asked._answer({}, self._failed)

    def close(self, *, kill: bool = False) -> None:
        """End git once it has answered every batch asked (kill: at once, unanswered
        batches fail) and wait for it."""
        if self._threads:
            if kill and self._git.pid:
                import os

                try:
                    os.kill(self._git.pid, 9)
                except ProcessLookupError:
                    pass
            self._writes.put(None)
            self._asked.put(None)
            for thread in self._threads:
                thread.join()
            self._threads = []
        self._failed = self._failed or GitError("git cat-file --batch was closed")
        self._git.close()
