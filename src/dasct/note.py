"""Signed notes (c2sp.org/signed-note): text, a blank line, then `— name base64(id||sig)` lines.

Two signature types. Ed25519 (type 0x01, as in the spec, through the optional
`cryptography` package: `pip install dasct[sign]`), with keys in the text forms of
golang.org/x/mod/sumdb/note, so keys made by Go tools work here and the other way round:

    signer key    PRIVATE+KEY+<name>+<key id hex>+base64(0x01 || 32-byte seed)
    verifier key  <name>+<key id hex>+base64(0x01 || 32-byte public key)

HMAC-SHA256 over the note text (dasct-specific: type byte 0xff followed by the
identifier `dasct-hmac-sha256`, the spec's escape for unassigned types), for teams
without `cryptography`; the same secret signs and verifies. Its key id commits to a
SHA-256 of the secret, never the secret itself.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from dasct.errors import DasctError

ED25519 = b"\x01"
HMAC_TYPE = b"\xff" + b"dasct-hmac-sha256"
_DASH = "\u2014 "
_PRIVATE = "PRIVATE+KEY+"
_MAX_SIGNATURES = 16  # the spec's floor for what a verifier must accept


class NoteError(DasctError):
    """A key or a signed note is malformed, or its signature does not verify."""


@dataclass(frozen=True)
class Key:
    """One note key: its name, 4-byte id and how it signs (None: verify only) and verifies."""

    name: str
    key_id: bytes
    kind: str  # "ed25519" or "hmac-sha256"
    verify: Callable[[bytes, bytes], bool]
    sign: Callable[[bytes], bytes] | None = None
    public: str = ""  # the verifier key text (Ed25519 only: an HMAC secret has none)

    @property
    def label(self) -> str:
        """name+id as a person reads it (no key material)."""
        return f"{self.name}+{self.key_id.hex()}"


def key_id(name: str, type_and_key: bytes) -> bytes:
    """The spec's key id: SHA-256(name || 0x0A || type || key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + type_and_key).digest()[:4]


def _check_name(name: str) -> str:
    if not name or any(c.isspace() or c == "+" for c in name):
        raise NoteError(f"key name {name!r} must be non-empty, without spaces or '+'")
    return name


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise NoteError(f"{what}: not base64") from None


def hmac_key(name: str, secret: bytes) -> Key:
    """An HMAC-SHA256 note key (signs and verifies)."""
    _check_name(name)
    kid = key_id(name, HMAC_TYPE + hashlib.sha256(secret).digest())

    def sign(text: bytes) -> bytes:
        return hmac.new(secret, text, hashlib.sha256).digest()

    return Key(name, kid, "hmac-sha256", lambda text, sig: hmac.compare_digest(sign(text), sig),
               sign)


def _ed25519() -> object:
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:
        raise NoteError("Ed25519 note keys need the `cryptography` package: "
                        "pip install 'dasct[sign]'") from None
    return ed25519


def _split_key(text: str, parts: int, what: str) -> list[str]:
    # The base64 tail may itself contain '+': split from the left only.
    fields = text.strip().split("+", parts - 1)
    if len(fields) != parts:
        raise NoteError(f"not a {what} (want {'+'.join(['...'] * parts)})")
    return fields


def _checked(name: str, hex_id: str, raw: bytes, key_bytes: bytes, what: str) -> bytes:
    _check_name(name)
    if len(raw) != 33 or raw[:1] != ED25519:
        raise NoteError(f"{what} {name}: not an Ed25519 key (type 0x01, 32 bytes)")
    kid = key_id(name, ED25519 + key_bytes)
    if hex_id.lower() != kid.hex() or len(hex_id) != 8:
        raise NoteError(f"{what} {name}: its key id {hex_id} does not match the key")
    return kid


def ed25519_verifier(vkey: str) -> Key:
    """A verify-only key from its text form `name+id+base64(0x01||public key)`."""
    ed = _ed25519()
    name, hex_id, b64 = _split_key(vkey, 3, "verifier key")
    raw = _b64(b64, f"verifier key {name}")
    kid = _checked(name, hex_id, raw, raw[1:], "verifier key")
    public = ed.Ed25519PublicKey.from_public_bytes(raw[1:])  # type: ignore[attr-defined]

    def verify(text: bytes, sig: bytes) -> bool:
        try:
            public.verify(sig, text)
        except Exception:  # InvalidSignature, or a signature of the wrong length
            return False
        return True

    return Key(name, kid, "ed25519", verify, public=vkey.strip())


