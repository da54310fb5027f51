"""Shared fixtures: a real llmlens server per module, a real ClickHouse server per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.llmlens_server import LLMLensServer

pytest_plugins = ["tests._plugins.skip_audit"]


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
    """A real ClickHouse server for the session. Fails when it is not installed: the setup step installs it."""
    from tests.support.clickhouse_server import ClickHouseServer, clickhouse_binary

    if clickhouse_binary() is None:
        pytest.fail("clickhouse-server is not installed: run scripts/setup-test-env.sh (make test does)")
    with ClickHouseServer() as ch:
        yield ch.url
