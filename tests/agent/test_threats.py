"""TUF's threat list, each against real metadata served over loopback and the real ngclient.

In every case check or download raises one AgentError line "cannot update ENV from URL:
..." and nothing reaches a staging directory or the download directory.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from agent_kit import ENV, Kit, hours, new_key, staged

from dasct.agent import AgentError, client, publish, release

LINE = r"^cannot update production from http://127\.0\.0\.1:\d+/production/metadata/: "


def refused(kit: Kit, call: Callable[[], Any], what: str) -> str:
    """call raises one AgentError line naming what; the download dir stays empty."""
    with pytest.raises(AgentError) as err:
        call()
    message = str(err.value)
    assert "\n" not in message
    import re
    assert re.match(LINE, message), message
    assert re.search(what, message), message
    dl = kit.tmp / "dl"
    assert not dl.exists() or not [p for p in dl.iterdir() if p.suffix == ".tar"]
    return message


def two_releases(kit: Kit) -> tuple[client.Source, release.Release]:
    kit.publish(staged("E1", b"one"))
    kit.publish(staged("E2", b"two"))
    src = kit.source()
    found = client.check(src, installed=0)
    assert found is not None and found.version == 2
    return src, found


def tar_url(found: release.Release) -> str:
    return f"{ENV}/targets/{ENV}/releases/{found.sha256}.{found.version}.tar"


# --------------------------------------------------------------------------- rollback


def test_rollback_to_older_metadata_is_refused(kit: Kit) -> None:
    kit.publish(staged("E1", b"one"))
    old_timestamp = (kit.meta / "timestamp.json").read_bytes()
    kit.publish(staged("E2", b"two"))
    src = kit.source()
    assert client.check(src, installed=0) is not None  # trusts timestamp v2
    kit.server.substitutes[kit.url_path("timestamp.json")] = old_timestamp
    refused(kit, lambda: client.check(src, installed=0), "rollback refused")


def test_rollback_to_an_older_release_is_refused(kit: Kit) -> None:
    kit.publish(staged("E1", b"one"))
    first = client.check(kit.source("peek"), installed=0)
    assert first is not None
    src, found = two_releases(kit)
    first_tar = (kit.tmp / "served" / tar_url(first)).read_bytes()
    kit.server.substitutes[tar_url(found)] = first_tar  # release 1 where 2 is expected
    refused(kit, lambda: client.download(src, found, kit.tmp / "dl"),
            "more data than the signed length|length or hash differs")


# --------------------------------------------------------------------------- freeze


def test_an_expired_timestamp_is_refused(kit: Kit) -> None:
    kit.publish(staged("E1", b"one"), now=kit.now - hours(48))
    refused(kit, lambda: client.check(kit.source(), installed=0), "expired metadata")


def test_a_mirror_that_withholds_updates_until_its_timestamp_expires(kit: Kit) -> None:
    # The agent trusted this timestamp while it was valid; the mirror serves it on and on.
    kit.publish(staged("E1", b"one"), now=kit.now - hours(48))
    src = kit.source()
    src.metadata_dir.mkdir(parents=True)
    for name in ("root.json", "timestamp.json"):
        shutil.copy(kit.meta / name, src.metadata_dir / name)
    shutil.copy(kit.meta / "1.snapshot.json", src.metadata_dir / "snapshot.json")
    shutil.copy(kit.meta / "1.targets.json", src.metadata_dir / "targets.json")
    refused(kit, lambda: client.check(src, installed=0), "expired metadata")


def test_a_mirror_that_withholds_the_timestamp_is_not_current(kit: Kit) -> None:
    kit.publish(staged("E1", b"one"))
    src = kit.source()
    assert client.check(src, installed=1) is None
    kit.server.withheld.add(kit.url_path("timestamp.json"))
    refused(kit, lambda: client.check(src, installed=1), r"HTTP 404 for http://.*/timestamp\.json")


def test_a_mirror_that_withholds_the_release_is_reported(kit: Kit) -> None:
    src, found = two_releases(kit)
    kit.server.withheld.add(tar_url(found))
    refused(kit, lambda: client.download(src, found, kit.tmp / "dl"), "HTTP 404")


def test_an_unreachable_repository_is_not_current(kit: Kit) -> None:
    kit.publish(staged("E1", b"one"))
    src = replace(kit.source(), metadata_url="http://127.0.0.1:9/production/metadata/")
    with pytest.raises(AgentError, match=r"cannot update production from http://127\.0\.0\.1:9/"
                       r".*download failed"):
        client.check(src, installed=0)


# --------------------------------------------------------------------------- mix-and-match


def _side_publish(kit: Kit) -> Path:
    """Another publish from the same state and keys: release 2 with other content."""
    side = kit.tmp / "side"
    shutil.copytree(kit.tmp / "served", side)
    cfg = replace(kit.cfg, repository=str(side))
    publish.publish(cfg, env=ENV, system="app", staged=[*kit.staged, staged("X2", b"evil")],
                    base=kit.base, now=kit.now)
    return side / ENV / "metadata"


@pytest.mark.parametrize("role", ["snapshot", "targets"])
def test_metadata_from_another_publish_is_refused(kit: Kit, role: str) -> None:
    kit.publish(staged("E1", b"one"))
    src = kit.source()
    assert client.check(src, installed=0) is not None
    side = _side_publish(kit)
    kit.publish(staged("E2", b"two"))
    kit.server.substitutes[kit.url_path(f"2.{role}.json")] = (side / f"2.{role}.json").read_bytes()
    refused(kit, lambda: client.check(src, installed=1),
            "length or hash differs|more data than the signed length")


# --------------------------------------------------------------------------- arbitrary installation


@pytest.mark.parametrize("change", ["same length", "shorter"])
def test_a_payload_that_is_not_the_signed_one_is_refused(kit: Kit, change: str) -> None:
    src, found = two_releases(kit)
    good = (kit.tmp / "served" / tar_url(found)).read_bytes()
    bad = good[:-10] + b"!" * 10 if change == "same length" else good[:-512]
    kit.server.substitutes[tar_url(found)] = bad
    refused(kit, lambda: client.download(src, found, kit.tmp / "dl"), "length or hash differs")


def test_a_release_whose_hash_changed_since_the_check_is_refused(kit: Kit) -> None:
    src, found = two_releases(kit)
    forged = replace(found, sha256="0" * 64)
    refused(kit, lambda: client.download(src, forged, kit.tmp / "dl"),
            "release 2 is no longer the one checked")


# --------------------------------------------------------------------------- endless data


def test_oversized_timestamp_is_refused(kit: Kit) -> None:
    kit.publish(staged("E1", b"one"))
    kit.server.oversize[kit.url_path("timestamp.json")] = 20_000  # ngclient's bound: 16 KiB
    refused(kit, lambda: client.check(kit.source(), installed=0),
            "more data than the signed length allows")


def test_oversized_snapshot_beyond_its_signed_length_is_refused(kit: Kit) -> None:
    kit.publish(staged("E1", b"one"))
    kit.server.oversize[kit.url_path("1.snapshot.json")] = 10
    refused(kit, lambda: client.check(kit.source(), installed=0),
            "more data than the signed length allows")


def test_a_payload_longer_than_declared_is_cut_and_refused(kit: Kit) -> None:
    src, found = two_releases(kit)
    kit.server.oversize[tar_url(found)] = 50_000_000
    refused(kit, lambda: client.download(src, found, kit.tmp / "dl"),
            "more data than the signed length allows")


def test_a_release_larger_than_max_release_bytes_is_not_offered(kit: Kit) -> None:
    kit.publish(staged("E1", b"x" * 5000))
    src = replace(kit.source(), max_release_bytes=4096)
    refused(kit, lambda: client.check(src, installed=0),
            r"release 1 is \d+ bytes, more than the 4096 allowed")


# --------------------------------------------------------------------------- wrong software


def test_a_release_for_another_system_is_refused(kit: Kit) -> None:
    publish.publish(kit.cfg, env=ENV, system="other-product", staged=[staged("E1", b"one")],
                    base=kit.base, now=kit.now)
    refused(kit, lambda: client.check(kit.source(), installed=0),
            "release 1 is for other-product production, not app production "
            r"\(wrong software\)")


def test_a_release_from_another_repository_is_refused(kit: Kit) -> None:
    # The model repository, with its own keys, served where production's should be.
    kit.publish(staged("E1", b"one"))
    src = kit.source()
    assert client.check(src, installed=0) is not None
    other = replace(kit.cfg, repository=str(kit.tmp / "other"), **{
        role: replace(getattr(kit.cfg, role), keys=(new_key(kit.base / "keys", f"o{role}"),))
        for role in ("root", "targets", "snapshot", "timestamp")})
    publish.publish(other, env=ENV, system="app", staged=[staged("E1", b"one"),
                                                          staged("E2", b"two")],
                    base=kit.base, now=kit.now)
    for name in ("timestamp.json", "2.snapshot.json", "2.targets.json"):
        path = kit.tmp / "other" / ENV / "metadata" / name
        if path.exists():
            kit.server.substitutes[kit.url_path(name)] = path.read_bytes()
    refused(kit, lambda: client.check(src, installed=1), "not signed by enough trusted keys")


# --------------------------------------------------------------------------- compromised key


def test_a_compromised_key_below_the_threshold_is_not_enough(kit: Kit) -> None:
    second = new_key(kit.base / "keys", "timestamp-b")
    kit.cfg = replace(kit.cfg, timestamp=replace(
        kit.cfg.timestamp, keys=(*kit.cfg.timestamp.keys, second), threshold=2))
    kit.publish(staged("E1", b"one"))
    src = kit.source()
    assert client.check(src, installed=0) is not None
    md = kit.md("timestamp.json")
    assert len(md.signatures) == 2
    md.signed.version += 1
    md.signed.expires = md.signed.expires + hours(24 * 30)  # the attacker's freeze
    kit.server.substitutes[kit.url_path("timestamp.json")] = kit.resign(md, kit.signer("timestamp"))
    refused(kit, lambda: client.check(src, installed=0), "not signed by enough trusted keys")
