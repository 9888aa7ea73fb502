"""The agent's state file: what is installed, uses since the last check, the last check,
the release downloaded and waiting, and the uninstall windows.

One JSON file, `<state_dir>/agent/state.json`, written atomically (dasct.durable) and
carrying the sha256 of its own body: a state file that was edited, truncated or torn is
refused with one line, never believed (a wrong installed version would make the agent
offer, or skip, the wrong release). Every change is a read-modify-write under a lock
file, so two launchers counting a use at once never lose one.

Import-light: `dasct agent used` reads and writes it on every launch of the application.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from dasct import durable
from dasct.agent import AgentError

FORMAT = "dasct-agent-state"
NAME = "state.json"


@dataclass(frozen=True)
class Window:
    """An uninstall window: release `version` (its `triggers`, those the install migrated,
    in the order migrated) may be taken back to `previous` until `ends` (epoch seconds)."""

    version: int
    triggers: tuple[str, ...]
    previous: int
    installed_at: float
    ends: float


@dataclass(frozen=True)
class Waiting:
    """A release downloaded and verified, not installed: the release's fields as
    dasct.agent.release.Release has them, and where its tar is."""

    release: dict[str, Any]
    path: str
    downloaded_at: float

    @property
    def version(self) -> int:
        """The release's version."""
        return int(self.release["version"])


@dataclass(frozen=True)
class State:
    """Everything the agent remembers between runs."""

    installed: int = 0
    uses: int = 0  # since the last check
    since: float | None = None  # when counting began: the last check, or the first use
    last_check: float | None = None
    last_result: str = ""  # what the last check said, for `status`
    waiting: Waiting | None = None
    noticed: int = 0  # the newest release version the user was told of
    windows: tuple[Window, ...] = ()
    declined: tuple[int, ...] = ()  # versions taken back: never offered again

    def body(self) -> dict[str, Any]:
        """The JSON-ready body the digest covers."""
        return asdict(self)


def agent_dir(state_dir: Path) -> Path:
    """Where the agent keeps its state, downloads, history and passphrase hash."""
    return state_dir / "agent"


def path_of(state_dir: Path) -> Path:
    """The state file of an environment's agent."""
    return agent_dir(state_dir) / NAME


def _digest(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _from_body(body: dict[str, Any]) -> State:
    waiting = body.get("waiting")
    return State(
        installed=int(body["installed"]), uses=int(body["uses"]),
        since=body.get("since"), last_check=body.get("last_check"),
        last_result=str(body.get("last_result", "")),
        waiting=None if waiting is None else Waiting(dict(waiting["release"]),
                                                     str(waiting["path"]),
                                                     float(waiting["downloaded_at"])),
        noticed=int(body.get("noticed", 0)),
        windows=tuple(Window(int(w["version"]), tuple(w["triggers"]), int(w["previous"]),
                             float(w["installed_at"]), float(w["ends"]))
                      for w in body.get("windows", ())),
        declined=tuple(int(v) for v in body.get("declined", ())),
    )


def load(path: Path) -> State:
    """The state in path (a fresh State when there is none); AgentError when the file is
    not one the agent wrote, as it wrote it."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return State()
    except OSError as exc:
        raise AgentError(f"{path}: cannot read the agent's state ({exc.strerror})") from None
    try:
        doc = json.loads(data)
        body = doc["body"]
        ok = doc.get("format") == FORMAT and doc.get("sha256") == _digest(body)
        state = _from_body(body) if ok else None
    except (ValueError, KeyError, TypeError, AttributeError):
        state = None
    if state is None:
        raise AgentError(f"{path}: the agent's state is damaged or was edited (its digest "
                         "does not match); not believed. Move it aside and run "
                         "`dasct agent check --now` to start again")
    return state


def save(path: Path, state: State) -> None:
    """Write state to path atomically, with its digest."""
    body = state.body()
    doc = {"format": FORMAT, "version": 1, "body": body, "sha256": _digest(body)}
    durable.atomic_write(path, (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode(),
                         mode=0o600)


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold the agent's state lock (a lock file beside it) for a read-modify-write."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


class Change:
    """The state being changed inside `update`: read it as .state, replace it with .set."""

    def __init__(self, state: State) -> None:
        self.state = state

    def set(self, **fields: Any) -> State:
        """Replace fields of the state (written when the `with` block ends)."""
        self.state = replace(self.state, **fields)
        return self.state


@contextmanager
def update(path: Path) -> Iterator[Change]:
    """Read the state under its lock, let the block change it, write it back."""
    with locked(path):
        change = Change(load(path))
        before = change.state
        yield change
        if change.state != before:
            save(path, change.state)


def with_window(state: State, window: Window) -> tuple[Window, ...]:
    """state's windows with window in place of any for the same version, oldest first."""
    kept = [w for w in state.windows if w.version != window.version]
    return tuple(sorted([*kept, window], key=lambda w: w.version))


def without_window(state: State, version: int) -> tuple[Window, ...]:
    """state's windows without the one for version."""
    return tuple(w for w in state.windows if w.version != version)


__all__ = ["Change", "State", "Waiting", "Window", "agent_dir", "load", "locked",
           "path_of", "save", "update", "with_window", "without_window"]
