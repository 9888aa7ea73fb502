"""`dasct trigger create|show|verify|withdraw`: build, inspect and withdraw trigger files.

`create` runs in CI, in the repository; `show` and `verify` also run on a target machine
without any repository, where the default configuration applies. `withdraw` takes a
pending trigger out of an environment's staging without running it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from dasct import config as config_mod
from dasct import git
from dasct.config import Config
from dasct.errors import DasctError, GitError
from dasct.migrate import trigger as trig
from dasct.migrate import trigger_check as trigc
from dasct.migrate import trigger_read as trigr
from dasct.migrate import trigger_write as trigw
from dasct.migrate.create import baseline as baseline_trigger
from dasct.migrate.create import create as create_trigger
from dasct.migrate.create import parse_time
from dasct.migrate.environment import (
    ensure_ignored,
    environment,
    previous_keys,
    signing_key,
    state_paths,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `dasct trigger`."""
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    c = sub.add_parser("create", help="write the trigger of a merged range for an environment")
    what = c.add_mutually_exclusive_group(required=True)
    what.add_argument("--range", dest="rev_range", metavar="A..B",
                      help="the merged enhancement: what the target lacks (A) to what it "
                      "gets (B)")
    what.add_argument("--baseline", metavar="REV",
                      help="first deployment: everything at REV (every file added, every SQL "
                      "change deployed), for a target that has none of its files")
    c.add_argument("--env", required=True, metavar="ENV", help="the environment, e.g. model")
    c.add_argument("--id", metavar="ID", help="default: derived from the range (A10-B10), "
                   "or baseline-REV10")
    c.add_argument("--at", metavar="TIME", help="not before this ISO 8601 time (UTC if no "
                   "offset); default now")
    c.add_argument("--staging", metavar="DIR", type=Path,
                   help="default: environments.ENV.staging, else .dasct/staging")
    c.add_argument("--depends-on", action="append", default=[], metavar="ID",
                   help="an enhancement that must be deployed first (repeatable)")
    c.add_argument("--conflicts-with", action="append", default=[], metavar="ID",
                   help="an enhancement that must not be deployed alongside (repeatable)")
    s = sub.add_parser("show", help="print a trigger file")
    s.add_argument("file", type=Path, metavar="FILE")
    s.add_argument("--format", choices=("text", "json"), default="text")
    v = sub.add_parser("verify", help="check a trigger, its payloads and (if present) its target")
    v.add_argument("file", type=Path, metavar="FILE")
    v.add_argument("--env", required=True, metavar="ENV")
    v.add_argument("--staging", metavar="DIR", type=Path,
                   help="where its payloads are; default: the staging area the file is in")
    v.add_argument("--root", metavar="DIR", type=Path,
                   help="the target root to check pre-images against; default: the "
                   "environment's root when it exists")
    w = sub.add_parser("withdraw", help="take a pending trigger out of staging without "
                       "running it (audited, notified)")
    w.add_argument("id", metavar="ID")
    w.add_argument("--env", required=True, metavar="ENV")
    w.add_argument("--reason", default="", metavar="TEXT",
                   help="why, for the audit log and the notification")


def _config_and_root() -> tuple[Config, Path]:
    # show and verify run on target machines that may have no repository at all; there
    # the configured (default) paths are relative to the working directory.
    try:
        root = git.discover().root
    except GitError:
        return Config(), Path()
    return config_mod.load(root), root


def create(
    *,
    rev_range: str | None,
    baseline: str | None,
    env: str,
    tid: str | None,
    at: str | None,
    staging: Path | None,
    depends_on: Sequence[str],
    conflicts_with: Sequence[str],
) -> int:
    """Write the trigger of rev_range (or the baseline at REV) for env; print where it is."""
    repo = git.discover()
    cfg = config_mod.load(repo.root)
    where = environment(cfg, env, repo.root)
    key = where.key
    if where.gate is not None:
        raise DasctError(
            f"{env} is gated by {where.gate.name}: its triggers are written by `dasct signoff "
            f"ID --env {where.gate.name}` from the one {where.gate.name} migrated, never "
            "built from git (docs/promotion.md)")
    if where.require_signature and key is None:
        raise DasctError(
            f"signatures are required but ${cfg.migrate.signing_key_env} is not set"
        )
    when = parse_time(at) if at else None
    into = staging or where.staging
    own = state_paths(cfg, repo.root, into)
    ensure_ignored(where, into)
    if baseline is not None:
        made = baseline_trigger(
            repo_root=repo.root, rev=baseline, environment=env, staging=into,
            migrate=cfg.migrate, tid=tid, at=when, depends_on=depends_on,
            conflicts_with=conflicts_with, key=key, state_paths=own,
        )
    else:
        assert rev_range is not None  # argparse requires --range or --baseline
        made = create_trigger(
            repo_root=repo.root, rev_range=rev_range, environment=env, staging=into,
            migrate=cfg.migrate, defect_patterns=cfg.defects.compiled(), tid=tid, at=when,
            depends_on=depends_on, conflicts_with=conflicts_with, key=key, state_paths=own,
        )
    print(made.path)
    print(summary(made), file=sys.stderr)
    return 0


