"""Two llmlens servers, each on its own node of a replicated ClickHouse cluster: what is ingested through
either is read alike through both, stored once (also when re-sent through the other server), on both
nodes, with rollups equal to a raw recount."""

from __future__ import annotations

from typing import Any

import pytest
from tests.store.test_clickhouse_rollups import assert_rollups_equal_raw

from llmlens.store.clickhouse import ClickHouseStore

from ._cluster import NODES, wait_until
from .conftest import ClusterEnv

pytestmark = [pytest.mark.clickhouse, pytest.mark.slow, pytest.mark.timeout(300)]

PROJECT = "two-servers"


def _events(tag: str, count: int) -> list[dict[str, Any]]:
    """The article's log lines: LLM calls with users and features, plus a tool call and feedback each."""
    out: list[dict[str, Any]] = []
    for i in range(count):
        out.append(
            {
                "model": ["gpt-4o", "gpt-4o-mini"][i % 2],
                "prompt": f"{tag} question {i}",
                "response": f"{tag} answer {i}",
                "prompt_tokens": 20 + i,
                "completion_tokens": 5 + i % 7,
                "latency_ms": 200.0 + 13 * i,
                "message_id": f"{tag}-m{i}",
                "metadata": {"user_id": f"u{i % 4}", "feature": ["chat", "search"][i % 2]},
            }
        )
        out.append({"tool_name": "search_web", "args": {"q": f"{tag} {i}"}, "latency_ms": 40.0, "success": i % 5 != 0})
        out.append({"message_id": f"{tag}-m{i}", "feedback_type": ["thumbs_up", "thumbs_down"][i % 3 == 0]})
    return out


def _sql(env: ClusterEnv, node: str, query: str) -> list[list[Any]]:
    with env.api(node, PROJECT) as api:
        answer = api.post("/api/v1/sql", json={"query": query})
    assert answer.status_code == 200, answer.text
    rows: list[list[Any]] = answer.json()["rows"]
    return rows


COUNTS = (
    "SELECT (SELECT COUNT(*) FROM llm_logs) AS calls, (SELECT COUNT(DISTINCT span_id) FROM llm_logs) AS distinct_calls, "
    "(SELECT COUNT(*) FROM tool_logs) AS tools, (SELECT COUNT(*) FROM feedback_events) AS feedback, "
    "(SELECT COUNT(DISTINCT feedback_id) FROM feedback_events) AS distinct_feedback"
)


def test_ingest_through_both_servers_read_through_either(cluster_env: ClusterEnv) -> None:
    env = cluster_env
    sent = {"ch1": _events("one", 40), "ch2": _events("two", 30)}
    for node, events in sent.items():
        with env.api(node, PROJECT) as api:
            answer = api.post("/api/v1/ingest", json=events)
        assert answer.status_code == 200, answer.text
        assert answer.json()["accepted"] == len(events) and not answer.json()["rejected"]
    # A batch re-sent through the other server (a client retrying after a lost answer) is stored once.
    with env.api("ch2", PROJECT) as api:
        assert api.post("/api/v1/ingest", json=sent["ch1"]).status_code == 200

    expected = [70, 70, 70, 70, 70]
    for node in NODES:
        assert _sql(env, node, COUNTS) == [expected], f"through the server on {node}"

    # Each node holds every span once (its replica of the one shard), after replication.
    spans_per_node = f"SELECT count(), uniqExact(span_id) FROM llmlens_spans_local WHERE project = '{PROJECT}'"
    for node in NODES:
        wait_until(
            lambda node=node: env.cluster.local_count(node, spans_per_node.replace("count(), ", "")) == 140,
            f"{node} holds the project's 140 spans",
        )
        client = env.cluster.client(node)
        try:
            assert client.execute(spans_per_node) == [(140, 140)], node
        finally:
            client.disconnect()

    # Dashboards read the rollups, equal on both servers and to the raw rows.
    reports = []
    for node in NODES:
        with env.api(node, PROJECT) as api:
            answer = api.get("/api/v1/overview", params={"range": "24h"})
        assert answer.status_code == 200, answer.text
        reports.append(answer.json()["overview"]["totals"])
    # Each node sums the shard in its own order, so float totals may differ in the last bit.
    costs = [report.pop("cost_usd") for report in reports]
    assert costs[0] == pytest.approx(costs[1], rel=1e-12) and costs[0] > 0
    assert reports[0] == reports[1]
    assert reports[0]["llm_calls"] == 70
    store = ClickHouseStore(env.cluster.url("ch2"))
    try:
        assert_rollups_equal_raw(store, "a cluster, after ingest through two servers")
    finally:
        store.close()
