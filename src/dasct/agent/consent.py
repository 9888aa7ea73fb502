"""The deliberate act an install needs (example 4, step 9): a passphrase, or a signed policy.

`install = "passphrase"`: the person types a passphrase that `dasct agent passphrase` set;
only its scrypt hash is kept (`<state_dir>/agent/passphrase.json`, mode 0600: random salt,
constant-time compare). A stray click or an unattended script cannot give it.

`install = "policy"`: an administrator signed a policy that allows unattended installs, a
signed note (dasct.note: the same `name+id+base64` Ed25519 verifier keys as audit
checkpoints) whose text is JSON:

    {"environment": "production", "systems": ["app"], "restart": false,
     "keep_for": "3d", "not_after": "2027-06-30"}

It is refused unsigned, signed by no key of `policy_public_keys`, past `not_after` (UTC),
for another environment, for a release of a system it does not list, or (restart false)
for a release that needs a restart. `keep_for` (a period, or null for no uninstall window)
is the uninstall period when the command names none.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from dasct import durable
from dasct.agent import AgentError
from dasct.agent.state import agent_dir

PASSPHRASE = "passphrase.json"
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
_MIN_LENGTH = 8
_PERIOD = re.compile(r"([1-9][0-9]{0,5})([mhd])")
_UNIT = {"m": 60, "h": 3600, "d": 86400}


def parse_period(text: str) -> float:
    """Seconds in a period written 90m, 12h or 3d; AgentError otherwise."""
    m = _PERIOD.fullmatch(text.strip())
    if m is None:
        raise AgentError(f"not a period: {text!r} (minutes, hours or days: 90m, 12h, 3d)")
    return int(m.group(1)) * _UNIT[m.group(2)]


def _scrypt(passphrase: str, salt: bytes, params: dict[str, int]) -> bytes:
    return hashlib.scrypt(passphrase.encode(), salt=salt, n=params["n"], r=params["r"],
                          p=params["p"], maxmem=64 * 1024 * 1024, dklen=32)


def set_passphrase(state_dir: Path, passphrase: str) -> None:
    """Keep the scrypt hash of a new passphrase (replacing any)."""
    if len(passphrase) < _MIN_LENGTH:
        raise AgentError(f"a passphrase needs at least {_MIN_LENGTH} characters")
    salt = secrets.token_bytes(16)
    doc = {"format": "dasct-agent-passphrase", "scrypt": _SCRYPT, "salt": salt.hex(),
           "hash": _scrypt(passphrase, salt, _SCRYPT).hex()}
    durable.atomic_write(agent_dir(state_dir) / PASSPHRASE,
                         (json.dumps(doc, sort_keys=True) + "\n").encode(), mode=0o600)


def check_passphrase(state_dir: Path, passphrase: str) -> None:
    """AgentError unless passphrase is the one set (or when none was set)."""
    path = agent_dir(state_dir) / PASSPHRASE
    try:
        doc = json.loads(path.read_text())
        params = {k: int(doc["scrypt"][k]) for k in ("n", "r", "p")}
        salt, want = bytes.fromhex(doc["salt"]), bytes.fromhex(doc["hash"])
    except FileNotFoundError:
        raise AgentError("no install passphrase is set: run `dasct agent passphrase` "
                         "first") from None
    except (OSError, ValueError, KeyError, TypeError):
        raise AgentError(f"{path}: not a passphrase file the agent wrote") from None
    if not hmac.compare_digest(_scrypt(passphrase, salt, params), want):
        raise AgentError("wrong passphrase: nothing installed")


def read_fd(fd: int) -> list[str]:
    """The lines a test (or a script holding the secret) writes on file descriptor fd."""
    with os.fdopen(fd, "r", closefd=True) as f:
        return [line.rstrip("\r\n") for line in f.read().splitlines()]


@dataclass(frozen=True)
class Policy:
    """A verified unattended-install policy."""

    environment: str
    systems: tuple[str, ...]
    restart: bool
    keep_for: float | None  # seconds; None: no uninstall window
    not_after: date
    signers: tuple[str, ...]


def load_policy(path: Path, public_keys: tuple[str, ...]) -> Policy:
    """The policy in path, its signature verified against public_keys; AgentError otherwise."""
    from dasct import note

    if not public_keys:
        raise AgentError("install = \"policy\" needs [agent] policy_public_keys: no key to "
                         "verify the policy with")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AgentError(f"{path}: cannot read the install policy ({exc})") from None
    try:
        keys = [note.ed25519_verifier(k) for k in public_keys]
        body, good = note.open_note(text, keys)
    except note.NoteError as exc:
        raise AgentError(f"{path}: the install policy is not signed by an administrator's "
                         f"key: {exc}") from None
    try:
        doc: dict[str, Any] = json.loads(body)
        keep = doc.get("keep_for")
        policy = Policy(environment=str(doc["environment"]),
                        systems=tuple(str(s) for s in doc["systems"]),
                        restart=bool(doc.get("restart", False)),
                        keep_for=None if keep is None else parse_period(str(keep)),
                        not_after=date.fromisoformat(str(doc["not_after"])),
                        signers=tuple(k.label for k in good))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise AgentError(f"{path}: the signed install policy is malformed ({exc})") from None
    return policy


def check_policy(policy: Policy, *, environment: str, system: str, restart: bool,
                 today: date | None = None) -> None:
    """AgentError unless policy allows installing this release unattended."""
    today = today or datetime.now(timezone.utc).date()
    if today > policy.not_after:
        raise AgentError(f"the install policy expired on {policy.not_after.isoformat()}")
    if policy.environment != environment:
        raise AgentError(f"the install policy is for environment {policy.environment!r}, "
                         f"not {environment!r}")
    if system not in policy.systems:
        raise AgentError(f"the install policy does not allow system {system!r} "
                         f"(it allows {', '.join(policy.systems) or 'none'})")
    if restart and not policy.restart:
        raise AgentError("the release needs a restart, which the install policy does not "
                         "allow unattended")
