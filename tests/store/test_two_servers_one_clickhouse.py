"""Two stateless llmlens servers in front of one ClickHouse: both ingest, both answer the same."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.support.llmlens_server import LLMLensServer

pytestmark = pytest.mark.clickhouse


def _calls(server_no: int, n: int) -> list[dict[str, object]]:
    return [
        {
            "type": "llm",
            "trace_id": f"{server_no:08x}{i:024x}",
            "span_id": f"{server_no:04x}{i:012x}",
            "model": "gpt-4o-mini",
            "prompt_tokens": 100,
            "completion_tokens": 20,
            "cost_usd": 0.01,
            "latency_ms": 100 + i,
            "user_id": f"user-{i % 3}",
            "feature": "chat",
        }
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def servers(clickhouse_url: str) -> Iterator[tuple[LLMLensServer, LLMLensServer]]:
    store = clickhouse_url.rsplit("/", 1)[0] + "/two_servers"
    with LLMLensServer(args=["--store", store]) as a, LLMLensServer(args=["--store", store]) as b:
        yield a, b


def test_both_servers_ingest_into_one_store(servers: tuple[LLMLensServer, LLMLensServer]) -> None:
    a, b = servers
    from_a, from_b = _calls(1, 300), _calls(2, 200)
    assert a.ingest({"events": from_a})["rejected"] == []
    assert b.ingest({"events": from_b})["rejected"] == []
    # A client that retries through the other server (its first answer was lost) adds nothing.
    assert b.ingest({"events": from_a[:50]})["rejected"] == []
    for srv in servers:
        rows = srv.sql("SELECT COUNT(*) AS n, SUM(cost_usd) AS cost FROM llm_logs")
        assert rows[0]["n"] == 500
        assert rows[0]["cost"] == pytest.approx(5.0)
        per_user = srv.sql("SELECT user_id, COUNT(*) AS n FROM llm_logs GROUP BY user_id ORDER BY user_id")
        assert [r["n"] for r in per_user] == [167, 167, 166]
