"""The report's figures, collected from the repository and its configuration.

A plain JSON-ready dict, no HTML: the page embeds it as it is (page.py), and a test or a
script may read it with `collect`. Each section reads the one module that owns its facts:
protected lines from kinds.protected_at_head (what `scan` and `stats` read), revalidations
from the QA ledger (qa.requests, qa.decisions), migrations from each environment's
outcomes and inventory (migrate/inventory.py), audit results from the same check `dasct
audit verify` runs. Times are UTC, ISO 8601; series are grouped by UTC day.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

from dasct import config, git, kinds, qa, redact, settings
from dasct.commands import audit as audit_cmd
from dasct.migrate import inventory, journal, session
from dasct.migrate.environment import Environment, environment
from dasct.report import TOP_FILES

# What the engine records per trigger (inventory.set_outcome) and how the report counts it.
ATTEMPTS = ("migrated", "rolled-back", "escalated")


def iso(when: float) -> str:
    """A POSIX time as the report writes it: UTC, to the second."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))


def _day(when: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(when))


def collect(repo: git.Repo, *, top: int = TOP_FILES, now: float | None = None
            ) -> dict[str, Any]:
    """Every figure of the page, for repo as configured."""
    now = time.time() if now is None else now
    cfg = config.load(repo.root)
    targets = audit_cmd.targets(None, repo.root)
    envs = [environment(cfg, name, repo.root) for name in targets]
    problems: list[str] = []
    deployed: list[dict[str, Any]] = []
    for env in envs:
        try:
            deployed += warranty(env, now=now)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            # A damaged inventory costs its section one line, not the whole report.
            problems.append(f"{env.state_dir / inventory.INVENTORY}: unreadable "
                            f"({type(exc).__name__}: {exc}); its warranty is not shown")
    # The page is a sink like any other: every string through the one redaction.
    figures: dict[str, Any] = _shown(redact.scrub({
        "generated_at": iso(now),
        "repository": repo.root.name,
        "head": repo.head or "",
        "defects": defects(repo, settings.load(repo), top=top),
        "revalidations": revalidations(qa.ledger_of(repo, cfg)),
        "environments": [
            {"name": env.name, "migrations": migrations(env.state_dir),
             "state": state(env.state_dir),
             "audit": audit_check(env.state_dir, targets[env.name][1], now=now)}
            for env in envs
        ],
        "warranty": deployed,
        "problems": problems,
    }))
    return figures