def summary(t: trig.Trigger) -> str:
    """One line: what the trigger does."""
    return (
        f"trigger {t.id} for {t.environment}: {len(t.sql)} SQL change(s), "
        f"{len(t.files)} file change(s), {len(t.commands)} command(s); "
        f"not before {trig.format_time(t.not_before)}, expires {trig.format_time(t.expires)}"
    )


def signature_status(t: trig.Trigger, cfg: Config) -> str:
    """What was checked of t's signature, in words (see trigger_read.load's signed_by)."""
    current = cfg.migrate.signing_key_env
    previous = [name for name, _ in previous_keys(cfg)]
    if t.signature is None:
        if cfg.migrate.require_signature:
            return "none (unsigned; signatures are required, so a run refuses it)"
        if signing_key(cfg) is not None or previous:
            which = current if signing_key(cfg) is not None else previous[0]
            return (f"none (unsigned; ${which} is set, but migrate.require_signature is "
                    "false, so it is accepted)")
        return "none (unsigned)"
    if t.signed_by is None:
        return f"NOT CHECKED (no key set: ${current} is empty)"
    if t.signed_by == 0:
        return f"valid (current key ${current})"
    return f"valid (previous key ${previous[t.signed_by - 1]})"


def describe(t: trig.Trigger, cfg: Config) -> str:
    """The trigger for people: header, then the steps in the order they run."""
    lines = [
        f"trigger   {t.id}  (format v{t.version})",
        f"system    {t.system}",
        f"env       {t.environment}",
        f"schedule  not before {trig.format_time(t.not_before)}, "
        f"expires {trig.format_time(t.expires)}",
        f"defects   {', '.join(t.defects) or '-'}",
        f"commits   {', '.join(c[:12] for c in t.commits)}",
        f"depends   {', '.join(t.depends_on) or '-'}",
        f"conflicts {', '.join(t.conflicts_with) or '-'}",
        f"digest    {t.digest}",
        f"signature {signature_status(t, cfg)}",
        "steps:",
    ]
    for c in t.sql:
        verify = f", verify {c.verify[:12]}" if c.verify else ""
        lines.append(f"  sql      {c.name}  (deploy {c.deploy[:12]}, revert {c.revert[:12]}"
                     f"{verify})")
    for f in t.files:
        lines.append(f"  {f.op:<8} {f.label}  ({f.mode:o})")
    for cmd in t.commands:
        lines.append(f"  {cmd.kind:<8} {cmd.name}: {' '.join(cmd.argv)}  "
                     f"(timeout {cmd.timeout:g}s)")
    if not (t.sql or t.files or t.commands):
        lines.append("  (none)")
    return "\n".join(lines)


def show(*, file: Path, fmt: str) -> int:
    """Print a trigger file after verifying its digest (and signature when a key is set)."""
    cfg, _ = _config_and_root()
    doc = trigr.read_document(file)
    env = doc.get("environment")
    # Showing is inspection: any environment name is fine, integrity is still checked.
    loaded = trigr.load(file, environments=[env] if isinstance(env, str) else [],
                       key=signing_key(cfg), require_signature=False,
                       previous_keys=[key for _, key in previous_keys(cfg)])
    if fmt == "json":
        print(json.dumps(trigw.as_document(loaded), sort_keys=True, indent=2, ensure_ascii=False))
    else:
        print(describe(loaded, cfg))
    return 0


def verify(*, file: Path, env: str, staging: Path | None, root: Path | None) -> int:
    """Everything the engine checks before touching env, without touching it."""
    cfg, repo_root = _config_and_root()
    where = environment(cfg, env, repo_root)
    loaded = trigr.load(file, environments=[env], key=where.key,
                       previous_keys=where.previous_keys,
                       require_signature=where.require_signature)
    trigc.check_payloads(loaded, staging)
    target = root or where.root
    checked = f"not checked ({target} does not exist; --root DIR checks one)"
    if root is not None or target.is_dir():
        trigc.check_target(loaded, target)
        checked = f"{target} ready"
    print(f"{file}: ok ({summary(loaded)})\n  signature: {signature_status(loaded, cfg)}\n"
          f"  payloads: present and intact\n  target: {checked}")
    return 0


def withdraw(*, tid: str, env: str, reason: str) -> int:
    """Withdraw pending trigger tid from env; print where its file went."""
    from dasct.migrate import manual

    repo = git.discover()
    where = environment(config_mod.load(repo.root), env, repo.root)
    moved = manual.withdraw(where, tid, reason=reason or "withdrawn on request")
    print(f"withdrew {tid} from {env}: {moved}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Dispatch `dasct trigger ACTION`."""
    if args.action == "create":
        return create(
            rev_range=args.rev_range, baseline=args.baseline, env=args.env, tid=args.id,
            at=args.at,
            staging=args.staging, depends_on=args.depends_on,
            conflicts_with=args.conflicts_with,
        )
    if args.action == "show":
        return show(file=args.file, fmt=args.format)
    if args.action == "withdraw":
        return withdraw(tid=args.id, env=args.env, reason=args.reason)
    return verify(file=args.file, env=args.env, staging=args.staging, root=args.root)
