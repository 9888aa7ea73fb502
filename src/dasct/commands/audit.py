"""`dasct audit verify`: check the tamper-evident audit log of an environment."""

from __future__ import annotations

import argparse
from pathlib import Path

from dasct import audit, git
from dasct import config as config_mod
from dasct.migrate.environment import environment


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `dasct audit`."""
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    v = sub.add_parser("verify", help="exit 1 when a record was edited, deleted, reordered "
                       "or the log truncated")
    where = v.add_mutually_exclusive_group()
    where.add_argument("--state-dir", type=Path, metavar="DIR",
                       help="the state directory holding audit.jsonl")
    where.add_argument("--env", metavar="ENV", help="default: every configured environment")


def state_dirs(env: str | None) -> dict[str, Path]:
    """label -> state directory of the environment(s), from the repository's config."""
    root = git.discover().root
    cfg = config_mod.load(root)
    names = [env] if env else sorted(cfg.environments)
    return {name: environment(cfg, name, root).state_dir for name in names}


def verify(*, state_dir: Path | None, env: str | None) -> int:
    """Print every problem of the chosen logs; 1 when there is one."""
    dirs = {str(state_dir): state_dir} if state_dir else state_dirs(env)
    failed = False
    for label, path in dirs.items():
        problems = audit.verify(path)
        if problems:
            failed = True
            for problem in problems:
                print(f"{label}: {problem}")
            continue
        count = len(audit.records(path))
        print(f"{label}: audit log ok ({count} record(s))" if count else
              f"{label}: no audit log yet")
    return 1 if failed else 0


def run(args: argparse.Namespace) -> int:
    """Dispatch `dasct audit ACTION`."""
    return verify(state_dir=args.state_dir, env=args.env)
