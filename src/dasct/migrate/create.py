"""Building a trigger from a merged git range (or a baseline): `dasct trigger create`.

The enhancement A..B becomes, in order: the Sqitch-style SQL changes whose scripts the
range touched (ordered by sqitch.plan, reworked changes included), the file changes of
`git diff A B` outside the SQL directory and the commands file, and the restart, health
and verify commands of the commands file at B (commands_file.py). The defects are those the
range's commit messages name. A baseline (`--baseline REV`) is the same build from the empty
tree to REV: all of REV, for an environment that has nothing yet. Paths matching
`[migrate] exclude` (dasct's config, git's plumbing) are left out, and a change inside
dasct's own state directories is refused. Everything is stored in a staging area through
the format module (trigger.py), which refuses to write anything it would not load back.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

from dasct import git, refs
from dasct.config import MigrateConfig
from dasct.migrate import commands_file as commands_file_
from dasct.migrate import sqltext, windows
from dasct.migrate.environment import STATE_HOME
from dasct.migrate.trigger import (
    ENV_PATTERN,
    ID_PATTERN,
    NAME_PATTERN,
    FileChange,
    FileOp,
    SqlChange,
    StepCommand,
    Trigger,
    TriggerError,
    path_problem,
    sha256_hex,
)
from dasct.migrate.trigger_write import document, write, write_payload
from dasct.settings import matches_glob

if sys.version_info >= (3, 11):
    pass
else:  # pragma: no cover - exercised on Python 3.10 only
    pass

PLAN_FILE = "sqitch.plan"  # inside the SQL directory: the order of the changes
_SQL_SCRIPT = re.compile(r"(deploy|revert|verify)/([^/]+)\.sql")
_GIT_MODES = {"100644": 0o644, "100755": 0o755}
_OPS: dict[str, FileOp] = {"A": "add", "M": "modify", "D": "delete", "R": "rename"}


def create(
    *,
    repo_root: Path,
    rev_range: str,
    environment: str,
    staging: Path,
    migrate: MigrateConfig,
    defect_patterns: Iterable[re.Pattern[str]],
    tid: str | None = None,
    at: datetime | None = None,
    depends_on: Iterable[str] = (),
    conflicts_with: Iterable[str] = (),
    key: bytes | None = None,
    state_paths: Iterable[str] = (),
) -> Trigger:
    """Build the trigger of the enhancement rev_range (A..B) for environment, in staging.

    `migrate` gives the system name, the SQL directory, the commands file, the excluded
    paths and the expiry. A change under `.dasct/` or under one of `state_paths` (dasct's
    configured directories inside the repository, see environment.state_paths) is refused.
    """
    where = f"range {rev_range}"
    _check_names(where, environment, tid, depends_on, conflicts_with)
    base_rev, sep, head_rev = rev_range.partition("..")
    if not sep or not base_rev or not head_rev or head_rev.startswith("."):
        raise TriggerError(f"{where}: expected A..B")
    repo = git.discover(repo_root)
    base, head = git.rev_parse(repo, base_rev), git.rev_parse(repo, head_rev)
    commits, messages = _range_log(repo.root, base, head, where)
    defects = find_defects(messages, defect_patterns)
    return _build(
        repo.root, base, head, head_rev, where=where, environment=environment,
        staging=staging, migrate=migrate, tid=tid or default_id(defects, head),
        commits=commits, defects=defects, at=at,
        depends_on=depends_on, conflicts_with=conflicts_with, key=key, state_paths=state_paths,
    )


def baseline(
    *,
    repo_root: Path,
    rev: str,
    environment: str,
    staging: Path,
    migrate: MigrateConfig,
    tid: str | None = None,
    at: datetime | None = None,
    depends_on: Iterable[str] = (),
    conflicts_with: Iterable[str] = (),
    key: bytes | None = None,
    state_paths: Iterable[str] = (),
) -> Trigger:
    """Build the trigger that puts an empty environment on rev: from the empty tree to rev.

    Every file at rev becomes an `add` and every SQL change at rev is deployed, in plan
    order. Its commits are [rev] and it names no defects. The engine's pre-image check
    makes it apply only to a target that has none of its files (Capistrano's first
    deploy, Sqitch's deploy of the whole plan).
    """
    where = f"baseline {rev}"
    _check_names(where, environment, tid, depends_on, conflicts_with)
    repo = git.discover(repo_root)
    head = git.rev_parse(repo, rev)
    return _build(
        repo.root, git.empty_tree(repo.root), head, rev, where=where,
        environment=environment, staging=staging, migrate=migrate,
        tid=tid or f"baseline-{head[:10]}", commits=[head], defects=[], at=at,
        depends_on=depends_on, conflicts_with=conflicts_with, key=key, state_paths=state_paths,
    )


def default_id(defects: Sequence[str], head: str) -> str:
    """The id a person recognises: the enhancement's defect keys (at most three, `#7` as
    `issue7`) and the short sha of its last commit, e.g. `PROJ-42-a1b2c3d`; the short sha
    alone when the range names no defect."""
    names = [re.sub(r"[^A-Za-z0-9_.-]", "", d.replace("#", "issue")) for d in defects]
    names = [n for n in dict.fromkeys(names) if n][:3]
    more = len(defects) - len(names)
    parts = [*names, *([f"and{more}more"] if more > 0 and names else []), head[:7]]
    return "-".join(parts)


def _check_names(where: str, environment: str, tid: str | None, depends_on: Iterable[str],
                 conflicts_with: Iterable[str]) -> None:
    if tid is not None and not ID_PATTERN.fullmatch(tid):
        raise TriggerError(f"{where}: id {tid!r} must be letters, digits, '.', '_' or '-'")
    if not ENV_PATTERN.fullmatch(environment):
        raise TriggerError(f"{where}: not an environment name: {environment!r}")
    for other in (*depends_on, *conflicts_with):
        if not ID_PATTERN.fullmatch(other) or other == tid:
            raise TriggerError(f"{where}: {other!r} cannot be a dependency or conflict")


def _build(
    root: Path, base: str, head: str, head_rev: str, *, where: str, environment: str,
    staging: Path, migrate: MigrateConfig, tid: str, commits: list[str], defects: list[str],
    at: datetime | None, depends_on: Iterable[str], conflicts_with: Iterable[str],
    key: bytes | None, state_paths: Iterable[str],
) -> Trigger:
    """The trigger of the changes from base (a commit or a tree) to head, written."""
    depends, conflicts = tuple(dict.fromkeys(depends_on)), tuple(dict.fromkeys(conflicts_with))
    sql_dir = migrate.sql_dir
    sql_prefix = sql_dir.strip("/") + "/" if sql_dir.strip("/. ") else None
    changes = _without_excluded(_range_diff(root, base, head, where), migrate.exclude)
    _refuse_state(changes, (STATE_HOME, *state_paths), where)
    touched_sql, file_changes = _sort_changes(changes, sql_prefix, migrate.commands_file)
    files = _file_changes(root, file_changes, staging, where)
    sql: list[SqlChange] = []
    if touched_sql and sql_prefix:
        sql = _sql_changes(root, head, head_rev, sql_prefix, touched_sql, staging, where)
    commands = _commands(root, head, head_rev, migrate.commands_file, staging)

    if tid in (*depends, *conflicts):
        raise TriggerError(f"{where}: {tid!r} cannot depend on or conflict with itself")
    start = (at or datetime.now(timezone.utc)).astimezone(timezone.utc).replace(microsecond=0)
    doc = document(
        id=tid, system=migrate.system, environment=environment, not_before=start,
        expires=start + timedelta(hours=migrate.expiry_hours), defects=defects,
        commits=commits, sql=sql, files=files, commands=commands, depends_on=depends,
        conflicts_with=conflicts, key=key,
    )
    return write(staging, doc, key=key)


def _range_log(root: Path, base: str, head: str, where: str) -> tuple[list[str], list[str]]:
    """The commits of base..head, oldest first, and their full messages."""
    log = git.run("log", "-z", "--reverse", "--topo-order", "--format=%H%n%B",
                  f"{base}..{head}", "--", cwd=root)
    records = [r.decode("utf-8", "replace") for r in log.split(b"\0") if r.strip()]
    if not records:
        raise TriggerError(f"{where}: no commits in the range, nothing to migrate")
    commits = [r.split("\n", 1)[0] for r in records]
    return commits, [r.partition("\n")[2] for r in records]


def _range_diff(root: Path, base: str, head: str, where: str) -> list[_RawChange]:
    """The changes of base..head, with renames unless they would name a path twice."""
    changes = _raw_diff(root, base, head, renames=True, where=where)
    named = [p for c in changes for p in (c.path, c.old_path) if p]
    if len(set(named)) != len(named):
        # A rename whose old name is reused (moved away, new file in its place) would put
        # one path in two operations; without rename detection each path appears once.
        changes = _raw_diff(root, base, head, renames=False, where=where)
    return changes


def _without_excluded(changes: list[_RawChange], exclude: tuple[str, ...]
                      ) -> list[_RawChange]:
    """The changes outside the excluded paths; a rename across the line is half of one."""
    kept: list[_RawChange] = []
    for c in changes:
        new_out = matches_glob(c.path, exclude)
        old_out = c.old_path is not None and matches_glob(c.old_path, exclude)
        if c.old_path is None or new_out == old_out:
            if not new_out:
                kept.append(c)
        elif old_out:  # moved in from an excluded path: the target never had the old one
            kept.append(replace(c, status="A", old_path=None))
        else:  # moved out to an excluded path: for the target, the file is gone
            kept.append(replace(c, status="D", path=c.old_path, old_path=None))
    return kept


def _refuse_state(changes: list[_RawChange], state: tuple[str, ...], where: str) -> None:
    """Refuse a change inside dasct's own state directories: it is never an enhancement."""
    for rel in (p for c in changes for p in (c.path, c.old_path) if p is not None):
        for folder in state:
            if rel == folder or rel.startswith(folder + "/"):
                raise TriggerError(
                    f"{where}: {rel!r} is in dasct's state directory {folder}/, which is "
                    f"never packaged; remove it from the repository (git rm -r --cached "
                    f"{folder}) or list it in [migrate] exclude"
                )


