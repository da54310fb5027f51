"""The 13 example queries of docs/questions.md, verbatim, through the SQL API of a llmlens server on the
cluster, answer what they answer on one ClickHouse server holding the same traffic (three days of demo
traffic, the article's log lines, then late context, which on the cluster runs as ON CLUSTER mutations)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.store.test_clickhouse_rollups import assert_rollups_equal_raw
from tests.store.test_clickhouse_versions_agree import example_queries, traffic
from tests.store.test_dashboard_on_both_backends import _assert_close
from tests.support.llmlens_server import LLMLensServer

from llmlens.codec.native import DecodedEvents
from llmlens.store.clickhouse import ClickHouseStore

from .conftest import ClusterEnv

pytestmark = [pytest.mark.clickhouse, pytest.mark.slow, pytest.mark.timeout(400)]

PROJECT = "questions"


def _fill(store: ClickHouseStore, decoded: DecodedEvents) -> None:
    for start in range(0, len(decoded.spans), 5000):
        store.write(decoded.spans[start : start + 5000], [])
    store.write([], decoded.feedback)
    # A late root span's context reaches calls already stored (trace_context.py): a mutation, and the
    # rollups follow it.
    llm = sorted(s.span_id for s in decoded.spans if s.kind == "llm")
    assert store.update_span_fields(PROJECT, {i: {"feature": "late"} for i in llm[::7]}) > 0


@pytest.fixture(scope="module")
def one_server(clickhouse_url: str, cluster_env: ClusterEnv) -> Iterator[LLMLensServer]:
    """The same traffic in a cluster project and in a single ClickHouse server behind its own llmlens."""
    decoded = traffic()
    for record in (*decoded.spans, *decoded.feedback):
        record.project = PROJECT
    single = f"{clickhouse_url.rsplit('/', 1)[0]}/questions_{uuid.uuid4().hex[:10]}"
    for url in (cluster_env.cluster.url("ch1"), single):
        store = ClickHouseStore(url)
        try:
            _fill(store, decoded)
        finally:
            store.close()
    with LLMLensServer(args=["--store", single]) as server:
        yield server


def _rows(client: httpx.Client, sql: str) -> tuple[list[str], list[Any]]:
    answer = client.post("/api/v1/sql", json={"query": sql})
    assert answer.status_code == 200, f"{sql}\n{answer.text}"
    doc = answer.json()
    ordered = "ORDER BY" in re.sub(r"\([^()]*\)", "", sql)  # the query's own ORDER BY, not WITHIN GROUP's
    return doc["columns"], doc["rows"] if ordered else sorted(doc["rows"], key=repr)


def test_the_thirteen_example_queries_on_the_cluster(cluster_env: ClusterEnv, one_server: LLMLensServer) -> None:
    queries = example_queries()
    assert len(queries) == 13
    single = httpx.Client(base_url=one_server.url, headers={"X-LLMLens-Project": PROJECT}, timeout=60)
    answered = 0
    with cluster_env.api("ch2", PROJECT) as on_cluster, single:
        for sql in queries:
            columns, rows = _rows(on_cluster, sql)
            expected_columns, expected = _rows(single, sql)
            assert columns == expected_columns, sql
            _assert_close(rows, expected, sql.splitlines()[0])
            answered += bool(rows)
    assert answered == 13, "every example query found rows"


def test_rollups_follow_late_context_on_the_cluster(cluster_env: ClusterEnv, one_server: LLMLensServer) -> None:
    store = ClickHouseStore(cluster_env.cluster.url("ch2"))
    try:
        late = store.query(f"SELECT SUM(calls) FROM store.rollup_day WHERE project = '{PROJECT}' AND feature = 'late'")
        assert late.rows[0][0] > 0
        assert_rollups_equal_raw(store, "a cluster, after late context (ON CLUSTER mutations)")
    finally:
        store.close()
