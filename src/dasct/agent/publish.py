"""Publish an environment's releases as a TUF repository of static files (CI side).

`<repository>/<ENV>/metadata/` holds root, targets, snapshot and timestamp, written with
python-tuf's Metadata API; `<repository>/<ENV>/targets/` the release tars (release.py).
Any HTTP server, object store or CDN can serve both. Every file is written atomically and
in the order a reader needs: the release, targets, snapshot, and the timestamp last, so a
client never sees a timestamp that names files not yet there. Releases are never pruned:
the client finds the newest by asking for consecutive versions.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from dasct import durable
from dasct.agent import AgentError, release, tufkeys
from dasct.agentconfig import PublishConfig, RoleKeys
from dasct.migrate import trigger as trig

DEFAULT_DAYS = {"root": 365, "targets": 90, "snapshot": 7, "timestamp": 1}


@dataclass(frozen=True)
class Staged:
    """A verified trigger waiting for ENV: its id, file bytes, payloads, defects, restart."""

    tid: str
    document: bytes
    payloads: dict[str, bytes]
    defects: tuple[str, ...]
    restart: bool


@dataclass
class Outcome:
    """What one publish did, for the command to print."""

    env: str
    version: int  # the current release (0: none yet)
    new_triggers: tuple[str, ...] = ()
    signed: list[str] = field(default_factory=list)  # roles written, in write order
    root_version: int = 1
    warnings: list[str] = field(default_factory=list)  # one line each


def _days(cfg: PublishConfig, role: str) -> int:
    keys: RoleKeys = getattr(cfg, role)
    return keys.expiry_days or DEFAULT_DAYS[role]


class Repository:
    """The TUF metadata of one environment, read from and written to its directory."""

    def __init__(self, cfg: PublishConfig, folder: Path, base: Path, now: datetime) -> None:
        self.cfg, self.folder, self.base, self.now = cfg, folder, base, now
        self.meta_dir, self.targets_dir = folder / "metadata", folder / "targets"
        self.md: dict[str, Any] = {}
        self.new: set[str] = set()
        self.signed: list[str] = []  # roles written, in write order
        self.pending: list[tuple[Path, bytes]] = []  # written by flush(), in this order
        self.trusted: Any = None  # the root as it was read: it must verify a new root
        self.signers: dict[str, list[Any]] = {}

    # ------------------------------------------------------------------ reading

    def _read(self, name: str) -> Any:
        from tuf.api.metadata import Metadata

        path = self.meta_dir / name
        try:
            return Metadata.from_bytes(path.read_bytes())
        except FileNotFoundError:
            return None
        except Exception as exc:
            raise AgentError(f"{path}: not TUF metadata ({exc})") from None

    def load(self) -> bool:
        """Read the current metadata; False when the repository is new."""
        root = self._read("root.json")
        if root is None:
            return False
        self.md["root"] = root
        self.trusted = copy.deepcopy(root)
        self.md["timestamp"] = self._read("timestamp.json")
        snap_v = self.md["timestamp"].signed.snapshot_meta.version
        self.md["snapshot"] = self._read(f"{snap_v}.snapshot.json")
        targets_v = self.md["snapshot"].signed.meta["targets.json"].version
        self.md["targets"] = self._read(f"{targets_v}.targets.json")
        if any(v is None for v in self.md.values()):
            raise AgentError(f"{self.meta_dir}: incomplete TUF metadata (a file is missing)")
        return True

    def keyids(self, role: str) -> set[str]:
        return set(self.md["root"].signed.roles[role].keyids)

    # ------------------------------------------------------------------ creating

    def expiry(self, role: str) -> datetime:
        return (self.now + timedelta(days=_days(self.cfg, role))).replace(microsecond=0)

    def signers_of(self, role: str) -> list[Any]:
        """The configured signers of role, loaded when first needed and checked against root.

        Loaded lazily so that a publish that signs only the timestamp needs only its key:
        the root keys can stay offline but for the first root, a rotation and a renewal.
        """
        if role not in self.signers:
            found = tufkeys.signers(getattr(self.cfg, role).keys, self.base, role)
            if self.trusted is not None and \
                    {s.public_key.keyid for s in found} - self.keyids(role):
                raise AgentError(
                    f"[publish] {role}: a configured key is not a {role} key of root "
                    f"v{self.md['root'].signed.version} (rotate with --rotate {role} "
                    "--new-key SOURCE, then name the new key in [publish])")
            self.signers[role] = found
        return self.signers[role]

    def create(self) -> None:
        from tuf.api.metadata import Metadata, Role, Root, Snapshot, Targets, Timestamp

        root = Root(expires=self.expiry("root"),
                    consistent_snapshot=self.cfg.consistent_snapshot)
        for role in tufkeys.ROLES:
            keys = getattr(self.cfg, role)
            root.roles[role] = Role([], keys.threshold)
            for s in self.signers_of(role):
                root.add_key(s.public_key, role)
            self._check_threshold(role, root)
        self.md = {"root": Metadata(root),
                   "targets": Metadata(Targets(expires=self.expiry("targets"))),
                   "snapshot": Metadata(Snapshot(expires=self.expiry("snapshot"))),
                   "timestamp": Metadata(Timestamp(expires=self.expiry("timestamp")))}
        self.new = {"targets", "snapshot", "timestamp"}  # version 1, not yet written
        self.write_root(self.signers_of("root"))

    def _check_threshold(self, role: str, root: Any) -> None:
        if root.roles[role].threshold > len(root.roles[role].keyids):
            raise AgentError(f"[publish] {role}.threshold {root.roles[role].threshold} is "
                             f"more than its {len(root.roles[role].keyids)} distinct keys")

    # ------------------------------------------------------------------ writing

    def _write(self, name: str, md: Any) -> None:
        self.pending.append((self.meta_dir / name, md.to_bytes(_serializer())))

    def flush(self) -> None:
        """Write what this publish signed, in order; nothing is written before all of it
        is signed and verified, so a missing key or threshold leaves the repository as it
        was."""
        for path, data in self.pending:
            durable.atomic_write(path, data, mode=0o644)
        self.pending.clear()

    def write_root(self, signers: Sequence[Any]) -> None:
        md = self.md["root"]
        md.signatures.clear()
        for s in signers:
            md.sign(s, append=True)
        # What a client will check, checked before anything is written: the new root
        # verifies under itself and under the root the clients trust now (spec 5.3.4).
        for name, by in (("itself", md), ("the previous root", self.trusted)):
            if by is not None and not self._verifies(by, "root", md):
                raise AgentError(
                    f"root v{md.signed.version} would not verify under {name}: the [publish] "
                    "root keys are not the current root's or do not reach its threshold")
        self._write(f"{md.signed.version}.root.json", md)
        self._write("root.json", md)  # the current root, to ship as trusted_root
        self.trusted = copy.deepcopy(md)

    @staticmethod
    def _verifies(root: Any, role: str, md: Any) -> bool:
        try:
            root.signed.verify_delegate(role, md.signed_bytes, md.signatures)
        except Exception:
            return False
        return True

    def rotate(self, role: str, new_sources: Sequence[str]) -> None:
        """A new root whose role keys are new_sources, signed by the old and new root keys."""
        new = [tufkeys.signer(s, self.base, role) for s in new_sources]
        root = self.md["root"].signed
        old_root_signers = self.signers_of("root")
        for keyid in list(root.roles[role].keyids):
            root.revoke_key(keyid, role)
        for s in new:
            root.add_key(s.public_key, role)
        root.roles[role].threshold = min(root.roles[role].threshold, len(new))
        root.version += 1
        root.expires = self.expiry("root")
        # A client trusting the old root needs the old threshold of old keys; the new root
        # must also verify under itself: both sets sign (TUF spec 5.3.4).
        signers = old_root_signers + new if role == "root" else old_root_signers
        self.signers[role] = new
        self.write_root(signers)

    def sign(self, role: str) -> None:
        md = self.md[role]
        if role in self.new:
            self.new.discard(role)
        else:
            md.signed.version += 1
        md.signed.expires = self.expiry(role)
        md.signatures.clear()
        for s in self.signers_of(role):
            md.sign(s, append=True)
        if not self._verifies(self.md["root"], role, md):
            raise AgentError(f"[publish] {role}: its keys do not reach the threshold of "
                             f"{self.md['root'].signed.roles[role].threshold} root requires")
        self.signed.append(role)
        if role == "timestamp":
            self._write("timestamp.json", md)
            return
        self._write(f"{md.signed.version}.{role}.json", md)
        if not self.md["root"].signed.consistent_snapshot:
            self._write(f"{role}.json", md)

    def chain(self, start: str) -> None:
        """Re-sign start and every role above it, in the order a reader needs."""
        from tuf.api.metadata import MetaFile

        order = ["targets", "snapshot", "timestamp"]
        for role in order[order.index(start):]:
            # Lengths and hashes, not only versions: a targets or snapshot file from
            # another publish under the same version is refused (mix-and-match).
            if role == "snapshot":
                data = self.md["targets"].to_bytes(_serializer())
                self.md["snapshot"].signed.meta["targets.json"] = MetaFile.from_data(
                    self.md["targets"].signed.version, data, ["sha256"])
            if role == "timestamp":
                data = self.md["snapshot"].to_bytes(_serializer())
                self.md["timestamp"].signed.snapshot_meta = MetaFile.from_data(
                    self.md["snapshot"].signed.version, data, ["sha256"])
            self.sign(role)

    def near_expiry(self, role: str) -> bool:
        left = self.md[role].signed.expires - self.now
        return bool(left < timedelta(days=_days(self.cfg, role)) / 2)

    # ------------------------------------------------------------------ releases

    def releases(self) -> dict[int, Any]:
        """version -> TargetFile of every release of this repository's targets."""
        found = {}
        for path, info in self.md["targets"].signed.targets.items():
            parsed = release.parse_target(path)
            if parsed:
                found[parsed[1]] = info
        return found

    def target_file(self, info: Any) -> Path:
        dirname, _, name = info.path.rpartition("/")
        if self.md["root"].signed.consistent_snapshot:
            name = f"{info.hashes['sha256']}.{name}"
        return Path(self.targets_dir / dirname / name)

    def add_release(self, path: str, data: bytes, manifest: dict[str, Any]) -> None:
        from tuf.api.metadata import TargetFile

        info = TargetFile.from_data(path, data, ["sha256"])
        info.unrecognized_fields["custom"] = {"dasct": manifest}
        self.pending.append((self.target_file(info), data))
        self.md["targets"].signed.targets[path] = info


