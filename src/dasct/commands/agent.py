"""`dasct agent`: the target side of pull-mode updates (docs/agent.md).

`used` and `run` are on the application's own path: they count a use, and at the moments
`[agent] when` allows they start the background check and tell of a waiting release. They
import nothing of TUF unless a check is due, and never break the application: an agent
failure is one line on stderr (`used` still exits 0, `run` still runs its command).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dasct.agent import AgentError, moments
from dasct.agent import state as st
from dasct.agent.local import Local, home_of, locate

if TYPE_CHECKING:
    from collections.abc import Sequence


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The nested subcommands."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--home", metavar="DIR", help="the agent's home (its .dasct.toml); "
                        "default $DASCT_AGENT_HOME, else the current directory")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    def add(name: str, text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=text, description=text, parents=[common])

    p = add("used", "count one use of APP (its launcher calls this); exit 0 whatever happens")
    p.add_argument("app", metavar="APP")
    p = add("run", "count a use of APP, run CMD (no shell) and pass its exit code through")
    p.add_argument("app", metavar="APP")
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD ...")
    p = add("check", "if a check is due (or --now), look for a newer release and download "
            "it in the background at low priority")
    p.add_argument("--now", action="store_true", help="check whatever the schedule says")
    p.add_argument("--foreground", action="store_true",
                   help="check and download here and now, and wait for it")
    p = add("status", "installed version, uses, next check, the waiting release, uninstall "
            "windows")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p = add("install", "install the waiting release through the engine (a passphrase or "
            "a signed policy is required)")
    period = p.add_mutually_exclusive_group()
    period.add_argument("--keep-for", metavar="PERIOD",
                        help="keep the ability to uninstall for PERIOD (90m, 12h, 3d)")
    period.add_argument("--no-uninstall", action="store_true",
                        help="keep no uninstall version (its archives are deleted)")
    p.add_argument("--passphrase-fd", type=int, metavar="N",
                   help="read the passphrase from file descriptor N (scripts, tests)")
    p = add("passphrase", "set the install passphrase (asked twice)")
    p.add_argument("--passphrase-fd", type=int, metavar="N",
                   help="read it (twice, one per line) from file descriptor N")
    p = add("review", "for each uninstall period that ended: uninstall, keep for a new "
            "period, or keep for good")
    p.add_argument("--version", type=int, help="this release's window, ended or not")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--uninstall", action="store_true",
                      help="take it back to the previous version (the engine's revert)")
    what.add_argument("--keep-for", metavar="PERIOD", help="keep it; ask again after PERIOD")
    what.add_argument("--keep-forever", action="store_true",
                      help="keep it for good; its uninstall version is deleted")
    p = add("keep", "change the uninstall window of VERSION")
    p.add_argument("version", type=int, metavar="VERSION")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--for", dest="keep_for", metavar="PERIOD")
    how.add_argument("--forever", action="store_true")
    p = add("history", "every install, failed install, refusal, uninstall and keep decision")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p = add("trace", "the forensic traces kept around refused and failed installs")
    p.add_argument("id", nargs="?", metavar="ID")
    p.add_argument("--format", choices=("text", "json"), default="text")
    sub.add_parser("_download", parents=[common])  # the background child (download.start)


def fails_open(args: argparse.Namespace) -> bool:
    """`used` never fails its application."""
    return bool(args.action == "used")


def _say(line: str) -> None:
    print(line, file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    """Dispatch to the chosen action."""
    home = home_of(args.home)
    if args.action == "used":
        _guard(lambda: moments.use(home, args.app, _say))
        return 0
    if args.action == "run":
        return _run(home, args.app, args.cmd)
    local = locate(home)
    actions: dict[str, Any] = {
        "check": lambda: _check(local, now=args.now, foreground=args.foreground),
        "status": lambda: _status(local, fmt=args.format),
        "install": lambda: _install(local, keep_for=args.keep_for,
                                    no_uninstall=args.no_uninstall, fd=args.passphrase_fd),
        "passphrase": lambda: _passphrase(local, fd=args.passphrase_fd),
        "review": lambda: _review(local, version=args.version, uninstall=args.uninstall,
                                  keep_for=args.keep_for, forever=args.keep_forever),
        "keep": lambda: _keep(local, args.version, keep_for=args.keep_for,
                              forever=args.forever),
        "history": lambda: _history(local, fmt=args.format),
        "trace": lambda: _trace(local, args.id, fmt=args.format),
        "_download": lambda: _child(local),
    }
    code: int = actions[args.action]()
    return code


# --------------------------------------------------------------------------- the app's path


def _guard(call: Any) -> None:
    try:
        call()
    except Exception as exc:  # the agent's failure is never the application's
        _say(f"dasct agent: {exc} (the application is not affected)")


def _run(home: Path, app: str, cmd: Sequence[str]) -> int:
    import subprocess

    argv = list(cmd[1:] if cmd[:1] == ["--"] else cmd)
    if not argv:
        raise AgentError("dasct agent run APP -- CMD ...: no command given")
    found: list[Local] = []
    _guard(lambda: found.append(moments.use(home, app, _say)))
    try:
        code = subprocess.call(argv)
    except OSError as exc:
        _say(f"dasct agent: cannot run {argv[0]}: {exc.strerror}")
        return 127
    except KeyboardInterrupt:
        code = 130
    if found:
        _guard(lambda: moments.moment(found[0], "shutdown", _say))
    return 128 - code if code < 0 else code


# --------------------------------------------------------------------------- the person's


def _check(local: Local, *, now: bool, foreground: bool) -> int:
    from dasct.agent import download, schedule

    s = local.load()
    why = "asked for (--now)" if now else schedule.due(s, local.cfg, time.time())
    if why is None:
        print(f"no check due: next {schedule.next_check(s, local.cfg, time.time())}")
    elif foreground:
        print(download.fetch(local))
        s = local.load()
        if schedule.notice_now(s, local.cfg, None, moments.now()):
            moments.tell(local, _say)
    elif download.start(local):
        print(f"checking in the background at low priority ({why}); "
              f"`dasct agent status --home {local.home}` shows the result")
    else:
        print("a check is already running")
    moments.remind(local, local.load(), _say)
    return 0


def _status_doc(local: Local) -> dict[str, Any]:
    from dasct.agent import download, notice, schedule

    s, at = local.load(), time.time()
    return {
        "format": "dasct-agent-status", "version": 1, "environment": local.env.name,
        "home": str(local.home), "installed": s.installed,
        "uses_since_last_check": s.uses, "last_check": _iso(s.last_check),
        "last_result": s.last_result, "next_check": schedule.next_check(s, local.cfg, at),
        "checking": download.running(st.agent_dir(local.state_dir)),
        "waiting": None if s.waiting is None else {
            **s.waiting.release, "downloaded_at": _iso(s.waiting.downloaded_at),
            "details": notice.details(local, s.waiting)},
        "uninstall_windows": [{"version": w.version, "previous": w.previous,
                               "triggers": list(w.triggers), "ends": _iso(w.ends),
                               "ended": w.ends <= at} for w in s.windows],
        "declined": list(s.declined),
    }


def _status(local: Local, *, fmt: str) -> int:
    doc = _status_doc(local)
    if fmt == "json":
        print(json.dumps(doc, indent=2, sort_keys=True))
        return 0
    print(f"{doc['environment']}: version {doc['installed'] or 'none'} installed "
          f"(agent home {doc['home']})")
    print(f"  uses since the last check: {doc['uses_since_last_check']}")
    print(f"  last check: {doc['last_check'] or 'never'}"
          + (f": {doc['last_result']}" if doc["last_result"] else ""))
    print(f"  next check: {doc['next_check']}"
          + (" (a check is running now)" if doc["checking"] else ""))
    waiting = doc["waiting"]
    if waiting is None:
        print("  waiting: no downloaded release")
    else:
        for line in waiting["details"]:
            print(f"  waiting: {line}")
    for w in doc["uninstall_windows"]:
        print(f"  uninstall window: version {w['version']} (back to {w['previous']}) "
              f"{'ended' if w['ended'] else 'ends'} {w['ends']}")
    if not doc["uninstall_windows"]:
        print("  uninstall windows: none")
    return 0


def _read_secret(fd: int | None, prompt: str, count: int = 1) -> list[str] | None:
    import getpass

    from dasct.agent import consent

    if fd is not None:
        return consent.read_fd(fd)[:count]
    if not sys.stdin.isatty():
        return None
    return [getpass.getpass(prompt if i == 0 else "again: ") for i in range(count)]


def _install(local: Local, *, keep_for: str | None, no_uninstall: bool,
             fd: int | None) -> int:
    from dasct.agent import consent, install, notice

    s = local.load()
    if s.waiting is None:
        raise AgentError("nothing to install: no downloaded release is waiting "
                         f"(`dasct agent check --home {local.home}`)")
    for line in notice.details(local, s.waiting)[:1]:
        print(line)
    chosen, period = True, None
    if keep_for:
        period = consent.parse_period(keep_for)
    elif not no_uninstall:
        if local.cfg.install == "policy":
            chosen = False  # the signed policy's keep_for
        elif sys.stdin.isatty():
            answer = input("keep the ability to uninstall it? for how long (90m, 12h, 3d), "
                           "or no: ").strip()
            period = None if answer.lower() in ("no", "n") else consent.parse_period(answer)
        else:
            raise AgentError("choose an uninstall period: --keep-for 90m|12h|3d or "
                             "--no-uninstall (stdin is not a terminal to ask)")
    act = install.Act()
    if local.cfg.install == "passphrase":
        got = _read_secret(fd, "install passphrase: ")
        act = install.Act(passphrase=got[0] if got else None)
    install.install(local, act=act, keep_for=period, chosen=chosen)
    return 0


def _passphrase(local: Local, *, fd: int | None) -> int:
    from dasct.agent import consent

    got = _read_secret(fd, "new install passphrase: ", count=2)
    if not got:
        raise AgentError("no terminal to ask the passphrase on (use --passphrase-fd N)")
    if len(got) < 2 or got[0] != got[1]:
        raise AgentError("the two passphrases differ: nothing changed")
    consent.set_passphrase(local.state_dir, got[0])
    print(f"install passphrase set for {local.env.name} (only its scrypt hash is kept)")
    return 0


def _review(local: Local, *, version: int | None, uninstall: bool, keep_for: str | None,
            forever: bool) -> int:
    from dasct.agent import review

    s = local.load()
    windows = [review.window(s, version)] if version else review.ended(s, time.time())
    if not windows:
        ends = ", ".join(f"version {w.version} at {_iso(w.ends)}" for w in s.windows)
        print("no uninstall period has ended" + (f" (ending: {ends})" if ends else ""))
        return 0
    undecided = 0
    for w in windows:
        choice = ("uninstall" if uninstall else "forever" if forever else
                  keep_for if keep_for else None)
        if choice is None and sys.stdin.isatty():
            choice = input(f"version {w.version}: uninstall it (u), keep it for a period "
                           "(e.g. 3d), or keep it for good (f)? ").strip()
            choice = {"u": "uninstall", "f": "forever"}.get(choice.lower(), choice)
        if not choice:
            undecided += 1
            print(f"version {w.version}: its uninstall period ended {_iso(w.ends)}; decide "
                  "with --uninstall, --keep-for PERIOD or --keep-forever")
        else:
            _decide(local, w.version, choice)
    return 1 if undecided else 0


def _decide(local: Local, version: int, choice: str) -> None:
    from dasct.agent import consent, review

    if choice == "uninstall":
        review.uninstall(local, version)
    elif choice == "forever":
        review.keep_forever(local, version)
    else:
        review.keep(local, version, consent.parse_period(choice))


def _keep(local: Local, version: int, *, keep_for: str | None, forever: bool) -> int:
    _decide(local, version, "forever" if forever else str(keep_for))
    return 0


def _history(local: Local, *, fmt: str) -> int:
    from dasct.agent import history
    from dasct.commands.table import print_table

    entries = history.entries(local.state_dir)
    if fmt == "json":
        print(json.dumps({"format": "dasct-agent-history", "version": 1,
                          "environment": local.env.name, "entries": entries},
                         indent=2, sort_keys=True))
        return 0
    print(f"{local.env.name}: {len(entries)} agent event(s):")
    skip = {"event", "version", "time", "at"}
    print_table(("TIME", "EVENT", "VERSION", "DETAIL"), [
        (str(e.get("time")), str(e.get("event")), str(e.get("version")),
         "; ".join(f"{k} {_short(v)}" for k, v in sorted(e.items()) if k not in skip))
        for e in entries])
    return 0


def _short(value: Any) -> str:
    text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _trace(local: Local, tid: str | None, *, fmt: str) -> int:
    from dasct.commands import trace

    return trace.show(local.env, tid, fmt=fmt)


def _child(local: Local) -> int:
    from dasct.agent import download

    done = download.lower_priority(local.cfg.nice)
    print(f"{_iso(time.time())} check started ({', '.join(done) or 'priority unchanged'})",
          flush=True)
    try:
        print(f"{_iso(time.time())} {download.fetch(local)}")
    except AgentError as exc:
        print(f"{_iso(time.time())} {exc}")
        return 1
    return 0


def _iso(epoch: float | None) -> str | None:
    return None if epoch is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