def _sort_changes(changes: list[_RawChange], sql_prefix: str | None, commands_file: str
                  ) -> tuple[set[str], list[_RawChange]]:
    """The SQL change names the range touched, and the changes that are file changes."""
    touched_sql: set[str] = set()
    file_changes: list[_RawChange] = []
    for change in changes:
        paths = [p for p in (change.old_path, change.path) if p]
        if sql_prefix and any(p.startswith(sql_prefix) for p in paths):
            for p in paths:
                m = _SQL_SCRIPT.fullmatch(p[len(sql_prefix):]) if p.startswith(sql_prefix) else None
                # NAME@TAG.sql is the copy `sqitch rework` keeps of an older version: the
                # change itself is NAME, reworked in place.
                if m:
                    touched_sql.add(m.group(2).split("@", 1)[0])
            continue
        if change.path == commands_file and change.old_path is None:
            continue  # the commands file becomes the command steps, not a file change
        file_changes.append(change)
    return touched_sql, file_changes


def _file_changes(root: Path, changes: list[_RawChange], staging: Path, where: str
                  ) -> list[FileChange]:
    """Each file change with its pre-image hash, its new content staged, and its mode."""
    blobs = git.cat_blobs(root, [
        b for c in changes for b in (c.old_blob, c.new_blob) if set(b) != {"0"}
    ])
    files: list[FileChange] = []
    for c in changes:
        if c.status not in "AMDR":
            raise TriggerError(f"{where}: {c.path!r} changed type (git status {c.status}); "
                               "only regular files can be migrated")
        for rel in (c.path, c.old_path):
            if rel is not None and (problem := path_problem(rel)):
                raise TriggerError(f"{where}: path {rel!r} {problem}")
        pre = sha256_hex(blobs[c.old_blob]) if c.status != "A" else None
        post = write_payload(staging, blobs[c.new_blob]) if c.status != "D" else None
        mode = _file_mode(c.old_mode if c.status == "D" else c.new_mode, c.path, where)
        if c.status != "A":
            _file_mode(c.old_mode, c.old_path or c.path, where)
        files.append(FileChange(_OPS[c.status], c.path, c.old_path, pre, post, mode))
    return files


