"""Signed checkpoints of the audit log: the anchor a writer of the state directory cannot forge.

`audit.checkpoint` in the state directory (and, when configured, a copy elsewhere) is a
c2sp.org/tlog-checkpoint: a signed note (dasct.note) whose text is the origin
(`dasct/audit/<environment>`), the tree size (the number of lines of `audit.jsonl` it
covers) and the RFC 6962 Merkle tree hash over those lines (each line's bytes without its
newline is a leaf), in base64. The key comes from the environment variable
`[audit] checkpoint_key_env` names; `[audit] checkpoint_public_keys` lets people without
the signing key verify Ed25519 checkpoints.

A checkpoint is only ever signed over a log that extends the newest checkpoint that
verifies, so a log edited or truncated behind the writer's back is refused, never
re-signed. The engine signs one at the end of every run and revert and after each
decision taken outside a run (docs/audit-and-notifications.md says why not at every
append).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from dasct import audit, note
from dasct.audit import AuditError
from dasct.config import AuditConfig
from dasct.durable import atomic_write

CHECKPOINT = "audit.checkpoint"
HMAC_NAME = "dasct-audit"  # the key name of an HMAC secret (it has no name of its own)
ORIGIN_PREFIX = "dasct/audit/"


@dataclass(frozen=True)
class Checkpoint:
    """The three lines of a tlog-checkpoint's text."""

    origin: str
    size: int
    root: bytes

    def text(self) -> str:
        """The note text: origin, tree size, base64 root hash, each ending in a newline."""
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"


def parse(text: str) -> Checkpoint:
    """The checkpoint a verified note text holds; NoteError when it is not one."""
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] or not all(lines[:-1]):
        raise note.NoteError("not a checkpoint (origin, tree size, root hash lines)")
    origin, size, root = lines[:3]
    if not size.isascii() or not size.isdigit() or (size != "0" and size.startswith("0")):
        raise note.NoteError(f"not a checkpoint: tree size {size[:20]!r}")
    try:
        digest = base64.b64decode(root, validate=True)
    except (binascii.Error, ValueError):
        digest = b""
    if len(digest) != 32:
        raise note.NoteError("not a checkpoint: the root hash is not 32 bytes of base64")
    return Checkpoint(origin, int(size), digest)


def roots(leaves: list[bytes], sizes: set[int]) -> dict[int, bytes]:
    """RFC 6962 Merkle tree hashes of the first n leaves, for each n in sizes, in one pass."""
    out: dict[int, bytes] = {}
    stack: list[tuple[int, bytes]] = []  # perfect subtrees (height, hash), largest first

    def fold() -> bytes:
        # The RFC's split at the largest power of two is exactly these subtrees from the right.
        if not stack:
            return hashlib.sha256(b"").digest()
        acc = stack[-1][1]
        for _, h in reversed(stack[:-1]):
            acc = hashlib.sha256(b"\x01" + h + acc).digest()
        return acc

    if 0 in sizes:
        out[0] = fold()
    top = max(sizes, default=0)
    for n, leaf in enumerate(leaves[:top], start=1):
        height, h = 0, hashlib.sha256(b"\x00" + leaf).digest()
        while stack and stack[-1][0] == height:
            h = hashlib.sha256(b"\x01" + stack.pop()[1] + h).digest()
            height += 1
        stack.append((height, h))
        if n in sizes:
            out[n] = fold()
    return out


def log_leaves(state_dir: Path) -> list[bytes]:
    """Every complete line of the audit log (a torn tail is not a record yet)."""
    try:
        data = (Path(state_dir) / audit.LOG).read_bytes()
    except FileNotFoundError:
        return []
    return data.split(b"\n")[:-1]


@dataclass(frozen=True)
class Anchor:
    """Where an environment's checkpoints are, who signs them and who may have."""

    origin: str  # "" when unknown (a bare --state-dir): any origin is accepted
    key_env: str
    public_keys: tuple[str, ...] = ()
    copy: Path | None = None

    def signer(self) -> note.Key | None:
        """The signing key from the environment; None when the variable is unset."""
        value = os.environ.get(self.key_env, "").strip() if self.key_env else ""
        if not value:
            return None
        try:
            if value.startswith("PRIVATE+KEY+"):
                return note.ed25519_signer(value)
            return note.hmac_key(HMAC_NAME, value.encode())
        except note.NoteError as exc:
            raise note.NoteError(f"${self.key_env}: {exc}") from None

    def verifiers(self) -> list[note.Key]:
        """Every key a checkpoint may be signed by: the signing key and the public keys."""
        keys = []
        for i, text in enumerate(self.public_keys):
            try:
                keys.append(note.ed25519_verifier(text))
            except note.NoteError as exc:
                raise note.NoteError(f"[audit] checkpoint_public_keys[{i}]: {exc}") from None
        signer = self.signer()
        return [*keys, signer] if signer is not None else keys


def anchor(cfg: AuditConfig, environment: str | None, repo_root: Path) -> Anchor:
    """The Anchor of an environment (None: a state directory of no known environment)."""
    copy = None
    if cfg.checkpoint_copy and environment:
        copy = Path(os.path.normpath(repo_root / cfg.checkpoint_copy)) / f"{environment}.checkpoint"
    return Anchor(origin=f"{ORIGIN_PREFIX}{environment}" if environment else "",
                  key_env=cfg.checkpoint_key_env, public_keys=cfg.checkpoint_public_keys,
                  copy=copy)


def _places(state_dir: Path, a: Anchor) -> list[Path]:
    return [Path(state_dir) / CHECKPOINT] + ([a.copy] if a.copy else [])


