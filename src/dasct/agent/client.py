"""The agent's TUF client: is there a newer release, and fetch it verified.

Built on python-tuf's `ngclient.Updater`: every check refreshes the top-level metadata
(root N+1, timestamp, and snapshot and targets only when the timestamp names new ones), so
a check that finds nothing new costs two small requests. Releases are found by asking the
verified targets role for `ENV/releases/N.tar` with N = installed+1, installed+2, ...
(local look-ups, no fetch): versions are consecutive and never pruned (publish.py).
Every failure, whatever the server did, is one AgentError line "cannot update ENV from
URL: ..."; the agent never says it is current when it could not check.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dasct.agent import AgentError, require
from dasct.agent.release import Release, target_path
from dasct.errors import ConfigError

if TYPE_CHECKING:
    from dasct.config import Config

CHUNK = 64 << 10  # bytes per read when the bandwidth is capped


@dataclass(frozen=True)
class Source:
    """Where one environment's releases come from, and what the agent trusts."""

    env: str
    system: str
    metadata_url: str
    targets_url: str
    metadata_dir: Path  # the trusted-metadata cache (ngclient's metadata_dir)
    max_release_bytes: int
    # The root.json shipped with the product; seeds metadata_dir when it has no root yet.
    trusted_root: Path | None = None

    @classmethod
    def from_config(cls, cfg: Config, base: Path) -> Source:
        """The [agent] source; relative paths against base, the cache under base/.dasct."""
        agent = cfg.agent
        missing = [k for k in ("environment", "metadata_url", "trusted_root")
                   if not getattr(agent, k)]
        if missing:
            raise ConfigError(f"{cfg.source}: [agent] {missing[0]} is not set")
        metadata_url = agent.metadata_url.rstrip("/") + "/"
        targets_url = agent.targets_url or metadata_url.rstrip("/").rsplit("/", 1)[0] + "/targets/"
        root = Path(agent.trusted_root)
        return cls(
            env=agent.environment, system=cfg.migrate.system, metadata_url=metadata_url,
            targets_url=targets_url.rstrip("/") + "/",
            metadata_dir=base / ".dasct" / "agent" / agent.environment / "metadata",
            max_release_bytes=agent.max_release_mib << 20,
            trusted_root=root if root.is_absolute() else base / root,
        )


