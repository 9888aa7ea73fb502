"""Reading the ledger: its tips, the records of both (their union), the fingerprint of
the links, and the tree listings the writer builds on.

Separate from writing (ledger.py, whose Ledger extends LedgerReader) so that the read path,
which every index build takes for links_fingerprint(), is short to follow on its own;
docs/ledger.md describes the storage both share.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

from dasct import git
from dasct.errors import GitError
from dasct.ledger_record import TYPE_RE, LedgerError, Record, clean, detail, error, parse

LINK_TYPES = ("link", "unlink", "accept")  # what links_fingerprint covers
# A user's config must not change how the ledger is written: a signing program that is
# absent in CI, and hooks: plumbing runs none but reference-transaction, which update-ref,
# fetch and push all run (a failing one aborts the update), so the hooks directory is
# pointed at nothing; push is told --no-verify besides.
PINS = ("-c", "commit.gpgSign=false", "-c", "push.gpgSign=false",
        "-c", "core.hooksPath=/dev/null")


class LedgerReader:
    """The ledger of one repository, read: its local branch and the remote's tracking ref."""

    def __init__(self, repo: git.Repo, branch: str = "dasct-ledger",
                 remote: str = "origin") -> None:
        self.repo = repo
        self.branch = branch
        self.remote = remote
        self.ref = f"refs/heads/{branch}"
        self.tracking = f"refs/remotes/{remote}/{branch}" if remote else ""
        # blob id -> its record (or why it is none). A blob id names its content, so what
        # was read once holds for this object's life: a `ci record` that reads the ledger
        # ten times reads each record once.
        self._parsed: dict[tuple[str, str], Record | str] = {}
        self._listed: dict[tuple[str, tuple[str, ...]], dict[str, str]] = {}  # likewise

    def _git(self, *args: str, env: dict[str, str] | None = None,
             input: bytes | None = None, ok_codes: tuple[int, ...] = (0,)) -> bytes:
        try:
            return git.run(*PINS, *args, cwd=self.repo.root, env=env, input=input,
                           ok_codes=ok_codes)
        except GitError as exc:
            raise error(f"ledger {self.branch}: git {args[0]} failed: {detail(exc)}") from None

    def _tips(self) -> tuple[str | None, str | None]:
        """The local branch's commit and the remote-tracking ref's (None: absent)."""
        refs = [r for r in (self.ref, self.tracking) if r]
        out = self._git("for-each-ref", "--format=%(refname) %(objectname)", *refs)
        found = dict(line.split(" ", 1) for line in out.decode().splitlines() if " " in line)
        return found.get(self.ref), found.get(self.tracking) if self.tracking else None

    def tip(self) -> str | None:
        """The local branch's commit (None: no ledger yet)."""
        return self._tips()[0]

    def _entries(self, commit: str, types: tuple[str, ...] = ()) -> dict[str, str]:
        """path -> blob of the records at a ledger commit (of the given types: all)."""
        key = (commit, types)
        if key not in self._listed:
            try:
                self._listed[key] = git.ls_tree(self.repo.root, commit, *types)
            except GitError as exc:
                raise error(f"ledger {self.branch}: {detail(exc)}") from None
        return dict(self._listed[key])  # a copy: callers may add to it (_union)

    def records(self, *types: str) -> list[Record]:
        """The records of the given types (all when none), oldest first (at, then id):
        the union of the local branch and the remote-tracking ref."""
        for t in types:
            if not TYPE_RE.fullmatch(t):
                raise LedgerError(f"ledger: record type {t!r} must match [a-z][a-z0-9-]*")
        # path -> (blob, commit) for each side; the local side is tried first.
        sides: dict[str, list[tuple[str, str]]] = {}
        for commit in dict.fromkeys(t for t in self._tips() if t):
            for path, blob in self._entries(commit, types).items():
                sides.setdefault(path, []).append((blob, commit))
        if not sides:
            return []
        new = [(b, path) for path, pairs in sides.items() for b, _ in pairs
               if (b, path) not in self._parsed]
        try:
            blobs = git.cat_blobs(self.repo.root, (b for b, _ in new))
        except GitError as exc:
            raise error(f"ledger {self.branch}: {detail(exc)}") from None
        for blob, path in new:
            self._parsed[blob, path] = parse(blobs[blob], path)
        found: list[tuple[str, str, Record]] = []
        for path, pairs in sides.items():
            for blob, commit in pairs:
                parsed = self._parsed[blob, path]
                if isinstance(parsed, Record):
                    # "...:05Z" is "...:05.000000Z" (a "Z" sorts after every digit).
                    at = parsed.at if len(parsed.at) > 20 else parsed.at[:-1] + ".000000Z"
                    found.append((at, path, parsed))
                    break
                print(clean(f"dasct: ledger commit {commit[:12]} {path}: {parsed}; skipped"),
                      file=sys.stderr)
        # The file name is the id: (at, file name) orders by (at, id) without hashing
        # every record again.
        found.sort(key=lambda item: (item[0], item[1].rsplit("/", 1)[-1]))
        return [record for _, _, record in found]

    def links_fingerprint(self) -> str:
        """A string that changes whenever the link, unlink or accept records change (local
        and remote-tracking); "" when there are none. One git call: the trees' ids."""
        names = [f"{tip}:{t}" for tip in (self.ref, self.tracking) if tip for t in LINK_TYPES]
        out = self._git("cat-file", "--batch-check=%(objectname) %(objecttype)",
                        input="".join(f"{n}\n" for n in names).encode())
        # One answer line per name, in order: "<id> tree", or "<name> missing".
        per_type: dict[str, set[str]] = {t: set() for t in LINK_TYPES}
        for i, line in enumerate(out.decode().splitlines()[: len(names)]):
            if line.endswith(" tree"):
                per_type[LINK_TYPES[i % len(LINK_TYPES)]].add(line.split(" ")[0])
        # The distinct trees per type, so equal tips count once.
        if not any(per_type.values()):
            return ""
        return " ".join(",".join(sorted(ids)) for ids in per_type.values())

    def _listing(self, commit: str, dirs: Iterable[str] = ()) -> dict[str, dict[str, str]]:
        """dir -> name -> "mode kind id" of the entries in each directory (all of the same
        depth) of the ledger tree at commit; without dirs, its root ("")."""
        wanted = [f"{d}/" for d in dirs]
        out = self._git("ls-tree", "-z", "--full-tree", commit, "--", *wanted)
        found: dict[str, dict[str, str]] = {}
        for entry in out.decode("utf-8", "surrogateescape").split("\0"):
            info, _, path = entry.partition("\t")
            if info:
                where, _, name = path.rpartition("/")
                found.setdefault(where, {})[name] = info
        return found