def _shown(value: Any) -> Any:
    """value with every string valid Unicode: a file name that is not UTF-8 (read as
    surrogate escapes) shows its bytes as \\xNN, as Python writes them."""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    if isinstance(value, dict):
        return {_shown(k): _shown(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shown(v) for v in value]
    return value


def defects(repo: git.Repo, cfg: settings.Settings, *, top: int) -> dict[str, Any]:
    """Protected lines at HEAD per file (by kind, with the defects they protect), the
    files with the most first, top of them listed."""
    lines = kinds.protected_at_head(repo, cfg) if repo.head else []
    by_file: dict[str, Counter[str]] = {}
    named: dict[str, set[str]] = {}
    all_defects: set[str] = set()
    for x, kind in lines:
        by_file.setdefault(x.path, Counter())[kind] += 1
        named.setdefault(x.path, set()).update(x.defects)
        all_defects.update(x.defects)
    ranked = sorted(by_file, key=lambda p: (-sum(by_file[p].values()), p))
    return {
        "lines": len(lines),
        "files": len(by_file),
        "defects": len(all_defects),
        "kinds": list(kinds.KINDS),
        "top": [{"path": p, "lines": sum(by_file[p].values()),
                 "by_kind": {k: by_file[p][k] for k in kinds.KINDS},
                 "defects": sorted(named[p])} for p in ranked[:top]],
        "more_files": max(len(ranked) - top, 0),
    }


def _epoch(at: str) -> float:
    from datetime import datetime, timezone

    # A ledger `at` (ledger_record.AT_RE): seconds, optionally microseconds, always Z.
    stamp = datetime.strptime(at[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    return stamp.timestamp()


def revalidations(book: Any) -> dict[str, Any]:
    """Revalidation requests opened and closed (accepted or rejected) per day, from the
    records' `at` times; a request's latest decision closes it (qa.decisions)."""
    opened = {key: _epoch(r.at) for key, r in qa.requests(book).items()}
    decided = {key: r for key, r in qa.decisions(book).items() if key in opened}
    days: dict[str, Counter[str]] = {}
    for when in opened.values():
        days.setdefault(_day(when), Counter())["opened"] += 1
    for r in decided.values():
        days.setdefault(_day(_epoch(r.at)), Counter())["closed"] += 1
    series = []
    still_open = 0
    for day in sorted(days):
        still_open += days[day]["opened"] - days[day]["closed"]
        series.append({"day": day, "opened": days[day]["opened"],
                       "closed": days[day]["closed"], "open": still_open})
    verdicts = Counter(r.type for r in decided.values())
    return {"opened": len(opened), "closed": len(decided), "open": len(opened) - len(decided),
            "accepted": verdicts[qa.ACCEPT], "rejected": verdicts[qa.REJECT], "days": series}


def _outcomes(state_dir: Path) -> list[dict[str, Any]]:
    """Every trigger outcome recorded in the environment (inventory.set_outcome)."""
    found = []
    for path in sorted((state_dir / "outcomes").glob("*.json")):
        try:
            doc = json.loads(path.read_bytes())
        except (OSError, ValueError):
            continue  # a damaged outcome is `audit verify`'s to report, not a figure
        if isinstance(doc, dict) and isinstance(doc.get("time"), (int, float)):
            found.append(doc)
    return found


def migrations(state_dir: Path) -> dict[str, Any]:
    """Migrations of one environment per day: migrated, rolled back, escalated, reverted;
    the success rate is migrated over attempted (as the engine's Stats counts it)."""
    days: dict[str, Counter[str]] = {}
    totals: Counter[str] = Counter()
    for doc in _outcomes(state_dir):
        outcome, kind = str(doc.get("outcome")), doc.get("kind", "migrate")
        what = "reverted" if kind == "revert" and outcome == "migrated" else outcome
        if what not in (*ATTEMPTS, "reverted"):
            continue  # expired, withdrawn: never attempted
        days.setdefault(_day(float(doc["time"])), Counter())[what] += 1
        totals[what] += 1
    attempted = sum(totals[w] for w in ATTEMPTS)
    return {
        "attempted": attempted, "migrated": totals["migrated"],
        "rolled_back": totals["rolled-back"], "escalated": totals["escalated"],
        "reverted": totals["reverted"],
        "success_percent": _percent(totals),
        "days": [{"day": day, "migrated": c["migrated"], "rolled_back": c["rolled-back"],
                  "escalated": c["escalated"], "reverted": c["reverted"],
                  "success_percent": _percent(c)}
                 for day, c in sorted(days.items())],
    }


def _percent(counts: Counter[str]) -> float | None:
    attempted = sum(counts[w] for w in ATTEMPTS)
    return round(100 * counts["migrated"] / attempted, 1) if attempted else None


def state(state_dir: Path) -> dict[str, Any]:
    """What stops the environment now: a migration in flight (its journal, which the next
    run recovers) or an escalation waiting for `dasct migrate resolve`."""
    records = journal.pending(state_dir)
    marker = session.needs_attention(state_dir)
    return {"in_flight": str(records[0].get("trigger", "")) if records else None,
            "needs_attention": str(marker.get("trigger", "")) if marker else None}


def warranty(env: Environment, *, now: float) -> list[dict[str, Any]]:
    """The deployed enhancements of env and their recorded warranty (WP, claimed or CP:
    migrate/warranty.py, from env's audit log), in an environment that keeps warranties."""
    from dasct.migrate import warranty as kept

    rows = []
    for tid, dep in inventory.load(env.state_dir)["deployments"].items():
        found = kept.state(env, tid)
        if found is None:
            continue
        rows.append({"environment": env.name, "enhancement": tid, "status": found.state,
                     "deployed_at": iso(float(dep["deployed_at"])),
                     "warranty_ends": found.until, "claims": found.claims,
                     "defects": [str(d) for d in dep.get("defects", [])]})
    return sorted(rows, key=lambda r: (r["environment"], r["deployed_at"], r["enhancement"]))


def audit_check(state_dir: Path, anchor: Any, *, now: float) -> dict[str, Any]:
    """The audit chain verification of one environment, run now (what `dasct audit
    verify` checks), with when it ran and the time of the log's last record."""
    problems, proves, count = audit_cmd.check(state_dir, anchor)
    from dasct import audit

    last = audit.records(state_dir)[-1:] if count else []
    last_at = last[0].get("time") if last else None
    return {"ok": not problems, "problems": problems, "records": count, "proves": proves,
            "checked_at": iso(now),
            "last_record_at": last_at if isinstance(last_at, str) else None}