def _fetcher(bytes_per_second: int) -> Any:
    from tuf.ngclient.urllib3_fetcher import Urllib3Fetcher

    class Fetcher(Urllib3Fetcher):
        """Urllib3Fetcher that remembers the last URL (for the message) and, when
        bytes_per_second > 0, sleeps between chunks to stay under it."""

        last_url = ""

        def _fetch(self, url: str) -> Iterator[bytes]:
            self.last_url = url
            chunks = super()._fetch(url)
            return self._paced(chunks) if bytes_per_second > 0 else chunks

        def _paced(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
            start, sent = time.monotonic(), 0
            for chunk in chunks:
                yield chunk
                sent += len(chunk)
                ahead = sent / bytes_per_second - (time.monotonic() - start)
                if ahead > 0:
                    time.sleep(ahead)

    if bytes_per_second > 0:
        return Fetcher(chunk_size=min(CHUNK, max(1024, bytes_per_second // 4)))
    return Fetcher()


def _what(exc: BaseException, url: str = "") -> str:
    from tuf.api import exceptions as tufx

    text = str(exc) or type(exc).__name__
    # What each verification failure means for the person reading the line.
    meanings = ((tufx.ExpiredMetadataError, "expired metadata, a frozen or stale mirror"),
                (tufx.BadVersionNumberError, "rollback refused"),
                (tufx.UnsignedMetadataError, "not signed by enough trusted keys"),
                (tufx.LengthOrHashMismatchError, "length or hash differs from the signed "
                                                 "metadata"),
                (tufx.DownloadLengthMismatchError, "more data than the signed length allows"))
    for kind, meaning in meanings:
        if isinstance(exc, kind):
            return f"{meaning} ({text})"
    if isinstance(exc, tufx.DownloadHTTPError):
        return f"the server answered HTTP {exc.status_code}{f' for {url}' if url else ''}"
    if isinstance(exc, tufx.DownloadError):
        cause = exc.__cause__
        return f"download failed ({text}{f': {cause}' if cause else ''})"
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc} {exc.filename or ''}".strip()
    return text


class _Session:
    """One Updater, its errors translated (used as a context manager)."""

    def __init__(self, source: Source, *, bytes_per_second: int = 0,
                 target_dir: Path | None = None) -> None:
        self.source = source
        self.bytes_per_second = bytes_per_second
        self.target_dir = target_dir
        self.fetcher: Any = None

    def fail(self, what: str) -> AgentError:
        return AgentError(f"cannot update {self.source.env} from "
                          f"{self.source.metadata_url}: {what}")

    def what(self, exc: BaseException) -> str:
        return _what(exc, getattr(self.fetcher, "last_url", ""))

    def __enter__(self) -> Any:
        require()
        from tuf.ngclient.updater import Updater

        s = self.source
        try:
            s.metadata_dir.mkdir(parents=True, exist_ok=True)
            self.fetcher = _fetcher(self.bytes_per_second)
            bootstrap = None
            if not (s.metadata_dir / "root.json").is_file():
                if s.trusted_root is None:
                    raise self.fail(f"no trusted root in {s.metadata_dir}")
                bootstrap = s.trusted_root.read_bytes()
            updater = Updater(
                metadata_dir=str(s.metadata_dir), metadata_base_url=s.metadata_url,
                target_base_url=s.targets_url,
                target_dir=None if self.target_dir is None else str(self.target_dir),
                fetcher=self.fetcher, bootstrap=bootstrap)
            updater.refresh()
        except AgentError:
            raise
        except Exception as exc:  # everything from the server is hostile: one line
            raise self.fail(self.what(exc)) from None
        return updater

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        if exc is not None and not isinstance(exc, AgentError) and isinstance(exc, Exception):
            raise self.fail(self.what(exc)) from None


def refreshed(source: Source, *, target_dir: Path | None = None,
              bytes_per_second: int = 0) -> _Session:
    """A context manager giving a refreshed Updater of source, every error one AgentError.

    What check and download use; bench/tuf_conformance_client.py drives it directly.
    """
    return _Session(source, bytes_per_second=bytes_per_second, target_dir=target_dir)


def _release(session: _Session, updater: Any, version: int) -> Release | None:
    s = session.source
    path = target_path(s.env, version)
    info = updater.get_targetinfo(path)
    if info is None:
        return None
    try:
        release = Release.from_target(path, info)
    except AgentError as exc:
        raise session.fail(str(exc)) from None
    if (release.env, release.system) != (s.env, s.system):
        raise session.fail(f"release {version} is for {release.system} {release.env}, "
                           f"not {s.system} {s.env} (wrong software)")
    if release.length > s.max_release_bytes:
        raise session.fail(f"release {version} is {release.length} bytes, more than the "
                           f"{s.max_release_bytes} allowed (max_release_mib)")
    return release


def check(source: Source, *, installed: int) -> Release | None:
    """The newest release newer than installed, or None when installed is current."""
    session = _Session(source)
    with session as updater:
        newest = None
        version = installed + 1
        while (found := _release(session, updater, version)) is not None:
            newest, version = found, version + 1
        return newest


def download(source: Source, release: Release, dest_dir: Path, *,
             bytes_per_second: int = 0) -> Path:
    """Download release into dest_dir, verified against its signed length and hashes.

    A file already there that verifies is reused; bytes_per_second > 0 caps the rate.
    """
    session = _Session(source, bytes_per_second=bytes_per_second, target_dir=dest_dir)
    with session as updater:
        current = _release(session, updater, release.version)
        if current is None or current.sha256 != release.sha256:
            raise session.fail(f"release {release.version} is no longer the one checked")
        info = updater.get_targetinfo(release.target)
        dest_dir.mkdir(parents=True, exist_ok=True)
        final = dest_dir / f"{release.env}-{release.version}.tar"
        return fetch_target(updater, info, final)


def fetch_target(updater: Any, info: Any, final: Path) -> Path:
    """The target info verified into final: a cached copy that verifies is reused, else it
    is downloaded beside final and renamed only once ngclient verified it whole."""
    cached = updater.find_cached_target(info, str(final))
    if cached:
        return Path(cached)
    fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=".part")
    os.close(fd)
    try:
        updater.download_target(info, tmp)
        os.replace(tmp, final)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return final