def _sql_changes(root: Path, head: str, head_rev: str, sql_prefix: str, touched: set[str],
                 staging: Path, where: str) -> list[SqlChange]:
    """The touched SQL changes in plan order, their scripts (taken at head) staged."""
    tree = _tree(root, head, sql_prefix)
    plan_blob = tree.get(sql_prefix + PLAN_FILE)
    scripts = git.cat_blobs(root, [*tree.values()])
    plan = _plan_order(scripts[plan_blob] if plan_blob else None)
    rank = {name: i for i, name in enumerate(plan)}
    sql: list[SqlChange] = []
    for name in sorted(touched, key=lambda n: (rank.get(n, len(rank)), n)):
        if not NAME_PATTERN.fullmatch(name):
            raise TriggerError(f"{where}: SQL change name {name!r} is not a simple name")
        found = {
            kind: tree.get(f"{sql_prefix}{kind}/{name}.sql")
            for kind in ("deploy", "revert", "verify")
        }
        for kind in ("deploy", "revert"):
            if found[kind] is None:
                raise TriggerError(
                    f"{where}: SQL change {name!r} has no {sql_prefix}{kind}/{name}.sql at "
                    f"{head_rev} (a change needs deploy and revert scripts)"
                )
        for kind, blob in found.items():
            problem = sqltext.refusal(scripts[blob].decode("utf-8", "replace")) if blob else None
            if problem:
                raise TriggerError(f"{where}: {sql_prefix}{kind}/{name}.sql: {problem}")
        payload = {k: write_payload(staging, scripts[b]) for k, b in found.items() if b}
        sql.append(SqlChange(name, payload["deploy"], payload["revert"], payload.get("verify")))
    return sql


