"""Evidence for a revalidation: the fix commits' own tests, run at the touching commit.

A defect's *fix tests* are the paths its fix commits added or changed that match
`[qa] test_globs`. They run at a commit in a tree of that commit materialised outside the
repository, with `[qa] test_command`; the outcome (passed, failed, not run and why) goes on
the ticket. A *trigger test* (Defects4J, BugsInPy) fails before the fix and passes at it;
`verify_trigger_tests` finds them. Nothing here touches the ledger: qa.py stores results.
See docs/evidence.md.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, NamedTuple

from dasct import git, redact
from dasct.errors import GitError
from dasct.procgroup import end_group
from dasct.qaconfig import QaConfig
from dasct.settings import matches_glob

TAIL_LINES = 40
_TAIL_BYTES = 64 * 1024  # how much of the output end is read for the tail
_LINKED = "ACMRT"  # raw statuses whose new side is a file the fix wrote
# The variables that say which repository git works on. A hook runs with GIT_DIR and
# GIT_INDEX_FILE set: inherited, they would point the tests' own git calls at the user's
# repository and index instead of the tree they run in.
_REPO_VARS = ("GIT_DIR", "GIT_INDEX_FILE", "GIT_WORK_TREE", "GIT_COMMON_DIR",
              "GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_PREFIX",
              "GIT_NAMESPACE")


class Outcome(NamedTuple):
    """What running a defect's fix tests at one commit gave."""

    status: str  # "passed" | "failed" | "not-run"
    reason: str = ""  # why not run; or which tests were gone while the others ran
    tail: str = ""  # the last TAIL_LINES lines of output (redacted): failed or timed out
    seconds: float = 0.0
    command: str = ""  # the command as run (redacted)
    tests: tuple[str, ...] = ()
    commit: str = ""  # where it ran

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tests as a list); `from_dict` reads it back."""
        out = self._asdict()
        out["tests"] = list(self.tests)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Outcome:
        """The Outcome of an `as_dict` record (unknown keys ignored)."""
        known = {k: data[k] for k in cls._fields if k in data}
        known["tests"] = tuple(known.get("tests", ()))
        return cls(**known)


def fix_tests(repo: git.Repo, fix_commits: Sequence[str], globs: Sequence[str]) -> list[str]:
    """The paths the fix commits added or modified (against their first parent, renames
    followed) that match the test globs, sorted and unique."""
    found = fix_tests_of(repo, fix_commits, globs)
    return sorted({t for tests in found.values() for t in tests})


def fix_tests_of(repo: git.Repo, fix_commits: Sequence[str], globs: Sequence[str]
                 ) -> dict[str, list[str]]:
    """fix_tests of each fix commit on its own, from one `git log --no-walk` (a root
    commit against the empty tree, a merge against its first parent)."""
    wanted = list(dict.fromkeys(fix_commits))
    if not wanted:
        return {}
    from dasct import diff

    out = git.run("log", "--no-walk=unsorted", "--stdin", "-m", "--first-parent",
                  "--oneline", "--no-abbrev-commit", "--no-decorate", "--raw", "--no-abbrev",
                  "-M", "--root", "--no-ext-diff", "--no-relative", "--format=%H",
                  cwd=repo.root, input="".join(f"{c}\n" for c in wanted).encode())
    found: dict[str, set[str]] = {c: set() for c in wanted}
    # Names that are not full shas (HEAD~2, a short sha) are known by the sha git prints.
    full = {git.rev_parse(repo, c): c for c in wanted if len(c) != 40}
    patterns = tuple(globs)
    is_test: dict[str, bool] = {}  # by path: fixes touch the same files again and again
    for section in diff.parse(diff.lines_of(out), commits=True):
        mine = found.setdefault(full.get(section.commit, section.commit), set())
        for change in section.files:
            path = change.new_path
            if change.status[:1] not in _LINKED or path is None or change.is_gitlink:
                continue
            known = is_test.get(path)
            if known is None:
                known = is_test[path] = matches_glob(path, patterns)
            if known:
                mine.add(path)
    return {c: sorted(found[c]) for c in wanted}


def _parent(repo: git.Repo, commit: str) -> str | None:
    out = git.run("rev-parse", "--verify", "-q", "--end-of-options", f"{commit}^1^{{commit}}",
                  cwd=repo.root, ok_codes=(0, 1))
    return out.decode().strip() or None


def _entries(repo: git.Repo, commit: str, paths: Sequence[str]) -> dict[str, tuple[str, str]]:
    """path -> (mode, blob) of the wanted paths that are files at commit."""
    if not paths:
        return {}
    wanted = set(paths)
    # --literal-pathspecs: a test named like a glob (test_[x].py) is that file only.
    out = git.run("--literal-pathspecs", "ls-tree", "-r", "-z", "--full-tree", commit, "--",
                  *paths, cwd=repo.root)
    entries: dict[str, tuple[str, str]] = {}
    for record in out.split(b"\0"):
        info, _, name = record.partition(b"\t")
        if not info:
            continue
        mode, kind, blob = info.decode("ascii").split(" ")
        path = name.decode("utf-8", "surrogateescape")
        if kind == "blob" and path in wanted:
            entries[path] = (mode, blob)
    return entries


@contextmanager
def materialised(repo: git.Repo, commit: str | None,
                 overlay: Mapping[str, tuple[str, str]] | None = None) -> Iterator[Path]:
    """The tree of commit (None: the empty tree), plus overlay's files, written to a new
    temporary directory outside the repository and removed on leaving.

    A throwaway index and `git checkout-index --prefix` rather than `git worktree add` or
    `git archive`: like a checkout it applies the filters (LFS smudge, eol) that archive
    skips, it ignores export-ignore (which would drop tests from an archive), and unlike a
    worktree it registers nothing in the repository, runs no post-checkout hook (dasct's
    own among them) and leaves the user's index and work tree alone. A submodule is an
    empty directory, as after a clone without --recurse-submodules: a test that needs its
    files fails, and its tail says so.
    """
    tree = Path(tempfile.mkdtemp(prefix="dasct-evidence-"))
    index = tree.with_name(tree.name + ".index")
    env = git.git_env({"GIT_INDEX_FILE": str(index)})
    env.pop("GIT_WORK_TREE", None)
    try:
        if commit is None:
            git.run("read-tree", "--empty", cwd=repo.root, env=env)
        else:
            git.run("read-tree", commit, cwd=repo.root, env=env)
        if overlay:
            info = "".join(f"{mode} {blob}\t{path}\n" for path, (mode, blob) in overlay.items())
            git.run("update-index", "--index-info", cwd=repo.root, env=env,
                    input=info.encode("utf-8", "surrogateescape"))
        git.run("checkout-index", "-a", "-f", f"--prefix={tree}/", cwd=repo.root, env=env)
        yield tree
    finally:
        index.unlink(missing_ok=True)
        _remove_tree(tree)


def _remove_tree(tree: Path) -> None:
    def writable(func: Any, path: str, _exc: Any) -> None:
        # A test may leave read-only files or directories behind: make them removable.
        os.chmod(os.path.dirname(path), 0o700)
        os.chmod(path, 0o700)
        func(path)

    if sys.version_info >= (3, 12):
        shutil.rmtree(tree, onexc=writable)
    else:
        shutil.rmtree(tree, onerror=writable)


def argv_for(template: str, tests: Sequence[str], commit: str) -> list[str]:
    """The command of template for these tests: split like a shell (no shell runs it); a
    word holding `{tests}` is repeated once per test (`{tests}` alone: one argument per
    path); `{classes}` is the file stems joined with "," (mvn -Dtest=A,B); `{commit}` the
    sha. ValueError for a template shlex cannot split."""
    classes = ",".join(dict.fromkeys(Path(t).name.split(".", 1)[0] for t in tests))
    argv: list[str] = []
    for word in shlex.split(template):
        word = word.replace("{classes}", classes).replace("{commit}", commit)
        if "{tests}" in word:
            # A path that starts with "-" would be read as an option: ./ keeps it a path.
            argv.extend(word.replace("{tests}", f"./{t}" if t.startswith("-") else t)
                        for t in tests)
        else:
            argv.append(word)
    return argv


def run_tests(repo: git.Repo, commit: str, tests: Sequence[str], cfg: QaConfig) -> Outcome:
    """Run the tests that exist at commit with `[qa] test_command`, in a tree of commit.

    Never raises for a failing, hanging or missing command: the Outcome says what happened.
    The child's environment is redact.child_env's: call redact.configure(config) first, so
    that credential variables known only from the config are withheld too.
    """
    if not cfg.test_command.strip():
        return Outcome("not-run", "no test_command configured", commit=commit)
    try:
        sha = git.rev_parse(repo, commit)
    except GitError as exc:
        return Outcome("not-run", redact.redact(str(exc)), commit=commit)
    if not tests:
        return Outcome("not-run", "no tests among the fix commits' changes", commit=sha)
    present = _entries(repo, sha, tests)
    kept = tuple(t for t in dict.fromkeys(tests) if t in present)
    gone = [t for t in dict.fromkeys(tests) if t not in present]
    if not kept:
        return Outcome("not-run", f"the tests are gone at {sha[:12]}: {', '.join(gone)}",
                       tests=tuple(gone), commit=sha)
    try:
        with materialised(repo, sha) as tree:
            outcome = execute(cfg, tree, kept, sha)
    except (GitError, OSError) as exc:  # checkout-index (an LFS smudge, a full disk)
        return Outcome("not-run", _unmaterialised(sha, exc), tests=kept, commit=sha)
    if gone and outcome.status != "not-run":
        outcome = outcome._replace(reason=f"gone at {sha[:12]}, not run: {', '.join(gone)}")
    return outcome


def evidence_at(repo: git.Repo, commit: str, fix_commits: Sequence[str], cfg: QaConfig,
                verifications: Sequence[Mapping[str, Any]] = (), *,
                tests: Sequence[str] | None = None) -> Outcome:
    """The evidence for a ticket: the fix tests run at commit; with `verify_trigger_tests`,
    only those a verification (the ledger's verify_trigger_tests results) found. tests:
    fix_tests(fix_commits) when the caller has it already."""
    tests = fix_tests(repo, fix_commits, cfg.test_globs) if tests is None else list(tests)
    if cfg.verify_trigger_tests and tests:
        verified = {t for v in verifications for t in v.get("verified", ())}
        tests = [t for t in tests if t in verified]
        if not tests:
            return Outcome("not-run", "no evidence: no verified trigger test", commit=commit)
    return run_tests(repo, commit, tests, cfg)


def _unmaterialised(sha: str, exc: Exception) -> str:
    return redact.redact(f"the tree of {sha[:12]} could not be written: {exc}")


def execute(cfg: QaConfig, tree: Path, tests: Sequence[str], commit: str) -> Outcome:
    """Run the test command for tests in an already materialised tree of commit."""
    try:
        argv = argv_for(cfg.test_command, tests, commit)
    except ValueError as exc:
        return Outcome("not-run", f"[qa] test_command: {exc}", tests=tuple(tests),
                       commit=commit)
    if not argv:
        return Outcome("not-run", "no test_command configured", commit=commit)
    shown = redact.redact(shlex.join(argv))
    base = Outcome("not-run", command=shown, tests=tuple(tests), commit=commit)
    env = redact.child_env({"DASCT_COMMIT": commit, "DASCT_TESTS": "\n".join(tests)})
    for var in _REPO_VARS:
        env.pop(var, None)
    start = time.monotonic()
    # A file, not a pipe: a process the tests leave running would hold a pipe open.
    with tempfile.TemporaryFile() as out:
        try:
            proc = subprocess.Popen(argv, cwd=tree, env=env, stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        except FileNotFoundError:
            return base._replace(reason=f"{redact.redact(argv[0])}: not found")
        except PermissionError:
            return base._replace(reason=f"{redact.redact(argv[0])}: not executable")
        try:
            code = proc.wait(timeout=cfg.test_timeout_seconds)
        except subprocess.TimeoutExpired:
            end_group(proc.pid, leader=proc)
            return base._replace(reason=f"timed out after {cfg.test_timeout_seconds:g} s",
                                 tail=_tail(out), seconds=time.monotonic() - start)
        except BaseException:  # Ctrl-C no longer reaches a command in its own session
            end_group(proc.pid, leader=proc)
            raise
        seconds = time.monotonic() - start
        end_group(proc.pid)  # what the tests started must not outlive them, nor their tree
        if code == 0:
            return base._replace(status="passed", seconds=seconds)
        why = f"exit code {code}" if code > 0 else f"killed by signal {-code}"
        return base._replace(status="failed", reason=why, tail=_tail(out), seconds=seconds)


def _tail(f: IO[bytes]) -> str:
    """The last TAIL_LINES lines of the output, redacted as a whole first (a secret that
    spans lines is still seen whole)."""
    size = f.seek(0, os.SEEK_END)
    f.seek(max(0, size - _TAIL_BYTES))
    text = f.read().decode("utf-8", "replace")
    if size > _TAIL_BYTES:
        text = text.partition("\n")[2]  # a line cut by the seek is not shown
    lines = redact.redact(text).rstrip().splitlines()
    return "\n".join(lines[-TAIL_LINES:])


def verify_trigger_tests(repo: git.Repo, fix_commit: str, tests: Sequence[str],
                         cfg: QaConfig) -> dict[str, Any]:
    """Which of the fix's tests are trigger tests: each run alone, at the fix (must pass)
    and before it (must fail).

    *Before the fix* is Defects4J's buggy version: the first parent's tree with the fix's
    versions of its tests laid over it (all of `tests` present at the fix, so a helper or
    conftest the fix changed comes too). A test the fix added therefore runs before the
    fix, and failing to import what the fix added counts as failing there. Returns
    {"fix": sha, "parent": sha or None, "verified": [paths], "rejected": {path: why},
    "seconds": total, "not_run": why nothing could run ("" when it could)}.
    """
    start = time.monotonic()
    sha = git.rev_parse(repo, fix_commit)
    result: dict[str, Any] = {"fix": sha, "parent": _parent(repo, sha), "verified": [],
                              "rejected": {}, "seconds": 0.0, "not_run": ""}
    wanted = list(dict.fromkeys(tests))
    at_fix = _entries(repo, sha, wanted)
    for test in wanted:
        if test not in at_fix:
            result["rejected"][test] = "absent at the fix"
    candidates = [t for t in wanted if t in at_fix]
    try:
        _verify(repo, sha, candidates, at_fix, cfg, result)
    except (GitError, OSError) as exc:
        result["not_run"] = _unmaterialised(sha, exc)
    if result["not_run"]:  # a command that cannot start verifies nothing, rejects nothing
        result["verified"], result["rejected"] = [], {}
    result["seconds"] = round(time.monotonic() - start, 3)
    return result


def _verify(repo: git.Repo, sha: str, candidates: list[str],
            at_fix: Mapping[str, tuple[str, str]], cfg: QaConfig,
            result: dict[str, Any]) -> None:
    """Run each candidate alone at the fix, then the passing ones before it; fills result."""
    passing: list[str] = []
    if candidates:
        with materialised(repo, sha) as tree:
            for test in candidates:
                outcome = execute(cfg, tree, [test], sha)
                if outcome.status == "passed":
                    passing.append(test)
                elif _cannot_run(outcome):
                    result["not_run"] = outcome.reason
                    break
                else:
                    result["rejected"][test] = _why("fails at the fix", outcome)
    if passing:
        with materialised(repo, result["parent"], overlay=at_fix) as tree:
            for test in passing:
                outcome = execute(cfg, tree, [test], sha)
                if outcome.status == "passed":
                    result["rejected"][test] = "passes before the fix"
                elif _cannot_run(outcome):
                    result["not_run"] = outcome.reason
                    break
                else:
                    result["verified"].append(test)


def _cannot_run(outcome: Outcome) -> bool:
    """Not run for a reason that no test can change (the command itself is missing)."""
    return outcome.status == "not-run" and not outcome.reason.startswith("timed out")


def _why(what: str, outcome: Outcome) -> str:
    return f"{what} ({outcome.reason})" if outcome.reason.startswith("timed out") else what


def ticket_section(outcome: Outcome | Mapping[str, Any]) -> str:
    """Markdown lines for a ticket body: the fix tests' outcome at one commit."""
    o = outcome if isinstance(outcome, Outcome) else Outcome.from_dict(outcome)
    where = f"Fix tests at {o.commit[:12]}" if o.commit else "Fix tests"
    count = f"{len(o.tests)} test{'s' if len(o.tests) != 1 else ''}, {o.seconds:.1f} s"
    if o.status == "passed":
        lines = [f"{where}: passed ({count})"]
    elif o.status == "failed":
        lines = [f"{where}: failed — probable regression ({count}, {o.reason})"]
    else:
        lines = [f"{where}: not run: {o.reason}"]
    if o.status != "not-run" and o.reason.startswith("gone"):
        lines.append(f"Tests {o.reason}")
    if o.command:
        lines.append(f"Command: `{o.command}`")
    if o.tests and o.command:
        lines.append("Tests: " + ", ".join(o.tests))
    if o.tail:
        fence = "`" * max([3, *(len(run) + 1 for run in re.findall("`+", o.tail))])
        lines += [fence, o.tail, fence]
    return "\n".join(lines)


def describe(defect: str, *, fixes: Mapping[str, str], tests: Sequence[str],
             verifications: Sequence[Mapping[str, Any]] = (),
             outcomes: Sequence[Outcome | Mapping[str, Any]] = ()) -> str:
    """What `dasct qa evidence DEFECT` prints for one defect.

    fixes: fix commit sha -> subject; tests: their fix tests (fix_tests); verifications:
    the verify_trigger_tests results the ledger holds (none: not verified); outcomes: the
    latest Outcomes (objects or as_dict records), newest last.
    """
    lines = [f"{defect}: {len(fixes)} fix commit{'s' if len(fixes) != 1 else ''}"]
    lines += [f"  {sha[:12]} {subject}" for sha, subject in fixes.items()]
    if tests:
        lines.append(f"fix tests ({len(tests)}):")
        lines += [f"  {t}" for t in tests]
    else:
        lines.append("fix tests: none (no changed path matches [qa] test_globs)")
    if not verifications:
        lines.append("trigger tests: not verified")
    for v in verifications:
        head = f"trigger tests of {str(v.get('fix', ''))[:12]}"
        if v.get("not_run"):
            lines.append(f"{head}: not verified: {v['not_run']}")
            continue
        verified = list(v.get("verified", ()))
        lines.append(f"{head}: {len(verified)} verified ({float(v.get('seconds', 0)):.1f} s)")
        lines += [f"  verified {t}" for t in verified]
        lines += [f"  rejected {t}: {why}" for t, why in dict(v.get("rejected", {})).items()]
    if verifications and not any(v.get("verified") for v in verifications):
        lines.append("no evidence: no verified trigger test")
    if not outcomes:
        lines.append("runs: none yet")
    for outcome in outcomes:
        lines.append(ticket_section(outcome))
    return "\n".join(lines)
