"""Store-test fixtures: ClickHouse 26 in process (chdb), beside the session's clickhouse-server 18.16."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.support.chdb_adapter import ChdbEngine


@pytest.fixture(scope="session")
def chdb_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChdbEngine]:
    """One chdb engine for the session (chdb runs one per process); tests use databases of their own."""
    try:
        from tests.support.chdb_adapter import ChdbEngine
    except ImportError as exc:
        pytest.fail(
            f"chdb is not installed ({exc}): install the test extra, `pip install -e '.[test]'` (make test does)"
        )
    engine = ChdbEngine(tmp_path_factory.mktemp("chdb"))
    yield engine
    engine.close()
