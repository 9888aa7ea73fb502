"""`dasct migrate trace [ID] --env ENV`: the forensic traces kept around failures.

Without ID, the list of kept traces; with ID, the newest trace that names it (every one
with --all), each checked against the sha256 its `trace-kept` audit record holds before a
line of it is shown. A remote environment's traces are read from each host's mirror, as
the last command that reached the host left it.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from dasct.commands.table import print_table
from dasct.errors import DasctError

if TYPE_CHECKING:
    from dasct.migrate.environment import Environment


def show(env: Environment, tid: str | None, *, fmt: str = "text", every: bool = False) -> int:
    """Print env's kept traces (per host for a fleet); exit 1 when none names tid."""
    from dasct.migrate import trace
    from dasct.migrate.environment import per_host

    views = per_host(env)
    found = 0
    docs: list[dict[str, Any]] = []
    for view in views:
        entries = trace.find(view.state_dir, tid)
        if tid is not None and not every:
            entries = entries[-1:]
        found += len(entries)
        if tid is None:
            docs += [{"environment": view.name, **e} for e in entries]
            if fmt == "text":
                _list(view.name, entries)
            continue
        for entry in entries:
            head, rows = trace.load(view.state_dir, entry)
            if fmt == "json":
                docs.append({"environment": view.name, "path": entry["path"],
                             "sha256": entry["sha256"], "head": head, "records": rows})
            else:
                _print(view.name, entry, head, rows)
    if fmt == "json":
        print(json.dumps({"format": "dasct-traces", "version": 1, "environment": env.name,
                          "traces": docs}, indent=2, sort_keys=True))
    if tid is not None and not found:
        raise DasctError(f"{env.name}: no kept trace names {tid} (a trace is kept when a run "
                         "fails, and pruned like the archives)")
    return 0


def _list(name: str, entries: list[dict[str, Any]]) -> None:

    print(f"{name}: {len(entries)} kept trace(s):")
    print_table(("TRACE", "TRIGGERS", "RECORDS", "FAILURES"),
                 [(str(e["path"]), ", ".join(e.get("triggers", ())), str(e.get("records")),
                   "; ".join(e.get("failures", ())) or ("full-detail run" if e.get("full")
                                                        else "-"))
                  for e in entries])


def _print(name: str, entry: dict[str, Any], head: dict[str, Any],
           rows: list[dict[str, Any]]) -> None:
    bound = ("every record (the run after a failure)" if head.get("full") else
             f"the last {head.get('limit')} records within "
             f"{(head.get('max_age_seconds') or 0) / 60:g} minutes")
    print(f"{name}: trace {entry['path']} (sha256 {str(entry['sha256'])[:12]}, matches the "
          f"audit log): {len(rows)} record(s), {bound}; {head.get('dropped', 0)} earlier "
          "record(s) dropped by the bound")
    for why in head.get("failures", ()):
        print(f"  failed: {why}")
    start = rows[0]["t"] if rows else 0.0
    for row in rows:
        print("  " + _line(row, start))


def _line(row: dict[str, Any], start: float) -> str:
    """One record as a person reads it: time, offset, kind, its fields; a command's output
    tails below it, indented."""
    at = time.strftime("%H:%M:%S", time.gmtime(row["t"])) + f".{int(row['t'] * 1000) % 1000:03d}"
    fields = dict(row["fields"])
    tails = {k: fields.pop(k) for k in ("stdout", "stderr") if fields.get(k)}
    if row["record"] == "output":
        text = f"| {fields.get('line', '')}"
    else:
        event = fields.pop("event", None)
        text = " ".join([*([str(event)] if event else []),
                         *(f"{k}={_short(v)}" for k, v in sorted(fields.items()))])
    out = f"{at} +{row['t'] - start:8.3f}s {row['record']:<7} {text}"
    for k, tail in tails.items():
        out += "".join(f"\n      {k}: {line}" for line in str(tail).splitlines())
    return out


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= 120 else text[:117] + "..."