def _read(path: Path, a: Anchor, keys: list[note.Key]) -> Checkpoint | None:
    """The checkpoint at path, verified; None when absent; NoteError when it is not valid."""
    try:
        data = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise note.NoteError(f"unreadable: {getattr(exc, 'strerror', None) or exc}") from None
    text, _ = note.open_note(data, keys)
    cp = parse(text)
    if a.origin and cp.origin != a.origin:
        raise note.NoteError(f"a checkpoint of another log ({cp.origin!r}, not {a.origin!r})")
    return cp


def _against(path: Path, cp: Checkpoint, leaves: list[bytes], root: bytes | None) -> str | None:
    if cp.size > len(leaves):
        return (f"{path}: signed for {cp.size} record(s) but the log has {len(leaves)}: "
                "truncated or deleted")
    if root != cp.root:
        return (f"{path}: the first {cp.size} record(s) do not hash to the signed root: "
                "the log was rewritten")
    return None


def check(state_dir: Path, a: Anchor) -> tuple[list[str], str]:
    """(problems, one line on what the anchor proves) of the log against its checkpoints."""
    try:
        keys = a.verifiers()
    except note.NoteError as exc:
        return [str(exc)], ""
    places = _places(state_dir, a)
    if not keys:
        return [], (f"no checkpoint key (${a.key_env} unset, no public key configured): the "
                    "chain is tamper-evident only against edits of the log alone")
    leaves = log_leaves(state_dir)
    found: dict[Path, Checkpoint] = {}
    absent: list[Path] = []
    problems: list[str] = []
    for path in places:
        try:
            cp = _read(path, a, keys)
        except note.NoteError as exc:
            problems.append(f"{path}: {exc}")
            continue
        if cp is None:
            absent.append(path)
        else:
            found[path] = cp
    hashes = roots(leaves, {cp.size for cp in found.values() if cp.size <= len(leaves)})
    for path, cp in found.items():
        problem = _against(path, cp, leaves, hashes.get(cp.size))
        if problem:
            problems.append(problem)
    local = places[0]
    if not found and not problems and leaves:
        problems.append(f"{local}: missing although a checkpoint key is configured and the "
                        f"log has {len(leaves)} record(s): deleted")
    elif local in absent and found:
        copied = max(cp.size for cp in found.values())
        problems.append(f"{local}: missing, but its copy covers {copied} record(s): deleted")
    if a.copy is not None and a.copy in absent and local in found:
        problems.append(f"{a.copy}: no copy of the checkpoint (deleted, or not written since "
                        "the copy was configured)")
    if a.copy in found and local in found:
        mine, theirs = found[local], found[a.copy]
        if theirs.size > mine.size:
            problems.append(f"{local}: older than its copy ({mine.size} < {theirs.size} "
                            "records): put back")
        elif theirs.size == mine.size and theirs.root != mine.root:
            problems.append(f"{local}: disagrees with its copy {a.copy} at {mine.size} records")
    if problems:
        return problems, ""
    covered = max((cp.size for cp in found.values()), default=0)
    return [], (f"signed checkpoint covers {covered} of {len(leaves)} record(s)"
                + (" and agrees with its copy" if a.copy in found else ""))


def sign_log(state_dir: Path, a: Anchor, *, first_ok: bool) -> Checkpoint | None:
    """Sign a checkpoint of the log as it is now (None when no key is configured).

    Refuses (AuditError) a log with problems, or one that does not extend the newest
    checkpoint that verifies. With no checkpoint anywhere, signs only when first_ok: the
    caller started the log itself, or a person adopts an existing log on purpose.
    """
    try:
        signer = a.signer()
        keys = a.verifiers()
    except note.NoteError as exc:
        raise AuditError(str(exc)) from None
    if signer is None:
        return None
    state_dir = Path(state_dir)
    with audit.locked(state_dir):
        problems = audit.verify(state_dir)
        if problems:
            raise AuditError(f"not signing a checkpoint of a damaged log: {problems[0]}; run "
                             "`dasct audit verify`")
        leaves = log_leaves(state_dir)
        found: dict[Path, Checkpoint] = {}
        for path in _places(state_dir, a):
            try:
                cp = _read(path, a, keys)
            except note.NoteError as exc:
                if not first_ok:
                    raise AuditError(f"{path}: {exc}") from None
                continue  # a new key adopting the log: the old checkpoint is superseded
            if cp is not None:
                found[path] = cp
        hashes = roots(leaves, {len(leaves)} | {cp.size for cp in found.values()
                                                if cp.size <= len(leaves)})
        for path, cp in found.items():
            problem = _against(path, cp, leaves, hashes.get(cp.size))
            if problem:
                raise AuditError(f"not signing a checkpoint: {problem}")
        if not found and leaves and not first_ok:
            raise AuditError(
                f"{state_dir / CHECKPOINT}: missing, but the log has {len(leaves)} record(s): "
                "if the key is new, run `dasct audit checkpoint` once to sign the log as it "
                "is; otherwise it was deleted: run `dasct audit verify`")
        cp = Checkpoint(a.origin or ORIGIN_PREFIX + state_dir.name, len(leaves),
                        hashes[len(leaves)])
        data = note.sign(cp.text(), [signer]).encode()
        atomic_write(state_dir / CHECKPOINT, data, mode=0o644)
        if a.copy is not None:
            try:
                atomic_write(a.copy, data, mode=0o644)
            except OSError as exc:
                raise AuditError(f"{a.copy}: cannot write the checkpoint copy: "
                                 f"{exc.strerror or exc}") from None
    return cp
