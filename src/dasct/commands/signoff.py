"""`dasct signoff ID --env ENV [--as ROLE]`: record a sign-off (or a rejection) of a
migrated enhancement.

In a gate environment (model) it is QA's: when the `[promotion] approvals` are met, the
trigger of every environment it gates (production) is written from the one it migrated
(dasct.migrate.promotion). In an environment that gates none (production), with a
`customer` role configured, it is the customer's: it closes the integration and starts
the warranty (dasct.migrate.customer). `--as` names the role; [promotion.roles] says who
may sign as what (docs/promotion.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from dasct import config, git

if TYPE_CHECKING:
    from dasct.migrate.environment import Environment


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `dasct signoff`."""
    parser.add_argument("id", metavar="ID", help="the enhancement's trigger id")
    parser.add_argument("--env", required=True, metavar="ENV",
                        help="the environment it was migrated into and tested in (model)")
    parser.add_argument("--as", dest="role", default=None, metavar="ROLE",
                        help="sign as qa (in a gate environment) or customer (in the "
                        "environment promoted into); checked against [promotion.roles]")
    parser.add_argument("--comment", default="", metavar="TEXT",
                        help="what was tested, for the audit log")
    parser.add_argument("--reject", action="store_true",
                        help="return it to its developers instead (needs --reason); blocks "
                        "its promotion")
    parser.add_argument("--reason", default="", metavar="TEXT", help="why it is rejected")


def run(args: argparse.Namespace) -> int:
    """Sign off or reject; exit 0 when recorded (a refusal is one line, exit 1)."""
    return signoff(tid=args.id, env=args.env, comment=args.comment, reject=args.reject,
                   reason=args.reason, role=args.role)


def signoff(*, tid: str, env: str, comment: str, reject: bool, reason: str,
            role: str | None = None) -> int:
    """Record the caller's sign-off (or rejection) of tid in env, as role."""
    from dasct.errors import DasctError
    from dasct.migrate import customer, promotion, roles
    from dasct.migrate.environment import environment

    repo = git.discover()
    cfg = config.load(repo.root)
    gate = environment(cfg, env, repo.root)
    if gate.remote is not None:
        return _remote(cfg, gate, tid=tid, comment=comment, reject=reject, role=role,
                       repo_root=repo.root)
    if reject:
        promotion.reject(gate, tid, reason=reason, repo_root=repo.root, role=role)
        return 0
    if reason:
        raise DasctError("--reason goes with --reject; a sign-off takes --comment")
    if not gate.gates and (role is not None or roles.awaits_customer(gate)):
        customer.signoff(gate, tid, repo_root=repo.root, comment=comment, role=role)
        return 0
    into = [environment(cfg, name, repo.root) for name in config.gated_by(cfg, env)]
    promotion.signoff(gate, tid, into=into, repo_root=repo.root, comment=comment,
                      expiry_hours=cfg.migrate.expiry_hours, role=role)
    return 0


def _remote(cfg: config.Config, env: Environment, *, tid: str, comment: str, reject: bool,
            role: str | None, repo_root: Path) -> int:
    """The customer's sign-off in a remote environment: recorded on every host."""
    from dasct.errors import DasctError
    from dasct.migrate import inventory, promotion
    from dasct.remote import fleet

    if reject or env.gates:
        raise DasctError(f"{env.name} is a remote environment: only the customer's sign-off "
                         "is recorded there (sign-offs and rejections in a remote gate "
                         "environment are not supported yet)")
    who, email = promotion.identity(repo_root)
    dep = inventory.load(env.state_dir)["deployments"].get(tid) or {}
    developers = promotion.authors(repo_root, tid, dep.get("commits", []))
    return fleet.run(cfg, env, "signoff", {"id": tid, "comment": comment, "role": role,
                                           "identity": [who, email],
                                           "developers": developers})
