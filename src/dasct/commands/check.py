"""`dasct check`: report the defects a change touches.

The pre-commit hook runs `dasct check --staged`: this module is the commit-time path, so
it imports only what it needs (tests/test_hook_imports.py keeps it honest) and starts git
before anything else, so that git computes the diff while dasct loads its index.
"""

from __future__ import annotations

# The C module under `signal`, loaded at interpreter start: `signal` itself imports enum
# and costs the commit-time path. It has no type stubs, hence the ignore.
import _signal  # type: ignore[import-not-found]
import sys

from dasct import check, git, settings
from dasct.errors import DasctError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from types import FrameType, TracebackType

FORMATS = ("text", "json", "github", "sarif", "markdown", "codequality")
# Formats that always write a document, empty or not (a CI step reads the file).
DOCUMENTS = ("sarif", "markdown", "codequality")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--staged", action="store_true", help="the staged change (default)")
    what.add_argument("--commit", metavar="REV", help="what commit REV changed")
    what.add_argument("--range", metavar="A..B", help="what B brings over its merge base with A")
    what.add_argument("--each", metavar="A..B",
                      help="each commit of B's first-parent chain since A, against its parent "
                           "(text or json)")
    parser.add_argument(
        "--format", choices=FORMATS, default="text",
        help="text for people (default); json, the findings for tools; github, workflow "
             "annotations; sarif, a SARIF 2.1.0 document for code scanning; markdown, a "
             "job summary; codequality, a GitLab code quality report (docs/ci.md)",
    )
    parser.add_argument(
        "--all", action="store_true", dest="all_kinds",
        help="report touched lines of every kind (default: those of [check] kinds, code)",
    )
    parser.add_argument(
        "--strict", action="store_true", default=None,
        help="exit 1 when a protected line is touched (also: [check] strict = true)",
    )


def fails_open(args: argparse.Namespace) -> bool:
    """As the pre-commit hook (the staged change), dasct's own failure never blocks the
    commit unless strict; checking a commit or a range in CI fails loudly."""
    return (args.commit is None and args.range is None and args.each is None
            and not args.strict)


def run(args: argparse.Namespace) -> int:
    if args.each is not None:
        return each(spec=args.each, fmt=args.format, strict=args.strict,
                    all_kinds=args.all_kinds)
    return main(rev=args.commit, spec=args.range, fmt=args.format, strict=args.strict,
                all_kinds=args.all_kinds)


def each(*, spec: str, fmt: str, strict: bool | None, all_kinds: bool = False) -> int:
    """Check every commit of A..B against its first parent; exit 1 only for a touch in
    strict mode."""
    import json

    from dasct import kinds, render, walk

    if fmt not in ("text", "json"):
        raise DasctError(f"--each writes text or json, not {fmt}")
    repo = git.discover()
    cfg = settings.load(repo)
    steps = walk.each(repo, cfg, spec, all_kinds=all_kinds)
    strict = cfg.strict if strict is None else strict
    touching = [s for s in steps if s.findings]
    if fmt == "json":
        # One commit a line: a walk's findings run to a million values (apache/maven,
        # 1,000 commits), which json's indenting encoder (pure Python) took 1.7 s to
        # write and its compact one (C) writes in a tenth of that.
        rows = ",\n".join(json.dumps(s.as_dict(), ensure_ascii=False) for s in steps)
        sys.stdout.write('{"commits": [\n' + rows + ("\n" if rows else "") + "]}\n")
    else:
        subjects = git.subjects(repo, (f.commit for s in touching for f in s.findings))
        for s in touching:
            label = f"commit {s.sha[:12]} {render.printable(s.subject)}".rstrip()
            sys.stdout.write(render.findings_text(s.findings, subjects, label, strict,
                                                  kinds.left_out_note(s.left_out)))
        found = sum(len(s.findings) for s in touching)
        print(f"dasct: {spec}: {render.plural(len(steps), 'commit')} checked, "
              f"{len(touching)} touch protected lines"
              + (f" ({render.plural(found, 'finding')})" if found else ""))
    return 1 if strict and touching else 0


class OverBudget(DasctError):
    """The commit-time check ran past `[check] budget_seconds`."""


