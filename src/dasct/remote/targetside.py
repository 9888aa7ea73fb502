"""The target's half of a remote environment: what `dasct _target` does on the host.

The controller (dasct.remote.runner) connects over SSH and runs the shipped runtime as
`python3 dasct-<digest>.pyz _target --base DIR`, with a request stream on stdin
(dasct.remote.wire). This side stages what it was sent, runs the SAME engine code a local
environment runs (migrate.engine, revert, manual) against the environment as the target
sees it (a local root, database and state directory under DIR), and answers with the
result and a copy of its state directory on stdout. People's lines go to stderr as they
are written, and to DIR/remote.log.

A dropped connection never stops a migration half-way on purpose: SIGHUP is ignored and a
closed stderr only silences the lines, so the run goes on to its end (or, if the host dies
with it, the journal on the host lets the next run recover, exactly as locally). The lease
lock on the host keeps a second run out meanwhile.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import IO, Any

from dasct import durable, redact
from dasct.errors import DasctError
from dasct.remote import wire
from dasct.remote.hosts import RemoteError

# Variables a request may set in this process (never in a command's environment: the
# engine's redact.child_env withholds them): the secrets the engine needs, test hooks.
TEST_PREFIX = "DASCT_TEST_"


class _Lines:
    """stderr, then only the log once the connection is gone."""

    def __init__(self, log: Path) -> None:
        log.parent.mkdir(parents=True, exist_ok=True)
        self.log = log.open("a", encoding="utf-8")
        self.live = True

    def __call__(self, line: str) -> None:
        text = redact.scrub(line)
        self.log.write(text + "\n")
        self.log.flush()
        if not self.live:
            return
        try:
            sys.stderr.write(text + "\n")
            sys.stderr.flush()
        except (BrokenPipeError, OSError):
            self.live = False  # the controller is gone: the run is not


def _stage(base: Path, stdin: IO[bytes]) -> tuple[dict[str, Any], dict[str, bytes]]:
    request: dict[str, Any] | None = None
    gate: dict[str, bytes] = {}
    staging = base / "staging"
    for name, f in wire.read(stdin, prefixes=(wire.STAGING, wire.GATE),
                             singles=(wire.REQUEST, wire.CONFIG)):
        data = f.read()
        if name == wire.REQUEST:
            request = json.loads(data)
        elif name == wire.CONFIG:
            durable.atomic_write(base / ".dasct.toml", data, mode=0o600)
        elif name.startswith(f"{wire.GATE}/"):
            gate[name[len(wire.GATE) + 1:]] = data
        else:
            rel = name[len(wire.STAGING) + 1:]
            if rel.startswith("objects/"):
                wire.write_object(staging, rel, data)
            elif rel.startswith("triggers/") and rel.endswith(".json"):
                path = staging / rel
                if not path.is_file() or path.read_bytes() != data:
                    durable.atomic_write(path, data, mode=0o644)
            else:
                raise RemoteError(f"remote stream: refused member {name!r}")
    if request is None:
        raise RemoteError("remote stream: no request.json")
    return request, gate


def _act(request: dict[str, Any], base: Path, write: _Lines) -> tuple[int, dict[str, Any]]:
    from dasct import config
    from dasct.migrate import engine, manual
    from dasct.migrate import revert as rev
    from dasct.migrate.create import parse_time
    from dasct.migrate.environment import environment

    env = environment(config.load(base), str(request["environment"]), base)
    action, args = request["action"], request.get("args", {})
    if action == "run":
        result = engine.run(env, now=parse_time(args["at"]) if args.get("at") else None,
                            ignore_window=bool(args.get("now")),
                            dry_run=bool(args.get("dry_run")),
                            break_stale_lock=bool(args.get("break_stale_lock")), write=write)
        return result.exit_code, {
            "stats": vars(result.stats), "migrated": result.migrated,
            "rolled_back": result.rolled_back, "held": result.held,
            "recovered": result.recovered, "not_run": result.not_run,
        }
    if action == "revert":
        outcome = rev.revert(env, str(args["id"]), cascade=bool(args.get("cascade")),
                             write=write)
        return outcome.exit_code, {"reverted": outcome.exit_code == 0}
    if action == "resolve":
        manual.resolve(env, note=str(args.get("note", "")), write=write)
        return 0, {}
    if action == "unlock":
        return (0 if manual.unlock(env, force=bool(args.get("force")), write=write) else 1), {}
    if action == "signoff":
        from dasct.migrate import customer

        who, email = args["identity"]
        customer.signoff(env, str(args["id"]), repo_root=base, comment=str(args["comment"]),
                         role=args.get("role"), identity=(str(who), str(email)),
                         developers={str(k): str(v) for k, v in args["developers"].items()},
                         write=write)
        return 0, {}
    if action == "drift":
        from dasct.commands import inventory

        try:
            return inventory.verify(env, write=write), {}
        except inventory.DriftError as exc:
            write(f"dasct: {exc}")
            return 1, {}
    if action == "status":
        return 0, {}
    raise RemoteError(f"remote request: unknown action {action!r}")


def serve(base: Path, stdin: IO[bytes], stdout: IO[bytes]) -> int:
    """Handle one request; the exit code is the action's."""
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    base.mkdir(parents=True, exist_ok=True)
    write = _Lines(base / "remote.log")
    code, doc = 1, dict[str, Any]()
    state_dir = base / "state"
    try:
        request, gate = _stage(base, stdin)
        for name, value in dict(request.get("environ", {})).items():
            os.environ[str(name)] = str(value)
        if gate:
            wire.replace_tree(base / "gates" / str(request["gate"]) / "state", gate)
        code, doc = _act(request, base, write)
    except DasctError as exc:
        write(f"dasct: {exc}")
        doc = {"error": redact.scrub(str(exc))}
    out = wire.Writer(stdout)
    try:
        out.add_json(wire.RESULT, {"exit_code": code, **doc})
        out.add_tree(wire.STATE, wire.state_files(state_dir))
        out.close()
        stdout.flush()
    except (BrokenPipeError, OSError):
        pass  # the controller is gone; the state stays here for the next run to read
    return code


def main(argv: list[str]) -> int:
    """`dasct _target --base DIR`: serve one request from stdin (see module docstring)."""
    if len(argv) != 2 or argv[0] != "--base":
        print("dasct _target: usage: dasct _target --base DIR (run by dasct over SSH)",
              file=sys.stderr)
        return 2
    return serve(Path(argv[1]).expanduser(), sys.stdin.buffer, sys.stdout.buffer)
