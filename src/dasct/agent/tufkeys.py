"""Signing keys of the TUF roles: loaded from where [publish] names them, never stored.

A key source is `env:VAR` (the PEM private key in an environment variable) or `file:PATH`
(a PEM file, relative to the repository). Messages name the source, never the key.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dasct import durable
from dasct.agent import AgentError, require

ROLES = ("root", "targets", "snapshot", "timestamp")


def _pem(source: str, base: Path, role: str) -> bytes:
    kind, _, name = source.partition(":")
    if kind == "env":
        value = os.environ.get(name, "")
        if not value:
            raise AgentError(f"[publish] {role} key {source}: the variable is not set")
        return value.encode()
    if kind == "file":
        path = Path(name) if Path(name).is_absolute() else base / name
        try:
            return path.read_bytes()
        except OSError as exc:
            raise AgentError(f"[publish] {role} key {source}: cannot read: "
                             f"{exc.strerror or exc}") from None
    raise AgentError(f"[publish] {role} key {source!r}: not env:VAR or file:PATH")


def signer(source: str, base: Path, role: str) -> Any:
    """A CryptoSigner for the PEM private key source names."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    from securesystemslib.signer import CryptoSigner

    try:
        key = load_pem_private_key(_pem(source, base, role), password=None)
        return CryptoSigner(key)
    except AgentError:
        raise
    except Exception:  # the parser's message may quote the key: say only what failed
        raise AgentError(f"[publish] {role} key {source}: not an unencrypted PEM private "
                         "key (Ed25519, ECDSA or RSA)") from None


def signers(sources: Sequence[str], base: Path, role: str) -> list[Any]:
    """The signers of role; AgentError when [publish] names none."""
    if not sources:
        raise AgentError(f"[publish] {role}.keys is empty: name at least one key "
                         "(dasct publish --generate-keys DIR makes a set)")
    return [signer(s, base, role) for s in sources]


def new_key(path: Path) -> str:
    """Write a fresh Ed25519 private key (PEM, PKCS#8, mode 0600) to path; its file: source."""
    require()
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    durable.atomic_write(path, pem, mode=0o600)
    return f"file:{path}"


def generate(folder: Path) -> str:
    """Write a fresh Ed25519 key per role into folder (0600); the [publish] table to paste."""
    lines = ["[publish]  # in .dasct.toml; or [tool.dasct.publish] in pyproject.toml"]
    for role in ROLES:
        path = folder / f"{role}.pem"
        if path.exists():
            raise AgentError(f"{path}: exists; not overwriting a key")
        new_key(path)
        lines.append(f'{role} = {{ keys = ["file:{path}"], threshold = 1 }}')
    return "\n".join(lines)