def _commands(root: Path, head: str, head_rev: str, commands_file: str, staging: Path
              ) -> list[StepCommand]:
    """The command steps of the commands file at head (none without one)."""
    blob = _tree(root, head, commands_file).get(commands_file)
    if not blob:
        return []
    data = git.cat_blobs(root, [blob])[blob]

    def store(path: str) -> str | None:
        found = _tree(root, head, path).get(path)
        return write_payload(staging, git.cat_blobs(root, [found])[found]) if found else None

    return commands_file_.parse(data, f"{commands_file} at {head_rev}", store)


@dataclass(frozen=True)
class _RawChange:
    status: str  # git's status letter: A, M, D, R, T, ...
    old_mode: str
    new_mode: str
    old_blob: str
    new_blob: str
    path: str
    old_path: str | None


def _raw_diff(root: Path, base: str, head: str, *, renames: bool, where: str) -> list[_RawChange]:
    """The raw records of `git diff A B`, with UTF-8 paths only (a trigger is UTF-8)."""
    changes: list[_RawChange] = []
    for record in git.raw_diff(root, base, head, renames=renames):
        path = record.new_path if record.new_path is not None else record.old_path
        assert path is not None
        old_path = record.old_path if record.status in "RC" else None
        for rel in (path, old_path):
            # The parser keeps undecodable bytes as surrogates; a trigger is UTF-8.
            if rel is not None and not _is_utf8(rel):
                raise TriggerError(f"{where}: path {rel!r} is not UTF-8")
        changes.append(_RawChange(
            status=record.status, old_mode=record.old_mode, new_mode=record.new_mode,
            old_blob=record.old_blob, new_blob=record.new_blob, path=path,
            old_path=old_path,
        ))
    return changes


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _tree(root: Path, rev: str, *paths: str) -> dict[str, str]:
    """path -> blob of the files at rev under the given paths; the paths must be UTF-8."""
    entries = git.ls_tree(root, rev, *paths)
    for name in entries:
        if not _is_utf8(name):
            raise TriggerError(f"{rev}: path {name!r} is not UTF-8")
    return entries


def _plan_order(plan: bytes | None) -> list[str]:
    """Change names in the order a sqitch.plan lists them (first mention wins)."""
    if plan is None:
        return []
    names: list[str] = []
    for line in plan.decode("utf-8", "replace").splitlines():
        line = line.strip()
        if not line or line[0] in "%#@":
            continue
        names.append(line.split()[0])
    return list(dict.fromkeys(names))


def _file_mode(git_mode: str, path: str, where: str) -> int:
    mode = _GIT_MODES.get(git_mode)
    if mode is None:
        kind = {"120000": "a symlink", "160000": "a submodule"}.get(git_mode, f"mode {git_mode}")
        raise TriggerError(f"{where}: {path!r} is {kind}; only regular files can be migrated")
    return mode


def find_defects(messages: Iterable[str], patterns: Iterable[re.Pattern[str]]) -> list[str]:
    """Defect keys named in commit messages, first seen first (the rule of dasct.refs)."""
    compiled = list(patterns)
    found = [key for message in messages for key in refs.defect_keys(message, compiled)]
    return list(dict.fromkeys(found))


def parse_time(text: str) -> datetime:
    """The `--at` of `trigger create` and `migrate run`: UTC unless it carries an offset."""
    try:
        return windows.instant(text).replace(microsecond=0)
    except ValueError:
        raise TriggerError(f"--at: not a time: {text!r} (use e.g. 2026-11-23T23:00Z)") from None
