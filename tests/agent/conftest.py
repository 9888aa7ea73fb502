"""Fixtures of the agent tests (the helpers are in agent_kit.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_kit import Kit
from tuf_server import serving


@pytest.fixture
def kit(tmp_path: Path) -> Iterator[Kit]:
    with serving(tmp_path / "served") as server:
        yield Kit(tmp_path, server)
