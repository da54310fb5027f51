"""Shared fixtures: a real llmlens server per module, the shared fixture folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.llmlens_server import LLMLensServer

REPO = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("LLMLENS_SHARED_DIR", REPO.parent / "shared"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LLMLensServer]:
    with LLMLensServer(tmp_path_factory.mktemp("llmlens-data")) as srv:
        yield srv


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[LLMLensServer]:
    with LLMLensServer(tmp_path / "data") as srv:
        yield srv


@pytest.fixture(scope="session")
def clickhouse_url() -> Iterator[str]:
    """A real ClickHouse server for the session. Skips when it is not installed, except in CI (fails)."""
    from tests.support.clickhouse_server import ClickHouseServer, clickhouse_binary

    if clickhouse_binary() is None:
        message = "clickhouse-server is not installed (scripts/setup-test-env.sh installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with ClickHouseServer() as ch:
        yield ch.url
