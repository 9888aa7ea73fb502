"""Read-only views of the inventory: an environment's items, two environments compared,
and where an enhancement, a defect's fix or an item is deployed.

An item is what inventory.items_of names: `file:PATH` or `sql:NAME`. `where` accepts an
enhancement id, a defect key (the defects a trigger names, from its commit messages) or
an item, with or without its `file:` prefix; the states come from status.state_of.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dasct.errors import DasctError
from dasct.migrate import inventory
from dasct.migrate.environment import Environment
from dasct.migrate.status import Report, iso


class WhereError(DasctError):
    """Nothing of that name is known in any environment."""


@dataclass(frozen=True)
class Item:
    """One deployed item of an environment's inventory."""

    item: str
    enhancement: str
    sha256: str
    deployed_at: str | None

    def as_json(self) -> dict[str, Any]:
        """The documented JSON shape (docs/inventory.md)."""
        return {"item": self.item, "enhancement": self.enhancement, "sha256": self.sha256,
                "deployed_at": self.deployed_at}


def items(env: Environment) -> list[Item]:
    """What env has deployed now, by item name."""
    data = inventory.load(env.state_dir)["items"]
    return [Item(name, e["enhancement"], e["sha256"], iso(e.get("deployed_at")))
            for name, e in sorted(data.items())]


@dataclass(frozen=True)
class Difference:
    """An item two environments do not have alike.

    kind: `missing` (a has it, b not yet), `different` (another content hash) or `extra`
    (b has it, a does not).
    """

    item: str
    kind: str
    a: Item | None
    b: Item | None

    def as_json(self) -> dict[str, Any]:
        """The documented JSON shape (docs/inventory.md)."""
        return {"item": self.item, "kind": self.kind,
                "a": self.a.as_json() if self.a else None,
                "b": self.b.as_json() if self.b else None}


def diff(a: list[Item], b: list[Item]) -> list[Difference]:
    """Item by item, what a has that b has not (yet), or has otherwise."""
    left, right = {i.item: i for i in a}, {i.item: i for i in b}
    found = []
    for name in sorted(left.keys() | right.keys()):
        x, y = left.get(name), right.get(name)
        if y is None:
            found.append(Difference(name, "missing", x, None))
        elif x is None:
            found.append(Difference(name, "extra", None, y))
        elif x.sha256 != y.sha256:
            found.append(Difference(name, "different", x, y))
    return found


@dataclass(frozen=True)
class Location:
    """An enhancement (or an item of it) in one environment, and how it stands there."""

    environment: str
    enhancement: str
    state: str
    date: str | None
    revision: str | None
    item: str | None = None
    sha256: str | None = None
    # Items of the enhancement that a later one changed since: item -> that enhancement.
    replaced: tuple[tuple[str, str], ...] = ()

    def as_json(self) -> dict[str, Any]:
        """The documented JSON shape (docs/inventory.md)."""
        return {"environment": self.environment, "enhancement": self.enhancement,
                "state": self.state, "date": self.date, "revision": self.revision,
                "item": self.item, "sha256": self.sha256, "replaced": dict(self.replaced)}


@dataclass(frozen=True)
class Found:
    """What a query named, and where each of those things is."""

    query: str
    enhancement: bool  # the query is an enhancement id
    defect: tuple[str, ...]  # the enhancements whose trigger names the query as a defect
    item: str | None  # the item the query names, when it names one
    locations: tuple[Location, ...]

    def as_json(self) -> dict[str, Any]:
        """The documented JSON shape (docs/inventory.md)."""
        return {"format": "dasct-where", "version": 1, "query": self.query,
                "matches": {"enhancement": self.enhancement, "defect": list(self.defect),
                            "item": self.item},
                "locations": [loc.as_json() for loc in self.locations]}


def _item_names(query: str, path: str | None) -> tuple[str, ...]:
    if query.startswith(("file:", "sql:")):
        return (query,)
    files = dict.fromkeys(f"file:{p}" for p in (query, path) if p)
    return (*files, f"sql:{query}")


def _replaced(data: dict[str, Any] | None, tid: str) -> tuple[tuple[str, str], ...]:
    if data is None or tid not in data["deployments"]:
        return ()
    now = data["items"]
    return tuple((item, now[item]["enhancement"]) for item in data["deployments"][tid]["items"]
                 if item in now and now[item]["enhancement"] != tid)


def where(report: Report, envs: list[Environment], query: str, *, path: str | None = None
          ) -> Found:
    """Where query (an enhancement id, a defect key or an item) is, in every environment;
    path: the query as a repository path when it was typed in a subdirectory."""
    known = {e.id: e for e in report.enhancements}
    is_id = query in known
    by_defect = tuple(e.id for e in report.enhancements
                      if any(d.upper() == query.upper() for d in e.defects))
    tids = ([query] if is_id else []) + [t for t in by_defect if t != query]
    stock = {env.name: inventory.load(env.state_dir) for env in envs}
    locations = [
        Location(env, tid, s.state, s.date, known[tid].revision,
                 replaced=_replaced(stock.get(env), tid) if s.state == "migrated" else ())
        for tid in tids for env in report.environments
        for s in [report.state(tid, env)]
    ]
    item = None
    for env in envs:
        data = stock[env.name]
        for name in _item_names(query, path):
            entry = data["items"].get(name)
            ever = any(name in dep["items"] for dep in data["deployments"].values())
            if entry is None and not ever:
                continue
            item = name
            if entry is None:  # deployed once, removed or reverted since
                locations.append(Location(env.name, "-", "absent", None, None, name))
                continue
            tid = entry["enhancement"]
            enh = known.get(tid)
            locations.append(Location(env.name, tid, report.state(tid, env.name).state
                                      if enh else "migrated", iso(entry.get("deployed_at")),
                                      enh.revision if enh else None, name, entry["sha256"]))
    if not locations:
        raise WhereError(f"{query!r} is no enhancement, defect or item known in "
                         f"{', '.join(report.environments) or 'any environment'}")
    return Found(query, is_id, by_defect, item, tuple(locations))

