from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from inventory_kit import Sample, build, copy
from pg_server import Server

from gitrepo import GitRepo


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """The URL of a PostgreSQL server's maintenance database (see pg_server.py)."""
    url = os.environ.get("DASCT_TEST_PG_URL")
    if url:
        yield url
        return
    server = Server()
    server.start()
    try:
        if server.url is None:
            reason = os.environ.get("DASCT_TEST_PG_SKIP_REASON") or server.reason
            if os.environ.get("CI"):
                pytest.fail(f"PostgreSQL is required in CI: {reason}")
            pytest.skip(f"no PostgreSQL server could be started: {reason}")
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_server_url: str) -> Iterator[str]:
    """A fresh, empty database on the test server; dropped afterwards."""
    import psycopg

    name = f"dasct_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield pg_server_url.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    """inventory_kit's sample of two real environments, built once per module (tests that
    change it use `sample`)."""
    return build(GitRepo(tmp_path_factory.mktemp("inventory") / "repo"))


@pytest.fixture
def sample(built: Sample, tmp_path: Path) -> Sample:
    """A private copy of the inventory sample."""
    return copy(built, tmp_path)
