"""The agent's history: every install, failed install, refusal, uninstall and keep decision.

An append-only JSON-lines file, `<state_dir>/agent/history.jsonl`, each line fsynced and
redacted (dasct.redact) like every other sink. The audit log of the environment holds the
engine's own records of the same installs and uninstalls; this is the user's view of them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from dasct import durable, redact
from dasct.agent.state import agent_dir

NAME = "history.jsonl"
# What a history line says happened.
INSTALLED = "installed"
INSTALL_FAILED = "install-failed"
REFUSED = "refused"
UNINSTALLED = "uninstalled"
UNINSTALL_FAILED = "uninstall-failed"
KEPT = "kept"
KEPT_FOREVER = "kept-forever"
EVENTS = (INSTALLED, INSTALL_FAILED, REFUSED, UNINSTALLED, UNINSTALL_FAILED, KEPT,
          KEPT_FOREVER)


def path_of(state_dir: Path) -> Path:
    """The history file of an environment's agent."""
    return agent_dir(state_dir) / NAME


def add(state_dir: Path, event: str, version: int, *, now: float | None = None,
        **fields: Any) -> dict[str, Any]:
    """Append one entry (redacted) and return it."""
    at = time.time() if now is None else now
    entry = redact.scrub({"event": event, "version": version, "at": round(at, 3),
                          "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at)),
                          **fields}, keep=("event", "time"))
    path = path_of(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    durable.append_line(path, (json.dumps(entry, sort_keys=True) + "\n").encode())
    return dict(entry)


def entries(state_dir: Path) -> list[dict[str, Any]]:
    """Every entry, oldest first (a torn last line, from a crash mid-append, is skipped)."""
    try:
        lines = path_of(state_dir).read_text().splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out
