"""The ledger: the facts history cannot give (manual links, decisions, tickets, cursors).

It lives in the repository on a branch of its own (`[qa] ledger_branch`, default
`dasct-ledger`), written only with git plumbing and never checked out: the user's work
tree, index and HEAD never change. Each record is one blob at `<type>/<id[:2]>/<id>.json`,
named by the digest of its content, so the union of two ledgers is the union of their
tree entries and never conflicts; diverged tips get a merge commit with both as parents.
A plain `git fetch` brings the remote's branch as refs/remotes/<remote>/<branch>, and
every read is the union of that and the local branch (docs/ledger.md).
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from dasct import git
from dasct.errors import DasctError, GitError

# The index asks for links_fingerprint() whenever it builds: json, hashlib, tempfile,
# datetime, random, pathlib and dasct.redact (~17 ms of imports together) are imported by
# the functions that read or write records, not by the module.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

TYPE_RE = re.compile(r"[a-z][a-z0-9-]{0,39}")
# Microseconds: the records of one actor keep their order (a link and the unlink right
# after it: the last one wins); seconds alone are accepted too.
AT_RE = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.\d{6})?Z")
ACTOR_VARS = ("DASCT_ACTOR", "GITHUB_ACTOR", "GITLAB_USER_LOGIN")
LINK_TYPES = ("link", "unlink", "accept")  # what links_fingerprint covers
# A user's config must not change how the ledger is written: a signing program that is
# absent in CI, and hooks: plumbing runs none but reference-transaction, which update-ref,
# fetch and push all run (a failing one aborts the update), so the hooks directory is
# pointed at nothing; push is told --no-verify besides.
_PINS = ("-c", "commit.gpgSign=false", "-c", "push.gpgSign=false",
         "-c", "core.hooksPath=/dev/null")
# Reading loose objects costs several times what packed ones do (docs/ledger.md: 10,000
# records loose ~1.8 s, packed ~0.33 s), and git's own `gc --auto` waits for 6,700 of them:
# past this many loose objects an append packs them (`git repack -d`, incremental).
LOOSE_LIMIT = 1000
_CAS_TRIES = 50  # local writers racing on update-ref; each loser re-reads and retries


class LedgerError(DasctError):
    """The ledger could not be read, written, fetched or pushed (one line, redacted)."""


@dataclass(frozen=True)
class Record:
    """One fact. The ledger stores it and never interprets `type` or `data`."""

    type: str
    data: Mapping[str, Any] = field(default_factory=dict)
    at: str = ""  # ISO 8601 UTC with microseconds (seconds alone accepted); append fills it
    by: str = ""  # who; append fills it (see actor)

    def __hash__(self) -> int:  # data is a dict: hash by what the record says
        return hash(self.id)

    def canonical(self) -> bytes:
        """The stored bytes: sorted keys, no spaces, UTF-8, one line."""
        import json

        return (json.dumps({"type": self.type, "at": self.at, "by": self.by,
                            "data": self.data}, sort_keys=True, separators=(",", ":"),
                           ensure_ascii=False, allow_nan=False) + "\n").encode()

    @property
    def id(self) -> str:
        """The digest of the canonical content: the same fact written twice is one record.
        Computed once per record (data is a fact: it is not changed after creation)."""
        ident: str | None = self.__dict__.get("_id")
        if ident is None:
            from hashlib import sha256

            ident = sha256(self.canonical()).hexdigest()
            object.__setattr__(self, "_id", ident)  # a cache, not a field: not compared
        return ident

    @property
    def path(self) -> str:
        """Where the record lives in the ledger's tree."""
        ident = self.id
        return f"{self.type}/{ident[:2]}/{ident}.json"


def _json_problem(value: Any, where: str) -> str | None:
    """Why value is not plain JSON (str keys; str, int, finite float, bool, None,
    list, dict), or None."""
    if value is None or isinstance(value, (str, bool, int)):
        return None
    if isinstance(value, float):
        return None if value == value and abs(value) != float("inf") else f"{where} is {value}"
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            problem = _json_problem(item, f"{where}[{i}]")
            if problem:
                return problem
        return None
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{where} has a key {key!r} that is not a string"
            problem = _json_problem(item, f"{where}.{key}")
            if problem:
                return problem
        return None
    return f"{where} is a {type(value).__name__}, not JSON"