def _serializer() -> Any:
    from tuf.api.serialization.json import JSONSerializer

    return JSONSerializer(compact=True)


def previous_files(repo: Repository, info: Any) -> dict[str, bytes]:
    """The members of a published release, verified against its targets entry."""
    path = repo.target_file(info)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AgentError(f"{path}: cannot read the published release: "
                         f"{exc.strerror or exc}") from None
    try:
        info.verify_length_and_hashes(data)
    except Exception:
        raise AgentError(f"{path}: differs from its signed targets entry") from None
    return {k: v for k, v in release.members(data).items() if k != release.MANIFEST}


def publish(cfg: PublishConfig, *, env: str, system: str, staged: Sequence[Staged],
            base: Path, now: datetime | None = None,
            rotate: tuple[str, Sequence[str]] | None = None) -> Outcome:
    """Write release N+1 of env when staged holds triggers release N lacks; renew expiries.

    base: the repository root (relative paths of cfg and key files). rotate: (role, new
    key sources) replaces that role's keys through a new root version first.
    """
    from dasct.agent import require

    require()
    now = now or datetime.now(timezone.utc)
    folder = Path(cfg.repository) if Path(cfg.repository).is_absolute() \
        else base / cfg.repository
    repo = Repository(cfg, folder / env, base, now)
    fresh = not repo.load()
    if fresh:
        repo.create()
    outcome = Outcome(env=env, version=0, signed=repo.signed)
    start: str | None = "targets" if fresh else None
    if rotate is not None:
        role, sources = rotate
        repo.rotate(role, sources)
        if role != "root":  # the role's metadata must now carry the new key's signature
            start = _lowest(start, role)
    elif not fresh and repo.near_expiry("root"):
        _renew_root(repo, outcome)
    outcome.root_version = repo.md["root"].signed.version

    published = repo.releases()
    latest = max(published, default=0)
    files = previous_files(repo, published[latest]) if latest else {}
    old = {n.split("/")[2][:-5] for n in files if n.startswith("triggers/")}
    new = [s for s in staged if s.tid not in old]
    for s in staged:
        name = f"triggers/{env}/{s.tid}.json"
        if s.tid in old and files[name] != s.document:
            raise AgentError(f"trigger {s.tid} for {env} differs from the one published in "
                             f"release {latest}; a published trigger cannot change")
    outcome.version = latest
    if new:
        version = latest + 1
        for s in new:
            files[f"triggers/{env}/{s.tid}.json"] = s.document
            files.update({f"objects/{sha[:2]}/{sha}": body for sha, body in s.payloads.items()})
        manifest = {
            "format": release.FORMAT, "env": env, "system": system, "version": version,
            "created": trig.format_time(now),
            "triggers": sorted(old | {s.tid for s in new}),
            "new_triggers": sorted(s.tid for s in new),
            "defects": sorted({d for s in new for d in s.defects}),
            "restart": any(s.restart for s in new),
        }
        repo.add_release(release.target_path(env, version), release.build(manifest, files),
                         manifest)
        outcome.version, outcome.new_triggers = version, tuple(sorted(s.tid for s in new))
        start = "targets"
    else:
        for role in ("targets", "snapshot", "timestamp"):
            if repo.near_expiry(role):
                start = _lowest(start, role)
                break
    if start:
        repo.chain(start)
    repo.flush()
    return outcome


def _renew_root(repo: Repository, outcome: Outcome) -> None:
    """Re-sign root past half its life; with its keys offline, a warning until it expires."""
    root = repo.md["root"].signed
    try:
        signers = repo.signers_of("root")
    except AgentError as exc:
        if root.expires <= repo.now:
            raise
        outcome.warnings.append(f"root v{root.version} expires {trig.format_time(root.expires)}"
                                f" and cannot be renewed now: {exc}")
        return
    root.version += 1
    root.expires = repo.expiry("root")
    repo.write_root(signers)


def _lowest(a: str | None, b: str) -> str:
    order = ["targets", "snapshot", "timestamp"]
    return b if a is None else order[min(order.index(a), order.index(b))]
