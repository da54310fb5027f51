"""Reads a page runs at once on ClickHouse (`together`) give what they give one after another: each in the
project its request is confined to, a failure raised to the caller, a read inside a read run in place."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.store.test_id_lookups import _span

from llmlens.query._common import together
from llmlens.store import Store, open_store
from llmlens.store._protocol import SqlFailed
from llmlens.store._scoping import current_project
from llmlens.store.clickhouse import ClickHouseStore

pytestmark = pytest.mark.clickhouse

T = f"{0xD:032x}"


@pytest.fixture
def store(clickhouse_url: str, tmp_path: Path) -> Iterator[ClickHouseStore]:
    url = clickhouse_url.rsplit("/", 1)[0] + f"/together_{tmp_path.name[-8:].replace('-', '_')}"
    opened = open_store(url, tmp_path)
    assert isinstance(opened, ClickHouseStore)
    # 3 spans in "default", 5 in "other"
    spans = [_span(0x200 + i, 1, trace=T, project="default" if i < 3 else "other") for i in range(8)]
    opened.write(spans, [])
    yield opened
    opened.close()


def _count(store: Store) -> int:
    return int(store.query("SELECT COUNT(*) FROM spans").rows[0][0])


def test_each_read_keeps_the_project_of_its_request(store: ClickHouseStore) -> None:
    threads: set[str] = set()

    def read(view: Store) -> int:
        threads.add(threading.current_thread().name)
        return _count(view)

    for project, n in (("default", 3), ("other", 5)):
        token = current_project.set(project)  # a request confined to the project, as the server runs it
        try:
            assert together(store, *[lambda: read(store) for _ in range(6)]) == [n] * 6
        finally:
            current_project.reset(token)
        scoped = store.scoped(project)
        assert together(scoped, *[lambda scoped=scoped: read(scoped) for _ in range(6)]) == [n] * 6
    assert any(name.startswith("llmlens-ch-read") for name in threads), "the reads ran on the caller's thread"


def test_a_failed_read_is_raised(store: ClickHouseStore) -> None:
    with pytest.raises(SqlFailed):
        together(store, lambda: _count(store), lambda: store.query("SELECT FROM WHERE"))
    assert together(store, lambda: _count(store), lambda: 1) == [8, 1]  # the workers go on


def test_a_read_inside_a_read_runs_in_place(store: ClickHouseStore) -> None:
    def nested() -> list[int]:
        return list(together(store, *[lambda: _count(store) for _ in range(6)]))

    assert together(store, *[nested for _ in range(6)]) == [[8] * 6] * 6
