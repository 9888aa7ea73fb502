"""`dasct inventory`: what an environment has deployed (item, enhancement, content hash,
when), two environments compared item by item (`diff`), and drift (`verify`)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import TYPE_CHECKING

from dasct import config, git
from dasct.commands.table import print_table
from dasct.errors import DasctError

if TYPE_CHECKING:
    from dasct.migrate.environment import Environment


class DriftError(DasctError):
    """A deployed item no longer matches the inventory."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`dasct inventory --env ENV`, `inventory diff A B`, `inventory verify --env ENV`."""
    parser.add_argument("--env", dest="list_env", metavar="ENV",
                        help="the environment whose inventory to list")
    parser.add_argument("--format", dest="list_format", choices=("text", "json"),
                        default="text")
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    d = sub.add_parser("diff", help="what environment A has that B has not (yet), item by "
                       "item; exit 1 when they differ")
    d.add_argument("a", metavar="A")
    d.add_argument("b", metavar="B")
    d.add_argument("--format", choices=("text", "json"), default="text")
    v = sub.add_parser("verify", help="drift: deployed files and SQL changes that no longer "
                       "match the inventory; exit 1 naming them")
    v.add_argument("--env", required=True, metavar="ENV")


def run(args: argparse.Namespace) -> int:
    """Dispatch to list, diff or verify."""
    from dasct.migrate.environment import environment

    repo = git.discover()
    cfg = config.load(repo.root)
    if args.action == "diff":
        return diff(environment(cfg, args.a, repo.root), environment(cfg, args.b, repo.root),
                    fmt=args.format)
    if args.action == "verify":
        env = environment(cfg, args.env, repo.root)
        if env.remote is not None:
            # The deployed files are on the hosts: each host checks its own.
            from dasct.remote import fleet

            return fleet.run(cfg, env, "drift", {})
        return verify(env)
    if not args.list_env:
        raise DasctError("inventory: --env ENV is required (or: inventory diff A B, "
                         "inventory verify --env ENV)")
    return show(environment(cfg, args.list_env, repo.root), fmt=args.list_format)


def show(env: Environment, *, fmt: str) -> int:
    """Each deployed item -> enhancement -> content hash -> when; for a fleet, per host
    (each host's mirror, as the last command that reached it left it)."""
    from dasct.migrate import where
    from dasct.migrate.environment import per_host

    views = per_host(env)
    found = [(view.name, where.items(view)) for view in views]
    if fmt == "json":
        doc: dict[str, object] = {"format": "dasct-inventory", "version": 1,
                                  "environment": env.name}
        if len(views) == 1:
            doc["items"] = [i.as_json() for i in found[0][1]]
        else:
            doc["hosts"] = [{"environment": name, "items": [i.as_json() for i in items]}
                            for name, items in found]
        print(json.dumps(doc, indent=2, sort_keys=True))
        return 0
    for name, items in found:
        print(f"{name}: {len(items)} deployed item(s) (dates UTC):")
        print_table(("ITEM", "ENHANCEMENT", "SHA256", "DEPLOYED"),
                     [(i.item, i.enhancement, i.sha256[:12], i.deployed_at or "-")
                      for i in items])
    return 0


def diff(a: Environment, b: Environment, *, fmt: str) -> int:
    """Item by item, what a has that b has not (yet); exit 1 when they differ."""
    from dasct.migrate import where

    left, right = where.items(a), where.items(b)
    found = where.diff(left, right)
    if fmt == "json":
        print(json.dumps({"format": "dasct-inventory-diff", "version": 1, "a": a.name,
                          "b": b.name, "differences": [d.as_json() for d in found]},
                         indent=2, sort_keys=True))
        return 1 if found else 0
    if not found:
        print(f"{a.name} and {b.name} have the same {len(left)} item(s)")
        return 0
    words = {"missing": f"missing in {b.name}", "different": "different hash",
             "extra": f"only in {b.name}"}
    print(f"{len(found)} item(s) differ between {a.name} and {b.name}:")
    print_table(("ITEM", "DIFFERENCE", a.name.upper(), f"{a.name.upper()} SHA256",
                  b.name.upper(), f"{b.name.upper()} SHA256"),
                 [(d.item, words[d.kind], d.a.enhancement if d.a else "-",
                   d.a.sha256[:12] if d.a else "-", d.b.enhancement if d.b else "-",
                   d.b.sha256[:12] if d.b else "-") for d in found])
    return 1


def verify(env: Environment, *, write: Callable[[str], None] = print) -> int:
    """Drift: one line and exit 0 when clean; the items named, DriftError, when not.
    On a remote host (remote/targetside.py) the lines go back to the controller."""
    from dasct.migrate import drift

    result = drift.verify(env)
    if result.note:
        write(f"note: {result.note}")
    unchecked = "; ".join(f"{item} not checked: {why}" for item, why in result.unchecked)
    if not result.drift:
        write(result.line() + (f" ({unchecked})" if unchecked else ""))
        return 0
    for item, problem in result.drift:
        write(f"drift: {item}: {problem}")
    if unchecked:
        write(f"also: {unchecked}")
    names = ", ".join(item for item, _ in result.drift)
    raise DriftError(f"{env.name}: {len(result.drift)} item(s) no longer match the inventory: "
                     f"{names}")