def problem(record: Any) -> str | None:
    """What is wrong with a record (one phrase), or None when it may be stored."""
    if not isinstance(record, Record):
        return f"is a {type(record).__name__}, not a ledger Record"
    return _shape_problem(record) or _json_problem(record.data, "data")


def _shape_problem(record: Record) -> str | None:
    """What is wrong with a record's type, at and by, and whether data is a mapping."""
    if not isinstance(record.type, str) or not TYPE_RE.fullmatch(record.type):
        return f"type {record.type!r} must match [a-z][a-z0-9-]* (40 characters at most)"
    if not isinstance(record.data, Mapping):
        return f"data is a {type(record.data).__name__}, not a mapping"
    if not isinstance(record.at, str) or (record.at and not _valid_at(record.at)):
        return (f"at {record.at!r} is not an ISO 8601 UTC time "
                "(YYYY-MM-DDTHH:MM:SS.ffffffZ, or without the fraction)")
    if not isinstance(record.by, str) or any(c in record.by for c in "\n\r\0"):
        return f"by {record.by!r} must be one line of text"
    return None


def _valid_at(at: str) -> bool:
    from datetime import datetime

    match = AT_RE.fullmatch(at)
    if not match:
        return False
    try:  # the constructor checks the ranges (Feb 30 included), cheaper than strptime
        y, mo, d, h, mi, sec = (int(g) for g in match.groups())
        datetime(y, mo, d, h, mi, sec)
    except ValueError:
        return False
    return True


def now() -> str:
    """The current time as a record's `at`."""
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(content: bytes, path: str) -> Record | str:
    """The record a ledger file holds, or why it holds none. Read from disk, so verified:
    the content must be the canonical form of a valid record, named by its digest."""
    import json
    from hashlib import sha256

    try:
        raw = json.loads(content)
    except ValueError as exc:  # UnicodeDecodeError included
        return f"not valid JSON ({exc})"
    if not isinstance(raw, dict) or raw.keys() != {"type", "at", "by", "data"}:
        return "not a ledger record (expected the keys type, at, by, data)"
    # json.loads gives plain JSON, NaN aside (canonical() refuses it): no deep walk needed.
    record = Record(type=raw["type"], data=raw["data"], at=raw["at"], by=raw["by"])
    wrong = _shape_problem(record) or ("its time (at) is empty" if not record.at else None)
    if wrong:
        return wrong
    try:
        canonical = record.canonical()
    except ValueError:
        return "it holds a number JSON cannot carry (NaN or infinity)"
    ident = sha256(canonical).hexdigest()
    if canonical != content or path != f"{record.type}/{ident[:2]}/{ident}.json":
        return "its content does not match its name (edited, or not written by dasct)"
    object.__setattr__(record, "_id", ident)
    return record


