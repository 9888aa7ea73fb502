"""The ledger: the facts history cannot give (manual links, decisions, tickets, cursors).

It lives in the repository on a branch of its own (`[qa] ledger_branch`, default
`dasct-ledger`), written only with git plumbing and never checked out: the user's work
tree, index and HEAD never change. Each record is one blob at `<type>/<id[:2]>/<id>.json`,
named by the digest of its content, so the union of two ledgers is the union of their
tree entries and never conflicts; diverged tips get a merge commit with both as parents.
A plain `git fetch` brings the remote's branch as refs/remotes/<remote>/<branch>, and
every read is the union of that and the local branch (docs/ledger.md).

Three modules: ledger_record.py (what a record is), ledger_read.py (reading: the union of
both tips, the links' fingerprint) and this one, the Ledger: writing (append, the union
merge, the compare-and-swap of the branch), fetch and push.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable

from dasct import git
from dasct.errors import GitError
from dasct.ledger_read import PINS, LedgerReader
from dasct.ledger_record import LedgerError, Record, detail, error, problem, stamps

# random, pathlib and dasct.redact are imported by the functions that use them
# (ledger_record.py says why).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

ACTOR_VARS = ("DASCT_ACTOR", "GITHUB_ACTOR", "GITLAB_USER_LOGIN")
# Reading loose objects costs several times what packed ones do (docs/ledger.md: 10,000
# records loose ~1.8 s, packed ~0.33 s), and git's own `gc --auto` waits for 6,700 of them:
# past this many loose objects an append packs the ledger's own (see Ledger._tidy).
LOOSE_LIMIT = 1000
_CAS_TRIES = 50  # local writers racing on the branch; each loser re-reads and retries
_LOST_RACE = ("Not updating", "cannot lock ref")  # fast-import's words (LC_ALL=C)


class Ledger(LedgerReader):
    """The ledger of one repository: its local branch and the remote's tracking ref."""

    def append(self, records: Iterable[Record]) -> list[Record]:
        """Store records (redacted, at and by filled) in one commit holding the union of
        the local and remote-tracking ledgers; returns them as stored. A record already
        present is not added again; an invalid one stops everything before any write."""
        from dasct import redact

        records = list(records)
        actor = ""
        for n, record in enumerate(records, 1):
            wrong = problem(record)
            if wrong:
                what = getattr(record, "type", "?")
                raise error(f"ledger record {n} ({what!r}): {wrong}; nothing written")
            if not record.by and not actor:
                actor = self.actor()
        self._refuse_checked_out()
        secrets, times = redact.secret_values(), stamps(len(records))
        stored: list[Record] = []
        # git stores each blob while the next record is redacted and serialized (curl's
        # 5,682 tickets: 20 MB of JSON), instead of after all of them.
        feed = _Import(self.repo.root) if records else None
        try:
            for n, record in enumerate(records):
                stored.append(Record(
                    type=record.type, data=redact.scrub(dict(record.data), secrets),
                    at=record.at or times[n], by=redact.redact(record.by or actor, secrets)))
                if feed is not None:
                    feed.blob(stored[-1])
        except BaseException as exc:
            if feed is not None:
                feed.abort()
            if isinstance(exc, GitError):  # fast-import ended early: it says why
                raise error(f"ledger {self.branch}: git fast-import failed: "
                            f"{detail(exc)}") from None
            raise
        for _ in range(_CAS_TRIES):
            if self._commit(stored, feed):
                if stored:
                    self._tidy()
                return stored
            feed = None  # the next attempt writes its own blobs
            time.sleep(_jitter(0.005, 0.05))  # another local writer won: re-read
        raise LedgerError(f"ledger {self.branch}: another process kept updating it; "
                          "nothing written, try again")

    def _tidy(self) -> None:
        """Pack the ledger's loose objects once there are LOOSE_LIMIT loose objects.

        Only the objects the ledger's branch reaches are listed and packed: `git repack -d`
        would walk every ref of the repository to find its loose objects (2.4 s a time in
        a clone of curl/curl, most of a long `ci record`), a cost that follows the
        repository, not the ledger."""
        out = self._git("count-objects").decode().split()  # "<n> objects, <k> kilobytes"
        if not (out and out[0].isdigit() and int(out[0]) >= LOOSE_LIMIT):
            return
        # Only what the branch gained since the tip packed last time (kept in the state
        # directory; a marker, not a ref, so gc may take it: then the whole branch).
        marker = self.repo.state_dir / f"ledger-packed-{self.branch.replace('/', '-')}"
        tip = self.tip()
        try:
            since = marker.read_text().strip()
        except OSError:
            since = ""
        code, _ = git.run_code("cat-file", "-e", f"{since}^{{commit}}", cwd=self.repo.root)
        known = [f"^{since}"] if since and code == 0 else []
        listed = self._git("rev-list", "--objects", self.ref, *known, "--")
        ids = b"".join(line[:line.find(b" ")] + b"\n" if b" " in line else line + b"\n"
                       for line in listed.splitlines() if line)
        pack = self._git("rev-parse", "--git-path", "objects/pack/pack").decode().strip()
        # --git-path may answer relative to the work tree's root: join keeps an absolute one.
        self._git("pack-objects", "--unpacked", "-q", os.path.join(self.repo.root, pack),
                  input=ids)
        self._git("prune-packed")
        if tip:
            from dasct import durable

            marker.parent.mkdir(parents=True, exist_ok=True)
            durable.atomic_write(marker, f"{tip}\n".encode())

    def _refuse_checked_out(self) -> None:
        """Moving a branch checked out in any work tree would change that work tree's
        files under its user."""
        out = self._git("worktree", "list", "--porcelain", "-z").split(b"\0")
        where = ""
        for line in out:
            if line.startswith(b"worktree "):
                where = line[9:].decode("utf-8", "replace")
            elif line == f"branch {self.ref}".encode():
                raise error(f"ledger: branch {self.branch} is checked out in {where}; switch "
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

    def _commit(self, new: list[Record], feed: _Import | None = None) -> bool:
        """One attempt: the records the ledger lacks (and, when the tips diverged, the
        remote's records the local side lacks) written by one `git fast-import` (feed,
        when append has given it the blobs already): blobs, trees, commit and the branch
        moved, all in one process. fast-import moves the branch only if it still points
        where it did when read, or at an ancestor of the new commit (its own
        compare-and-swap): False when another writer moved it."""
        feed = feed or _Import(self.repo.root)
        try:
            local, remote = self._tips()
            parents = self._parents(local, remote)
            theirs: dict[str, str] = {}  # path -> blob: the second parent's records we lack
            if len(parents) == 2:
                ours = self._entries(parents[0])
                theirs = {p: b for p, b in self._entries(parents[1]).items() if p not in ours}
                missing = [r for r in dict.fromkeys(new) if r.path not in ours
                           and r.path not in theirs]
            else:
                missing = self._lacking(parents[0] if parents else None, new)
                if not missing:  # nothing to add, nothing to merge
                    feed.end()  # what it was given stays unreferenced (gc's)
                    base = parents[0] if parents else None
                    if base is None or base == local:
                        return True
                    return self._move(base, local)  # behind the remote: fast-forward
            for record in missing:
                feed.blob(record)  # those append gave it are not given twice
            message = (f"dasct ledger: {len(missing)} record(s)" if missing else
                       "dasct ledger: union with the remote").encode()
            out = [b"commit %s\ncommitter %s\ndata %d\n%s\n" % (
                self.ref.encode(), self._committer(), len(message), message)]
            if parents:
                out.append(b"from %s\n" % parents[0].encode())
            if len(parents) == 2:
                out.append(b"merge %s\n" % parents[1].encode())
            out.extend(b"M 100644 %s %s\n" % (blob.encode(), path.encode())
                       for path, blob in theirs.items())
            out.extend(b"M 100644 :%d %s\n" % (feed.marks[r], r.path.encode())
                       for r in missing)
            feed.end(b"".join(out))
        except GitError as exc:
            # Another writer moved the branch since it was read ("Not updating": not an
            # ancestor of ours), or holds its lock or moved it just now ("cannot lock
            # ref"): the caller re-reads. What was written stays unreferenced (gc's).
            if any(m in str(exc) for m in _LOST_RACE) or self.tip() != local:
                return False
            raise error(f"ledger {self.branch}: git fast-import failed: {detail(exc)}"
                        ) from None
        except BaseException:
            feed.abort()
            raise
        return True

    def _lacking(self, base: str | None, new: list[Record]) -> list[Record]:
        """The records of new that base (None: no ledger yet) does not hold, each once:
        one ls-tree of the directories they land in, whatever the ledger's size."""
        unique = list(dict.fromkeys(new))
        if base is None:
            return unique
        leaves = self._listing(base, sorted({r.path.rpartition("/")[0] for r in unique}))
        return [r for r in unique
                if r.path.rpartition("/")[2] not in leaves.get(r.path.rpartition("/")[0], {})]

    def _committer(self) -> bytes:
        """fast-import's committer line: git's identity and the time now (`git var` gives
        both in its format), or dasct's when the user (or CI) configured none."""
        code, out = git.run_code("var", "GIT_COMMITTER_IDENT", cwd=self.repo.root)
        ident = out.strip()
        if code != 0 or b">" not in ident:
            ident = b"dasct <dasct@localhost> %d +0000" % int(time.time())
        return ident

    def _move(self, new: str, old: str | None) -> bool:
        """Point the branch at new if it still points at old (an empty old: absent)."""
        try:
            git.run(*PINS, "update-ref", "-m", "dasct ledger", self.ref, new, old or "",
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
            git.run(*PINS, "fetch", "--quiet", "--no-tags", "--no-write-fetch-head",
                    "--recurse-submodules=no", self.remote,
                    f"+{self.ref}:{self.tracking}", cwd=self.repo.root)
        except GitError as exc:
            if "couldn't find remote ref" in str(exc):
                return
            raise error(f"ledger: could not fetch {self.branch} from {self.remote}: "
                         f"{detail(exc)}") from None

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
                out = git.run(*PINS, "push", "--porcelain", "--no-verify", "--no-follow-tags",
                              "--recurse-submodules=no", self.remote, f"{local}:{self.ref}",
                              cwd=self.repo.root, ok_codes=(0, 1)).decode("utf-8", "replace")
            except GitError as exc:  # not a rejection: the remote is unreachable or refuses us
                raise error(f"ledger: could not push {self.branch} to {self.remote}: "
                             f"{detail(exc)}") from None
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
        raise error(f"ledger: could not push {self.branch} to {self.remote} after "
                     f"{attempts} attempts (last: {reason}); the records are kept in the "
                     "local branch: run `dasct ledger push` again")


class _Import:
    """One `git fast-import` of the ledger, fed blob by blob (each record's canonical
    bytes, under a mark) and ended with the commit that names them, or with nothing."""

    def __init__(self, root: Path) -> None:
        self._git = git.conversation(*PINS, "fast-import", "--quiet", "--done", cwd=root,
                                     echo=b"")
        self.marks: dict[Record, int] = {}
        self._whole = True  # no command was cut off midway (by an exception)

    def blob(self, record: Record) -> None:
        if record not in self.marks:
            content = record.canonical()
            mark = len(self.marks) + 1
            self._whole = False
            self._git.send(b"blob\nmark :%d\ndata %d\n%s\n" % (mark, len(content), content))
            self._whole = True
            self.marks[record] = mark

    def end(self, commit: bytes = b"") -> None:
        """Write commit (a fast-import `commit` command) and end; GitError when git
        failed (a lost race for the branch among them)."""
        if self.marks or commit:
            # A blank line ends a commit; after a blob it would be an empty command.
            self._git.send((commit + b"\n" if commit else b"") + b"done\n")
            self._git.finish()

    def abort(self) -> None:
        """Give up: nothing is committed. Ended with `done` when every command went whole
        (what it stored stays unreferenced, gc's), else killed (a half-written pack is
        left for gc: ended early, fast-import would write a crash report instead)."""
        if self._whole:
            try:
                self.end()
                return
            except GitError:
                pass
        self._git.abort()


def _jitter(low: float, high: float) -> float:
    import random

    return random.uniform(low, high)
