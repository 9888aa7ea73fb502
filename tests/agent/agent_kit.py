"""Helpers of the agent tests: keys, a publisher, a loopback server, a client source."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from tuf_server import TufServer

from dasct.agent import publish, tufkeys
from dasct.agent.client import Source
from dasct.agentconfig import PublishConfig, RoleKeys

# ngclient checks expiry against the real clock, so the publisher signs at the real now.
NOW = datetime.now(timezone.utc).replace(microsecond=0)
ENV, SYSTEM = "production", "app"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def staged(tid: str, *payloads: bytes, defects: Sequence[str] = ("PROJ-1",),
           restart: bool = False) -> publish.Staged:
    """A staged trigger as the publisher sees it (its document is opaque to publishing)."""
    doc = json.dumps({"id": tid, "environment": ENV, "payloads": [sha(p) for p in payloads]})
    return publish.Staged(tid=tid, document=doc.encode(), payloads={sha(p): p for p in payloads},
                          defects=tuple(defects), restart=restart)


def new_key(folder: Path, name: str) -> str:
    """A fresh Ed25519 PEM in folder; its file: source."""
    return tufkeys.new_key(folder / f"{name}.pem")


class Kit:
    """A publisher's repository in tmp/repo, served over loopback, and an agent's source."""

    def __init__(self, tmp: Path, server: TufServer) -> None:
        self.tmp, self.server = tmp, server
        self.base = tmp / "repo"
        (self.base / "keys").mkdir(parents=True)
        self.cfg = PublishConfig(repository=str(tmp / "served"), **{
            role: RoleKeys(keys=(new_key(self.base / "keys", role),))
            for role in tufkeys.ROLES})
        self.meta = tmp / "served" / ENV / "metadata"
        self.staged: list[publish.Staged] = []
        self.now = NOW

    def publish(self, *triggers: publish.Staged, now: datetime | None = None,
                rotate: tuple[str, Sequence[str]] | None = None) -> publish.Outcome:
        self.staged += triggers
        return publish.publish(self.cfg, env=ENV, system=SYSTEM, staged=self.staged,
                               base=self.base, now=now or self.now, rotate=rotate)

    def source(self, name: str = "agent", **changes: Any) -> Source:
        url = self.server.url + ENV
        src = Source(env=ENV, system=SYSTEM, metadata_url=f"{url}/metadata/",
                     targets_url=f"{url}/targets/", metadata_dir=self.tmp / name / "metadata",
                     max_release_bytes=1 << 20, trusted_root=self.meta / "1.root.json")
        return replace(src, **changes)

    def md(self, name: str) -> Any:
        from tuf.api.metadata import Metadata

        return Metadata.from_bytes((self.meta / name).read_bytes())

    def signer(self, role: str) -> Any:
        return tufkeys.signer(getattr(self.cfg, role).keys[0], self.base, role)

    def resign(self, md: Any, *signers: Any) -> bytes:
        """md signed by signers (replacing its signatures), as served bytes."""
        md.signatures.clear()
        for s in signers:
            md.sign(s, append=True)
        return bytes(md.to_bytes())

    def url_path(self, name: str) -> str:
        return f"{ENV}/metadata/{name}"


def hours(n: float) -> timedelta:
    return timedelta(hours=n)
