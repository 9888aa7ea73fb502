"""The `dasct` command line: one table of commands, one error policy.

Only the chosen command's module is imported, so `dasct check --staged` (the commit-time
path) pays for nothing else. Exit codes: 0 success (warnings included), 1 a failure the
user must act on (a touch in strict mode, a bad input), 2 usage, 3 internal error,
130 interrupted, 141 the reader of stdout went away (as git: `dasct scan | head`).
"""

from __future__ import annotations

import importlib
import os
import sys

from dasct import __version__, cache
from dasct.errors import DasctError

TYPE_CHECKING = False  # argparse and typing stay off the commit-time path (see main)
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence
    from typing import Protocol

    class Command(Protocol):
        """What a module under dasct.commands provides.

        A command that runs as a git hook may also define `fails_open(args) -> bool`:
        true when its own failure must not block git (one line printed, exit 0).
        """

        def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

        def run(self, args: argparse.Namespace) -> int: ...

SKIP_VAR = "DASCT_SKIP"  # set to 1 to skip dasct for one command, e.g. DASCT_SKIP=1 git commit
# What the hooks run: dispatched without argparse, which alone costs ~4 ms per commit.
HOOK_ARGV = (["check", "--staged"], ["check"])
REFRESH_HOOK_ARGV = ["refresh", "--background"]


# What a controller runs on a remote environment's host; not a command for people.
TARGET_COMMAND = "_target"

# name -> (module, one-line help). The help is duplicated here so that `dasct --help`
# does not import every command.
COMMANDS: dict[str, tuple[str, str]] = {
    "check": ("dasct.commands.check", "report the defects a change touches (the pre-commit hook)"),
    "scan": ("dasct.commands.scan", "list every protected line at HEAD"),
    "why": ("dasct.commands.why", "which defects protect PATH:LINE, and through which commit"),
    "stats": ("dasct.commands.stats", "protected lines by defect, kind and path class; the "
              "fix commits that protect the most"),
    "show": ("dasct.commands.show", "every commit linked to a defect and the lines it protects"),
    "index": ("dasct.commands.index", "build or update the protected-lines index"),
    "refresh": ("dasct.commands.refresh", "bring the index to HEAD (--background: for git hooks)"),
    "install": ("dasct.commands.install", "install dasct's git hooks (chaining existing ones)"),
    "uninstall": ("dasct.commands.install", "remove dasct's git hooks"),
    "trigger": ("dasct.commands.trigger", "build and inspect trigger files for enhancements"),
    "migrate": ("dasct.commands.migrate", "apply due triggers to an environment, revert, resolve"),
    "publish": ("dasct.commands.publish", "sign an environment's releases into a TUF repository "
                "for pull-mode agents"),
    "status": ("dasct.commands.status", "every enhancement and its state in each environment"),
    "inventory": ("dasct.commands.inventory", "what an environment has deployed; diff two; "
                  "verify (drift)"),
    "where": ("dasct.commands.where", "where an enhancement, a defect's fix or a file is "
              "deployed"),
    "signoff": ("dasct.commands.signoff", "sign off (or reject) an enhancement migrated in "
                "model; promotes it to production"),
    "warranty": ("dasct.commands.warranty", "warranty of migrated enhancements: check, claim"),
    "audit": ("dasct.commands.audit", "verify the audit log and its signed checkpoints"),
    "ci": ("dasct.commands.ci", "CI jobs: record what landed and file revalidation tickets"),
    "qa": ("dasct.commands.qa", "open revalidations; accept, reject, sync, flush, evidence"),
    "link": ("dasct.commands.link", "link lines to a defect by hand (the ledger)"),
    "unlink": ("dasct.commands.link", "remove a defect from lines (the ledger)"),
    "ledger": ("dasct.commands.ledger", "the QA ledger: log its records, push or fetch it"),
    "report": ("dasct.commands.report", "write a static HTML report: defects per file, "
               "revalidations, migrations, warranty, audit"),
    "agent": ("dasct.commands.agent", "the target's agent: count uses, check and download "
              "signed releases, install, take an upgrade back"),
    "demo": ("dasct.commands.demo", "build a sample repository and show dasct at work"),
}


def _command_name(argv: Sequence[str]) -> str | None:
    for arg in argv:
        if not arg.startswith("-"):
            return arg if arg in COMMANDS else None
    return None