class Budget:
    """`with Budget(seconds) as b:` raises OverBudget in the block once seconds have passed.

    A SIGALRM timer, because the time goes where Python cannot look at a clock: a defect
    pattern that backtracks for minutes inside re (which checks for signals), a first
    index build. `b.set(seconds)` moves the limit (counted from the start). Without
    setitimer (Windows) there is no limit.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.previous: object = None

    def _expired(self, signum: int, frame: FrameType | None) -> None:
        raise OverBudget(
            f"the check ran past its budget of {self.seconds:g} s ([check] budget_seconds) "
            "and was stopped: this change is not checked (if the index was being built, "
            "`dasct index` builds it outside a commit)"
        )

    def __enter__(self) -> Budget:
        if hasattr(_signal, "setitimer"):
            self.previous = _signal.signal(_signal.SIGALRM, self._expired)
            _signal.setitimer(_signal.ITIMER_REAL, self.seconds)
        return self

    def set(self, seconds: float) -> None:
        """Make the limit `seconds` from the start (raises now when that has passed)."""
        if hasattr(_signal, "setitimer"):
            left = _signal.setitimer(_signal.ITIMER_REAL, 0)[0]
            elapsed, self.seconds = self.seconds - left, seconds
            if elapsed >= seconds:
                self._expired(0, None)
            _signal.setitimer(_signal.ITIMER_REAL, seconds - elapsed)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if hasattr(_signal, "setitimer"):
            _signal.setitimer(_signal.ITIMER_REAL, 0)
            _signal.signal(_signal.SIGALRM, self.previous)


# Whether the configuration read by this process says `[check] strict = true`: then the
# hook's own failures block the commit too (PRODUCT.md), once the settings are known.
_strict_config = False


def hook_fails_open() -> bool:
    """For the hook: its own failure lets the commit go on unless the config is strict (a
    failure before the settings could be read always lets it go on)."""
    return not _strict_config


def main(
    *, rev: str | None, spec: str | None, fmt: str, strict: bool | None, all_kinds: bool = False
) -> int:
    """Check one change; exit 1 only for a touch in strict mode."""
    global _strict_config
    if rev is None and spec is None:
        # The default budget covers finding the repository and reading its settings.
        with Budget(settings.DEFAULT_BUDGET) as budget, git.stream(*check.STAGED_DIFF) as out:
            repo = git.discover()
            cfg = settings.load(repo)
            _strict_config = cfg.strict
            budget.set(cfg.budget)
            change = check.staged(repo)
            findings = check.touched(repo, cfg, change, out)
    else:
        repo = git.discover()
        cfg = settings.load(repo)
        change = check.commit(repo, rev) if rev is not None else check.range_(repo, spec or "")
        findings = check.run_check(repo, cfg, change, with_kinds=False)
    strict = cfg.strict if strict is None else strict
    left_out: list[check.Finding] = []
    asked: git.Subjects | None = None
    if findings:
        from dasct import kinds

        if fmt != "json":
            # The fix commits' subjects, asked of git now: it answers while the findings
            # are classified.
            asked = git.Subjects(repo, {f.commit: None for f in findings})
        check.classify(repo, change, findings)
        findings, left_out = kinds.reported(findings, cfg.kinds, all_kinds)
        if not findings and asked is not None and fmt not in DOCUMENTS:
            asked.close()  # every touched line was of a kind not reported
    if fmt == "json":
        from dasct import render  # only when there is something to say

        print(render.findings_json(findings, len(left_out)))
    elif not findings and fmt == "text":
        if left_out:
            from dasct import kinds

            print(f"dasct: {change.label}: no reported protected lines touched "
                  f"{kinds.left_out_note(left_out)}")
        else:
            print(f"dasct: {change.label}: no protected lines touched")
    elif findings or fmt in DOCUMENTS:
        from dasct import kinds, render

        subjects = asked.result() if asked is not None else {}
        if fmt != "text":  # the CI formats' module imports json, hashlib, gzip: ~7 ms
            from dasct import ci_formats
        if fmt == "github":
            sys.stdout.write(ci_formats.github(findings, subjects, change.label))
        elif fmt == "sarif":
            document, cut = ci_formats.sarif(findings, subjects, change.label)
            sys.stdout.write(document)
            if cut:
                print(f"dasct: {cut} SARIF results left out (code scanning's limits); "
                      "the document says so", file=sys.stderr)
        elif fmt == "markdown":
            sys.stdout.write(ci_formats.markdown(findings, subjects, change.label,
                                                 len(left_out)))
        elif fmt == "codequality":
            sys.stdout.write(ci_formats.codequality(findings, subjects))
        else:
            sys.stdout.write(render.findings_text(findings, subjects, change.label, strict,
                                                  kinds.left_out_note(left_out)))
    return 1 if strict and findings else 0