class Ledger:
    """The ledger of one repository: its local branch and the remote's tracking ref."""

    def __init__(self, repo: git.Repo, branch: str = "dasct-ledger",
                 remote: str = "origin") -> None:
        self.repo = repo
        self.branch = branch
        self.remote = remote
        self.ref = f"refs/heads/{branch}"
        self.tracking = f"refs/remotes/{remote}/{branch}" if remote else ""

    def _git(self, *args: str, env: dict[str, str] | None = None,
             input: bytes | None = None, ok_codes: tuple[int, ...] = (0,)) -> bytes:
        try:
            return git.run(*_PINS, *args, cwd=self.repo.root, env=env, input=input,
                           ok_codes=ok_codes)
        except GitError as exc:
            raise _error(f"ledger {self.branch}: git {args[0]} failed: {_detail(exc)}") from None

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
        try:
            return git.ls_tree(self.repo.root, commit, *types)
        except GitError as exc:
            raise _error(f"ledger {self.branch}: {_detail(exc)}") from None

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
        try:
            blobs = git.cat_blobs(self.repo.root,
                                  (b for pairs in sides.values() for b, _ in pairs))
        except GitError as exc:
            raise _error(f"ledger {self.branch}: {_detail(exc)}") from None
        found: list[tuple[str, str, Record]] = []
        for path, pairs in sides.items():
            for blob, commit in pairs:
                parsed = _parse(blobs[blob], path)
                if isinstance(parsed, Record):
                    # "...:05Z" is "...:05.000000Z" (a "Z" sorts after every digit).
                    at = parsed.at if len(parsed.at) > 20 else parsed.at[:-1] + ".000000Z"
                    found.append((at, path, parsed))
                    break
                print(_clean(f"dasct: ledger commit {commit[:12]} {path}: {parsed}; skipped"),
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

    def append(self, records: Iterable[Record]) -> list[Record]:
        """Store records (redacted, at and by filled) in one commit holding the union of
        the local and remote-tracking ledgers; returns them as stored. A record already
        present is not added again; an invalid one stops everything before any write."""
        from dasct import redact

        secrets = redact.secret_values()
        stamp, actor = now(), ""
        stored: list[Record] = []
        for n, record in enumerate(records, 1):
            wrong = problem(record)
            if wrong:
                what = getattr(record, "type", "?")
                raise _error(f"ledger record {n} ({what!r}): {wrong}; nothing written")
            if not record.by and not actor:
                actor = self.actor()
            stored.append(Record(
                type=record.type, data=redact.scrub(dict(record.data), secrets),
                at=record.at or stamp, by=redact.redact(record.by or actor, secrets)))
        self._refuse_checked_out()
        for _ in range(_CAS_TRIES):
            if self._commit(stored):
                if stored:
                    self._tidy()
                return stored
            time.sleep(_jitter(0.005, 0.05))  # another local writer won: re-read
        raise LedgerError(f"ledger {self.branch}: another process kept updating it; "
                          "nothing written, try again")

    def _tidy(self) -> None:
        """Pack the loose objects once there are LOOSE_LIMIT of them (see there)."""
        out = self._git("count-objects").decode().split()  # "<n> objects, <k> kilobytes"
        if out and out[0].isdigit() and int(out[0]) >= LOOSE_LIMIT:
            self._git("repack", "-d", "-q")

    def _refuse_checked_out(self) -> None:
        """Moving a branch checked out in any work tree would change that work tree's
        files under its user."""
        out = self._git("worktree", "list", "--porcelain", "-z").split(b"\0")
        where = ""
        for line in out:
            if line.startswith(b"worktree "):
                where = line[9:].decode("utf-8", "replace")
            elif line == f"branch {self.ref}".encode():
                raise _error(f"ledger: branch {self.branch} is checked out in {where}; switch "
                             "to another branch first (dasct never writes a checked-out one)")

    def _parents(self, local: str | None, remote: str | None) -> list[str]:
        """The parents of the next ledger commit: the local tip; the remote-tracking one
        instead when the local one is behind it (or absent); both when they diverged."""
        if not remote or remote == local:
            return [local] if local else []
        if local is None:
            return [remote]
        merge_base = self._git("merge-base", local, remote, ok_codes=(0, 1)).decode().strip()
        if merge_base == local:
            return [remote]
        return [local] if merge_base == remote else [local, remote]

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

    def _write_blobs(self, records: list[Record], tmp: str) -> list[str]:
        """Store the records' blobs with one git fast-import: a pack for a big batch
        (loose objects for fewer than transfer.unpackLimit, 100), not one file each."""
        stream = b"".join(b"blob\nmark :%d\ndata %d\n%s\n" % (i, len(c), c)
                          for i, c in enumerate((r.canonical() for r in records), 1))
        from pathlib import Path

        marks = Path(tmp, "marks")
        self._git("fast-import", "--quiet", "--done", f"--export-marks={marks}",
                  input=stream + b"done\n")
        found = dict(line.split(" ", 1) for line in marks.read_text().splitlines())
        try:
            return [found[f":{i}"].strip() for i in range(1, len(records) + 1)]
        except KeyError:
            raise LedgerError(f"ledger {self.branch}: git fast-import stored "
                              f"{len(found)} of {len(records)} records") from None

    def _commit(self, new: list[Record]) -> bool:
        """One attempt: union, new blobs, tree, commit, compare-and-swap the branch.
        False when another writer moved the branch in between."""
        import tempfile

        local, remote = self._tips()
        parents = self._parents(local, remote)
        tree: str | None
        with tempfile.TemporaryDirectory(prefix="dasct-ledger-") as tmp:
            if len(parents) == 2:
                tree, added = self._union(parents, new, tmp)
            else:
                tree, added = self._grow(parents[0] if parents else None, new, tmp)
        if tree is None:  # nothing to add, nothing to merge
            base = parents[0] if parents else None
            if base is None or base == local:
                return True
            return self._move(base, local)  # behind the remote: fast-forward
        message = (f"dasct ledger: {added} record(s)" if added else
                   "dasct ledger: union with the remote")
        # commit-tree reads no commit.gpgSign today; --no-gpg-sign keeps it so.
        args = ["commit-tree", "--no-gpg-sign", tree, "-m", message]
        for parent in parents:
            args += ["-p", parent]
        commit = self._git(*args, env=_identity_env(self.repo.root)).decode().strip()
        return self._move(commit, local)

    def _grow(self, base: str | None, new: list[Record], tmp: str) -> tuple[str | None, int]:
        """The tree of base (None: empty) plus the records it lacks, and how many those
        are (None, 0: none). Only the directories they land in are rebuilt, a few
        ls-tree and mktree calls whatever the ledger's size."""
        leaves = sorted({r.path.rpartition("/")[0] for r in new})
        types = sorted({leaf.split("/")[0] for leaf in leaves})
        old_leaves = self._listing(base, leaves) if base else {}
        missing = {}
        for r in new:
            leaf, _, name = r.path.rpartition("/")
            if name not in old_leaves.get(leaf, {}):
                missing[r.path] = r
        if not missing:
            return None, 0
        old_types = self._listing(base, types) if base else {}
        root = self._listing(base).get("", {}) if base else {}
        grown: dict[str, dict[str, str]] = {leaf: dict(old_leaves.get(leaf, {})) for leaf in leaves}
        blobs = self._write_blobs(list(missing.values()), tmp)
        for path, blob in zip(missing, blobs, strict=True):
            leaf, _, name = path.rpartition("/")
            grown[leaf][name] = f"100644 blob {blob}"
        leaf_ids = self._mktrees(grown[leaf] for leaf in leaves)
        kinds = {t: dict(old_types.get(t, {})) for t in types}
        for leaf, tree in zip(leaves, leaf_ids, strict=True):
            kind, _, prefix = leaf.partition("/")
            kinds[kind][prefix] = f"040000 tree {tree}"
        for kind, tree in zip(types, self._mktrees(kinds[t] for t in types), strict=True):
            root[kind] = f"040000 tree {tree}"
        return self._mktrees([root])[0], len(missing)

    def _mktrees(self, trees: Iterable[dict[str, str]]) -> list[str]:
        """Write trees (name -> "mode kind id") with one `git mktree --batch`; their ids."""
        text = "".join("".join(f"{info}\t{name}\n" for name, info in tree.items()) + "\n"
                       for tree in trees)
        return self._git("mktree", "--batch", input=text.encode()).decode().split()

    def _union(self, parents: list[str], new: list[Record], tmp: str) -> tuple[str, int]:
        """The tree holding both parents' records and the new ones (the first parent's
        blob wins a clash), built in a private index, and how many records were added."""
        entries = self._entries(parents[1])
        entries.update(self._entries(parents[0]))
        missing = {r.path: r for r in new if r.path not in entries}
        if missing:
            blobs = self._write_blobs(list(missing.values()), tmp)
            entries.update(zip(missing, blobs, strict=True))
        # A private index file: the user's index (GIT_INDEX_FILE) is never touched.
        env = git.git_env({"GIT_INDEX_FILE": os.path.join(tmp, "index")})
        listing = "".join(f"100644 blob {blob}\t{path}\n" for path, blob in entries.items())
        self._git("update-index", "--add", "--index-info", env=env, input=listing.encode())
        return self._git("write-tree", env=env).decode().strip(), len(missing)

    def _move(self, new: str, old: str | None) -> bool:
        """Point the branch at new if it still points at old (an empty old: absent)."""
        try:
            git.run(*_PINS, "update-ref", "-m", "dasct ledger", self.ref, new, old or "",
                    cwd=self.repo.root)
        except GitError:
            return False
        return True

    def actor(self) -> str:
        """Who writes: DASCT_ACTOR, else the CI's user, else git's committer identity."""
        for var in ACTOR_VARS:
            if os.environ.get(var):
                return os.environ[var]
        code, out = git.run_code("var", "GIT_COMMITTER_IDENT", cwd=self.repo.root)
        ident = out.decode("utf-8", "replace").strip()
        if code != 0 or ">" not in ident:
            return "unknown"
        return ident[: ident.rindex(">") + 1]  # without the date

    def fetch(self) -> None:
        """Bring the remote's ledger to refs/remotes/<remote>/<branch> (a remote that has
        none yet is not an error)."""
        if not self.remote:
            return
        try:
            git.run(*_PINS, "fetch", "--quiet", "--no-tags", "--no-write-fetch-head",
                    "--recurse-submodules=no", self.remote,
                    f"+{self.ref}:{self.tracking}", cwd=self.repo.root)
        except GitError as exc:
            if "couldn't find remote ref" in str(exc):
                return
            raise _error(f"ledger: could not fetch {self.branch} from {self.remote}: "
                         f"{_detail(exc)}") from None

    def push(self, attempts: int = 6) -> None:
        """Push the local branch to the remote's; when another writer pushed first, fetch,
        merge by union and try again (backoff with jitter). Nothing is lost locally."""
        if not self.remote:
            return
        reason = ""
        for attempt in range(attempts):
            local = self.tip()
            if local is None:
                return  # nothing written here: nothing to push
            try:
                out = git.run(*_PINS, "push", "--porcelain", "--no-verify", "--no-follow-tags",
                              "--recurse-submodules=no", self.remote, f"{local}:{self.ref}",
                              cwd=self.repo.root, ok_codes=(0, 1)).decode("utf-8", "replace")
            except GitError as exc:  # not a rejection: the remote is unreachable or refuses us
                raise _error(f"ledger: could not push {self.branch} to {self.remote}: "
                             f"{_detail(exc)}") from None
            # --porcelain: "<flag>\t<from>:<to>\t<summary>" per ref; "!" is a rejection.
            ours = [line.split("\t") for line in out.splitlines()
                    if line.split("\t")[1:2] == [f"{local}:{self.ref}"]]
            if ours and ours[0][0] in (" ", "*", "=", "+"):
                self._git("update-ref", self.tracking, local)
                return
            reason = ours[0][-1] if ours else "no answer for the branch"
            if attempt + 1 < attempts:
                time.sleep(min(0.2 * 2 ** attempt, 5.0) * _jitter(0.5, 1.5))
                self.fetch()
                self.append([])  # the union with what the other writer pushed
        raise _error(f"ledger: could not push {self.branch} to {self.remote} after "
                     f"{attempts} attempts (last: {reason}); the records are kept in the "
                     "local branch: run `dasct ledger push` again")


def _clean(text: str) -> str:
    """text without a secret (it may quote git, or a remote's URL with a token in it)."""
    from dasct import redact

    return redact.redact(text)


def _error(message: str) -> LedgerError:
    return LedgerError(_clean(message))


def _jitter(low: float, high: float) -> float:
    import random

    return random.uniform(low, high)


def _detail(exc: GitError) -> str:
    """git's own first error line, without the command line (long with our pins)."""
    return str(exc).split("` failed: ", 1)[-1]


def _identity_env(cwd: Path) -> dict[str, str]:
    """git's environment, with an identity when the user (or CI) configured none."""
    env = git.git_env()
    code, _ = git.run_code("var", "GIT_COMMITTER_IDENT", cwd=cwd)
    if code != 0:
        for who in ("AUTHOR", "COMMITTER"):
            env.setdefault(f"GIT_{who}_NAME", "dasct")
            env.setdefault(f"GIT_{who}_EMAIL", "dasct@localhost")
    return env