def _parser(
    argv: Sequence[str],
) -> tuple[argparse.ArgumentParser, argparse.ArgumentParser | None, Command | None]:
    """The top-level parser, the chosen command's parser and the command's module."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="dasct", description="Defect And Source Change Tracker"
    )
    parser.add_argument("--version", action="version", version=f"dasct {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = _command_name(argv)
    module: Command | None = None
    command_parser = None
    for name, (modname, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            module = importlib.import_module(modname)
            p.set_defaults(command=name)
            module.add_arguments(p)
            command_parser = p
    return parser, command_parser, module


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `dasct` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if os.environ.get(SKIP_VAR, "") not in ("", "0"):
        print(f"dasct: skipped ({SKIP_VAR} is set)", file=sys.stderr)
        return 0
    if argv in HOOK_ARGV:
        from dasct.commands import check

        return _guarded(
            lambda: check.main(rev=None, spec=None, fmt="text", strict=None),
            fail_open=check.hook_fails_open,
        )
    if argv == REFRESH_HOOK_ARGV:  # every post-checkout/merge/rewrite/commit: no argparse
        from dasct.commands import refresh

        return _guarded(lambda: refresh.main(background=True), fail_open=True)
    if argv[:1] == [TARGET_COMMAND]:  # a controller's request over SSH (dasct.remote)
        from dasct.remote import targetside

        return targetside.main(argv[1:])
    parser, command_parser, module = _parser(argv)
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # argparse would show the top-level usage; the command's is the useful one
        (command_parser or parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    if module is None:
        parser.print_help(sys.stderr)
        return 2
    fails_open = getattr(module, "fails_open", None)
    fail_open = bool(fails_open(args)) if fails_open is not None else False
    from dasct.redact import guarded_streams  # not on the hook path: it returned above

    with guarded_streams():  # no command can print a secret, whatever it forgets
        return _guarded(lambda: module.run(args), fail_open=fail_open)


def entry() -> None:
    """The console script and the hook shim: main, then a fast exit for the hook.

    After the commit-time check everything is written and closed, so the hook skips
    interpreter teardown (~3 ms of freeing the index) with os._exit.
    """
    argv = sys.argv[1:]
    code = main(argv)
    if argv in HOOK_ARGV:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def _guarded(call: Callable[[], int], *, fail_open: bool | Callable[[], bool]) -> int:
    """Run a command under the error policy: one line per failure, never a traceback.

    fail_open may be asked only once the command failed (the hook knows whether its
    configuration is strict only after reading it). After the command's own output, one
    line if a cache file could not be written.
    """
    try:
        return _policy(call, fail_open=fail_open)
    finally:
        unsaved = cache.failed_writes()
        if unsaved is not None:
            try:
                print(unsaved, file=sys.stderr)
            except OSError:
                pass  # stderr is gone too (`2>&1 | head`): nobody is left to tell


def _policy(call: Callable[[], int], *, fail_open: bool | Callable[[], bool]) -> int:
    try:
        code = call()
        sys.stdout.flush()  # a closed pipe shows here, under the policy, not at exit
        return code
    except BaseException as exc:
        opens = fail_open() if callable(fail_open) else fail_open
        return _failed(exc, fail_open=opens)


def _failed(failure: BaseException, *, fail_open: bool) -> int:
    """The exit code and the one line of a command that failed (anything else, such as
    SystemExit, goes on up)."""
    try:
        raise failure  # dispatch on the failure's type with the except clauses below
    except BrokenPipeError:
        # The reader went away (`dasct scan | head`): end quietly, as git does; git dies
        # of SIGPIPE, which a shell reports as 141. Python's final flush of stdout would
        # fail again, so stdout becomes /dev/null. A hook still lets the commit go on.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 0 if fail_open else 141
    except KeyboardInterrupt:
        print("dasct: interrupted", file=sys.stderr)
        return 130
    except DasctError as exc:
        print(f"dasct: {exc}", file=sys.stderr)
        return 0 if fail_open else 1
    except Exception as exc:
        where = _crash_log()
        print(
            f"dasct: internal error: {type(exc).__name__}: {exc}"
            + (f" (details in {where})" if where else "")
            + ("; letting git go on" if fail_open else ""),
            file=sys.stderr,
        )
        return 0 if fail_open else 3


def _crash_log() -> str | None:
    """Write the traceback, redacted, where a bug report can pick it up; never raise."""
    try:
        import traceback

        from dasct import git
        from dasct.redact import redact

        repo = git.discover()
        repo.state_dir.mkdir(parents=True, exist_ok=True)
        path = repo.state_dir / "crash.log"
        with path.open("a", encoding="utf-8") as f:
            f.write(redact(traceback.format_exc()))
        return str(path)
    except Exception:
        return None
