"""client.py beyond the threats: its source from [agent], what a check costs, the cap."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from agent_kit import ENV, Kit, staged

from dasct import config
from dasct.agent import client
from dasct.errors import ConfigError


def test_source_from_config(tmp_path: Path) -> None:
    (tmp_path / ".dasct.toml").write_text(
        '[migrate]\nsystem = "app"\n[agent]\nenvironment = "production"\n'
        'metadata_url = "https://u.example.com/production/metadata"\n'
        'trusted_root = "root.json"\nmax_release_mib = 2\n')
    src = client.Source.from_config(config.load(tmp_path), tmp_path)
    assert src.metadata_url == "https://u.example.com/production/metadata/"
    assert src.targets_url == "https://u.example.com/production/targets/"
    assert (src.trusted_root, src.max_release_bytes) == (tmp_path / "root.json", 2 << 20)
    assert src.metadata_dir == tmp_path / ".dasct" / "agent" / "production" / "metadata"
    (tmp_path / ".dasct.toml").write_text('[agent]\nenvironment = "production"\n')
    with pytest.raises(ConfigError, match=r"\[agent\] metadata_url is not set"):
        client.Source.from_config(config.load(tmp_path), tmp_path)


def test_nothing_new_costs_the_next_root_and_the_timestamp(kit: Kit) -> None:
    kit.publish(staged("E1", b"one"))
    src = kit.source()
    assert client.check(src, installed=0) is not None
    kit.server.requests.clear()
    assert client.check(src, installed=1) is None
    assert dict(kit.server.requests) == {f"{ENV}/metadata/2.root.json": 1,
                                         f"{ENV}/metadata/timestamp.json": 1}


def test_the_bandwidth_cap_paces_the_download(kit: Kit) -> None:
    import os
    kit.publish(staged("E1", os.urandom(300_000)))
    src = kit.source()
    found = client.check(src, installed=0)
    assert found is not None
    start = time.monotonic()
    path = client.download(src, found, kit.tmp / "dl", bytes_per_second=1_000_000)
    assert time.monotonic() - start >= 0.25  # ~300 kB at 1 MB/s
    assert path.stat().st_size == found.length
    assert [p.name for p in (kit.tmp / "dl").iterdir()] == [path.name]  # no .part left