def ed25519_signer(skey: str) -> Key:
    """A signing key from its text form `PRIVATE+KEY+name+id+base64(0x01||seed)`."""
    ed = _ed25519()
    if not skey.strip().startswith(_PRIVATE):
        raise NoteError("not an Ed25519 signer key (PRIVATE+KEY+name+id+base64)")
    name, hex_id, b64 = _split_key(skey.strip()[len(_PRIVATE):], 3, "signer key")
    raw = _b64(b64, f"signer key {name}")
    if len(raw) != 33:
        raise NoteError(f"signer key {name}: not an Ed25519 key (type 0x01, 32 bytes)")
    private = ed.Ed25519PrivateKey.from_private_bytes(raw[1:])  # type: ignore[attr-defined]
    from cryptography.hazmat.primitives import serialization

    pub = private.public_key().public_bytes(serialization.Encoding.Raw,
                                            serialization.PublicFormat.Raw)
    kid = _checked(name, hex_id, raw[:1] + pub, pub, "signer key")
    vkey = f"{name}+{kid.hex()}+{base64.b64encode(ED25519 + pub).decode()}"
    verifier = ed25519_verifier(vkey)
    return Key(name, kid, "ed25519", verifier.verify, private.sign, public=vkey)


def generate_ed25519(name: str) -> tuple[str, str]:
    """A new Ed25519 key pair as text: (signer key, verifier key)."""
    _ed25519()
    _check_name(name)
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    private = ed25519.Ed25519PrivateKey.generate()
    seed = private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                 serialization.NoEncryption())
    pub = private.public_key().public_bytes(serialization.Encoding.Raw,
                                            serialization.PublicFormat.Raw)
    kid = key_id(name, ED25519 + pub).hex()
    return (f"{_PRIVATE}{name}+{kid}+{base64.b64encode(ED25519 + seed).decode()}",
            f"{name}+{kid}+{base64.b64encode(ED25519 + pub).decode()}")


def sign(text: str, keys: Iterable[Key]) -> str:
    """The signed note of text (which must end in a newline) by every key."""
    if not text.endswith("\n") or any(ord(c) < 0x20 and c != "\n" for c in text):
        raise NoteError("a note text must end in a newline and hold no control characters")
    lines = []
    for key in keys:
        if key.sign is None:
            raise NoteError(f"key {key.label} can only verify")
        sig = base64.b64encode(key.key_id + key.sign(text.encode())).decode()
        lines.append(f"{_DASH}{key.name} {sig}\n")
    if not lines:
        raise NoteError("a note needs at least one signature")
    return text + "\n" + "".join(lines)


def split(note: str) -> tuple[str, list[tuple[str, bytes, bytes]]]:
    """(text, [(key name, key id, signature)]) of a signed note; NoteError if malformed."""
    if not note.endswith("\n") or any(ord(c) < 0x20 and c != "\n" for c in note):
        raise NoteError("malformed note (control characters, or no final newline)")
    cut = note.rfind("\n\n")
    if cut < 0:
        raise NoteError("malformed note (no blank line before the signatures)")
    text, block = note[:cut + 1], note[cut + 2:]
    sigs = []
    for line in block.splitlines():
        name, _, b64 = line[len(_DASH):].partition(" ")
        if not line.startswith(_DASH) or not name or not b64 or " " in b64:
            raise NoteError(f"malformed signature line {line[:60]!r}")
        raw = _b64(b64, f"signature of {name}")
        if len(raw) < 5:
            raise NoteError(f"signature of {name} is too short")
        sigs.append((name, raw[:4], raw[4:]))
    if not sigs or len(sigs) > _MAX_SIGNATURES:
        raise NoteError(f"a note needs 1 to {_MAX_SIGNATURES} signatures, not {len(sigs)}")
    return text, sigs


def open_note(note: str, keys: Iterable[Key]) -> tuple[str, list[Key]]:
    """The text of a signed note and the known keys whose signatures verified.

    Per the spec: signatures of unknown keys (name and id) are ignored; one of a known key
    that fails rejects the note; so does a note no known key signed.
    """
    text, sigs = split(note)
    known = {(k.name, k.key_id): k for k in keys}
    good = []
    for name, kid, sig in sigs:
        key = known.get((name, kid))
        if key is None:
            continue
        if not key.verify(text.encode(), sig):
            raise NoteError(f"the signature of {key.label} does not verify "
                            "(forged, or the note was edited)")
        good.append(key)
    if not good:
        names = ", ".join(f"{n}+{k.hex()}" for n, k, _ in sigs)
        raise NoteError(f"signed only by unknown key(s) {names}, not by "
                        + (", ".join(k.label for k in known.values()) or "a configured key"))
    return text, good
