"""`dasct audit`: verify audit logs and their signed checkpoints, sign one, make a key."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from dasct import audit, checkpoint, git, note
from dasct import config as config_mod
from dasct.errors import DasctError
from dasct.migrate import archive, inventory
from dasct.migrate.environment import environment, per_host
from dasct.remote.hosts import rollout_dir


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `dasct audit`."""
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    v = sub.add_parser("verify", help="exit 1 when a record was edited, deleted, reordered, "
                       "the log truncated or deleted, or a checkpoint does not verify")
    where = v.add_mutually_exclusive_group()
    where.add_argument("--state-dir", type=Path, metavar="DIR",
                       help="the state directory holding audit.jsonl")
    where.add_argument("--env", metavar="ENV", help="default: every environment that is "
                       "configured or has state on disk")
    c = sub.add_parser("checkpoint", help="sign a checkpoint of the log as it is now (once, "
                       "after configuring a new key)")
    c.add_argument("--env", metavar="ENV", required=True)
    k = sub.add_parser("keygen", help="make an Ed25519 checkpoint key pair")
    k.add_argument("name", help="the key name, e.g. example.com/dasct-audit")
    k.add_argument("--out", type=Path, required=True, metavar="FILE",
                   help="where the signing key is written (mode 0600; never printed)")


def _has_state(state_dir: Path) -> bool:
    return state_dir.is_dir() and any(state_dir.iterdir())


def targets(env: str | None, root: Path | None = None
            ) -> dict[str, tuple[Path, checkpoint.Anchor]]:
    """label -> (state directory, anchor) of the environment(s), from the repository's config.

    Without env: the environments the config names, when it names any; otherwise (the
    built-in model and production) only those that have state on disk. root: the
    repository's (default: the one around the working directory).
    """
    root = git.discover().root if root is None else root
    cfg = config_mod.load(root)
    explicit = cfg.environments != config_mod.Config().environments
    out = {}
    for name in [env] if env else sorted(cfg.environments):
        e = environment(cfg, name, root)
        mark = e.anchor or checkpoint.anchor(cfg.audit, name, root)
        if e.remote is not None and e.home is not None:
            # Each host's log (its mirror, as the last command left it), and the
            # controller's rollout log.
            views = per_host(e)
            for view in views:
                out[view.name if len(views) > 1 else name] = (view.state_dir, mark)
            out[f"{name} (rollouts)"] = (rollout_dir(e.home, name), mark)
        elif env or explicit or _has_state(e.state_dir):
            out[name] = (e.state_dir, mark)
    return out


def _bare(state_dir: Path) -> checkpoint.Anchor:
    """The anchor of a state directory given by path: its environment's, when it has one."""
    try:
        root = git.discover().root
        cfg = config_mod.load(root)
    except DasctError:
        return checkpoint.anchor(config_mod.AuditConfig(), None, Path.cwd())
    for name in cfg.environments:
        e = environment(cfg, name, root)
        if e.state_dir.resolve() == state_dir.resolve() and e.anchor is not None:
            return e.anchor
    return checkpoint.anchor(cfg.audit, None, root)


def _expired(path: Path) -> bool:
    try:
        return bool(json.loads(path.read_text()).get("outcome") == "expired")
    except (OSError, ValueError, AttributeError):
        return False


def unlogged_deployments(state_dir: Path, records: list[dict[str, Any]]) -> str | None:
    """What the state directory shows was deployed that the audit log never mentions."""
    mentioned = {str(r["fields"].get("trigger")) for r in records
                 if isinstance(r.get("fields"), dict)}
    shown: list[str] = []
    # An expiry is logged just after its outcome is written: a crash between is no sign.
    outcomes = sorted(p.stem for p in (state_dir / "outcomes").glob("*.json")
                      if not _expired(p))
    try:
        deployed = sorted(inventory.load(state_dir).get("deployments", {}))
    except (OSError, ValueError, AttributeError):
        deployed = []
    archived = sorted(a.id for a in archive.all_archives(state_dir)) if (
        archive.archives_dir(state_dir).is_dir()) else []
    for what, ids in (("outcomes/", outcomes), (inventory.INVENTORY, deployed),
                      ("archives/", archived)):
        missing = [i for i in ids if i not in mentioned]
        if missing:
            shown.append(f"{what} ({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''})")
    if not shown:
        return None
    return (f"{state_dir}: {'; '.join(shown)} show deployments the audit log does not record: "
            "the log was deleted or truncated")


def check(state_dir: Path, anchor: checkpoint.Anchor) -> tuple[list[str], str, int]:
    """Everything `audit verify` checks of one log: (problems, what its checkpoints prove,
    how many records it holds). Also what `dasct report` shows."""
    problems = audit.verify(state_dir)
    anchored, proves = checkpoint.check(state_dir, anchor)
    records = audit.records(state_dir)
    traces = unlogged_deployments(state_dir, records)
    return problems + anchored + ([traces] if traces else []), proves, len(records)


def verify(*, state_dir: Path | None, env: str | None) -> int:
    """Print every problem of the chosen logs; 1 when there is one."""
    dirs = ({str(state_dir): (state_dir, _bare(state_dir))} if state_dir else targets(env))
    if not dirs:
        print("no environment is configured or has state on disk: no audit log to verify")
    failed = False
    for label, (path, anchor) in dirs.items():
        problems, proves, count = check(path, anchor)
        if problems:
            failed = True
            for problem in problems:
                print(f"{label}: {problem}")
            continue
        print((f"{label}: audit log ok ({count} record(s))" if count else
               f"{label}: no audit log yet") + (f"; {proves}" if proves else ""))
    return 1 if failed else 0


def sign(*, env: str) -> int:
    """Sign a checkpoint of env's log as it is (adopting an existing log for a new key)."""
    ((label, (path, anchor)),) = targets(env).items()
    cp = checkpoint.sign_log(path, anchor, first_ok=True)
    if cp is None:
        raise DasctError(f"${anchor.key_env} is not set: no key to sign a checkpoint with")
    # Recorded in the log itself, so the adoption is part of what the next checkpoint signs.
    audit.AuditLog(path).append("checkpoint-adopted", environment=label, size=cp.size,
                                by=audit.actor())
    cp = checkpoint.sign_log(path, anchor, first_ok=False) or cp
    print(f"{label}: signed a checkpoint of {cp.size} record(s)")
    return 0


def keygen(*, name: str, out: Path) -> int:
    """Write a new Ed25519 signing key to out and print its public half and the config."""
    skey, vkey = note.generate_ed25519(name)
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise DasctError(f"{out}: exists; not overwriting a key") from None
    with os.fdopen(fd, "w") as f:
        f.write(skey + "\n")
    print(f"signing key written to {out}; give it to the runs in the variable "
          "[audit] checkpoint_key_env names (default DASCT_AUDIT_KEY)")
    print("verifier key, for [tool.dasct.audit] (or .dasct.toml [audit]):")
    print(f"checkpoint_public_keys = [{json.dumps(vkey)}]")
    return 0


def run(args: argparse.Namespace) -> int:
    """Dispatch `dasct audit ACTION`."""
    if args.action == "checkpoint":
        return sign(env=args.env)
    if args.action == "keygen":
        return keygen(name=args.name, out=args.out)
    return verify(state_dir=args.state_dir, env=args.env)
