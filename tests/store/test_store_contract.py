"""The Store contract, run on every backend: DuckDB (a file) and ClickHouse (a real server)."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llmlens.model import Feedback, Span
from llmlens.store import SPAN_COLUMNS, SqlFailed, SqlRejected, Store, open_store

NOW_US = (int(time.time()) - 3600) * 1_000_000 + 123_456


@pytest.fixture(params=["duckdb", pytest.param("clickhouse", marks=pytest.mark.clickhouse)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "duckdb":
        opened = open_store(f"duckdb://{tmp_path / 'contract.duckdb'}", tmp_path)
    else:
        base: str = request.getfixturevalue("clickhouse_url")
        # A database per test keeps tests independent on the one session server.
        opened = open_store(base.rsplit("/", 1)[0] + f"/contract_{uuid.uuid4().hex[:12]}", tmp_path)
    try:
        yield opened
    finally:
        opened.close()


def _timestamp_resolution_us(store: Store) -> int:
    features = getattr(store, "features", None)
    if features is not None and not features.datetime64:
        return 1_000_000  # ClickHouse 18.16: DateTime has whole seconds
    return 1


def full_span(span_id: str = "full", project: str = "default") -> Span:
    return Span(
        trace_id="trace-1",
        span_id=span_id,
        kind="llm",
        name="chat gpt-4o",
        project=project,
        parent_span_id="parent-1",
        start_us=NOW_US,
        latency_ms=812.25,
        status="ok",
        error_type="rate_limit",
        error_message='it\'s "quoted" and unicode: é✓',
        service="api",
        environment="prod",
        user_id="user-1",
        session_id="session-1",
        feature="chat",
        message_id="msg-1",
        provider="openai",
        model="gpt-4o",
        response_model="gpt-4o-2024-08-06",
        prompt_tokens=1200,
        completion_tokens=300,
        total_tokens=1500,
        cached_tokens=100,
        cache_write_tokens=5,
        reasoning_tokens=7,
        cost_usd=0.0123,
        computed_cost_usd=0.0125,
        cost_source="sent",
        price_version="2026-01",
        ttft_ms=120.5,
        tokens_per_second=55.5,
        streamed=True,
        temperature=0.2,
        max_tokens=512,
        finish_reason="stop",
        request_params={"temperature": 0.2, "stream": True},
        tools=[{"name": "search", "parameters": {"type": "object"}}],
        tool_calls=[{"id": "c1", "name": "search", "arguments": {"q": "x"}}],
        template_id="support_answer",
        template_version="v5",
        variables={"language": "python"},
        prompt="hello\nworld",
        response="hi",
        input_messages=[{"role": "user", "content": "hello"}],
        output_messages=[{"role": "assistant", "content": "hi"}],
        tool_name="search",
        tool_args={"q": "x"},
        tool_result={"n": 3},
        tool_success=False,
        retrieval_query="what",
        documents=[{"id": "d1", "content": "c", "score": 0.5}],
        http_method="POST",
        http_route="/chat",
        http_status=200,
        http_request_bytes=1000,
        http_response_bytes=2000,
        cache_hit=False,
        cost_saved_usd=0.001,
        blocked=False,
        replay_of="orig-1",
        metadata={"tier": "pro", "nested": {"a": [1, 2]}},
        attributes={"gen_ai.system": "openai"},
    )


def empty_span(span_id: str = "empty", project: str = "default") -> Span:
    return Span(trace_id="trace-2", span_id=span_id, kind="tool", project=project, start_us=NOW_US + 5_000_000)


def _as_us(value: Any) -> int:
    assert isinstance(value, dt.datetime), value
    delta = value.replace(tzinfo=None) - dt.datetime(1970, 1, 1)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _assert_column(store: Store, span: Span, col: str, kind: str, attr: str, got: Any) -> None:
    want = getattr(span, attr)
    if kind == "timestamp":
        resolution = _timestamp_resolution_us(store)
        assert _as_us(got) == want - want % resolution, col
    elif kind == "json":
        if want is None or (col == "attributes" and not want):
            assert got is None, col
        else:
            assert json.loads(got) == want, col
    elif kind == "float" and want is not None:
        assert got == pytest.approx(want), col
    elif kind == "bool" and want is not None:
        assert got is want or got == int(want), col
    else:
        assert got == want, col


def test_every_column_reads_back(store: Store) -> None:
    spans = [full_span(), empty_span()]
    result = store.write(spans, [])
    assert (result.spans_written, result.spans_duplicate) == (2, 0)
    rows = store.query("SELECT * FROM spans WHERE project = ? ORDER BY span_id", ["default"]).dicts()
    assert [r["span_id"] for r in rows] == ["empty", "full"]
    by_id = {r["span_id"]: r for r in rows}
    for span in spans:
        for col, kind, attr in SPAN_COLUMNS:
            _assert_column(store, span, col, kind, attr, by_id[span.span_id][col])


def test_views_show_the_article_columns(store: Store) -> None:
    store.write([full_span()], [Feedback("fb-1", "msg-1", "thumbs_up", NOW_US, user_id="user-1")])
    llm = store.user_sql("SELECT * FROM llm_logs", project="default").dicts()
    assert len(llm) == 1
    assert llm[0]["user_satisfaction"] == pytest.approx(1.0)
    assert json.loads(llm[0]["metadata"])["tier"] == "pro"
    assert llm[0]["streamed"] is True
    tools = store.user_sql("SELECT tool_name, args, result, success, error FROM tool_logs", project="default")
    assert tools.rows == []  # the full span is an LLM call
    feedback = store.user_sql("SELECT feature, feedback_type FROM feedback_events", project="default").rows
    assert feedback == [["chat", "thumbs_up"]]


def test_a_resent_batch_is_written_once(store: Store) -> None:
    batch = [full_span("a"), full_span("b"), empty_span("c")]
    assert store.write(batch, []).spans_written == 3
    again = store.write(batch, [])
    assert (again.spans_written, again.spans_duplicate) == (0, 3)
    # The same span id in another project is another span.
    assert store.write([full_span("a", project="other")], []).spans_written == 1
    # Duplicates inside one batch count once.
    inner = store.write([empty_span("d"), empty_span("d")], [])
    assert (inner.spans_written, inner.spans_duplicate) == (1, 1)
    counts = store.query("SELECT project, COUNT(*) AS n FROM spans GROUP BY project ORDER BY project").rows
    assert counts == [["default", 4], ["other", 1]]


def test_feedback_is_deduplicated_on_its_id(store: Store) -> None:
    fb = [
        Feedback("f1", "m1", "thumbs_up", NOW_US, feedback_text="great", metadata={"k": 1}),
        Feedback("f2", "m1", "thumbs_down", NOW_US + 1),
    ]
    first = store.write([], fb)
    assert (first.feedback_written, first.feedback_duplicate) == (2, 0)
    second = store.write([], [*fb, Feedback("f3", "m2", "retry", NOW_US)])
    assert (second.feedback_written, second.feedback_duplicate) == (1, 2)
    rows = store.user_sql(
        "SELECT feedback_id, feedback_type, feedback_text, metadata FROM feedback_events ORDER BY feedback_id",
        project="default",
    ).rows
    assert [r[:3] for r in rows] == [["f1", "thumbs_up", "great"], ["f2", "thumbs_down", None], ["f3", "retry", None]]
    assert json.loads(rows[0][3]) == {"k": 1}


def test_update_costs(store: Store) -> None:
    store.write([full_span("a"), full_span("b"), full_span("c", project="other")], [])
    a, b = full_span("a"), full_span("b")
    a.cost_usd, a.computed_cost_usd, a.cost_source, a.price_version = 1.5, 1.5, "computed", "v2"
    b.cost_usd, b.computed_cost_usd, b.cost_source, b.price_version = None, None, None, None
    missing = full_span("nope")
    assert store.update_costs([a, b, missing]) == 2
    rows = store.query(
        "SELECT span_id, cost_usd, computed_cost_usd, cost_source, price_version FROM spans "
        "WHERE project = ? ORDER BY span_id",
        ["default"],
    ).rows
    assert rows == [["a", 1.5, 1.5, "computed", "v2"], ["b", None, None, None, None]]
    other = store.query("SELECT cost_usd FROM spans WHERE project = ?", ["other"]).rows
    assert other == [[pytest.approx(0.0123)]]


REFUSED = [
    "INSERT INTO spans VALUES (1)",
    "DELETE FROM spans",
    "DROP TABLE spans",
    "CREATE TABLE x AS SELECT * FROM spans",
    "SELECT 1; SELECT 2",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM '/etc/passwd'",
    "SELECT * FROM store.spans",
    "SELECT * FROM information_schema.tables",
    "SELECT * FROM system.tables",
    "SELECT * FROM llmlens_spans",
    "SELECT * FROM some_table",
    "SET threads = 1",
    "",
]


@pytest.mark.parametrize("query", REFUSED)
def test_the_sandbox_refuses(store: Store, query: str) -> None:
    with pytest.raises(SqlRejected):
        store.user_sql(query, project="default")


def test_engine_errors_are_sql_failed(store: Store) -> None:
    with pytest.raises(SqlFailed):
        store.user_sql("SELECT FROM WHERE", project="default")
    with pytest.raises(SqlFailed):
        store.user_sql("SELECT no_such_column FROM llm_logs", project="default")


def test_user_sql_sees_only_its_project(store: Store) -> None:
    store.write([full_span("a1", "alpha"), full_span("a2", "alpha"), full_span("b1", "beta")], [])
    store.write([], [Feedback("fa", "msg-1", "thumbs_up", NOW_US, project="alpha")])
    assert store.user_sql("SELECT COUNT(*) AS n FROM llm_logs", project="alpha").rows == [[2]]
    assert store.user_sql("SELECT COUNT(*) AS n FROM spans WHERE project = 'beta'", project="alpha").rows == [[0]]
    sub = "SELECT COUNT(*) AS n FROM (SELECT span_id FROM spans) AS s"
    assert store.user_sql(sub, project="beta").rows == [[1]]
    cte = "WITH s AS (SELECT span_id FROM llm_logs) SELECT COUNT(*) AS n FROM s"
    assert store.user_sql(cte, project="beta").rows == [[1]]
    joined = "SELECT COUNT(*) AS n FROM llm_logs l JOIN feedback_events f ON l.message_id = f.message_id"
    assert store.user_sql(joined, project="alpha").rows == [[2]]
    assert store.user_sql(joined, project="beta").rows == [[0]]
    assert store.user_sql("SELECT COUNT(*) AS n FROM spans", project="gamma").rows == [[0]]


def test_user_sql_truncates_at_max_rows(store: Store) -> None:
    store.write([empty_span(f"s{i:03d}") for i in range(30)], [])
    result = store.user_sql("SELECT span_id FROM spans ORDER BY span_id", project="default", max_rows=10)
    assert result.truncated
    assert [r[0] for r in result.rows] == [f"s{i:03d}" for i in range(10)]


def test_trusted_queries_in_the_portable_dialect(store: Store) -> None:
    spans = []
    for i in range(10):
        s = full_span(f"q{i}")
        s.latency_ms = float(i)
        s.start_us = NOW_US + i * 60_000_000
        spans.append(s)
    store.write(spans, [])
    start = dt.datetime.fromtimestamp(NOW_US // 1_000_000 - 1, dt.UTC).replace(tzinfo=None)
    rows = store.query(
        "SELECT COUNT(*) AS n, quantile_cont(latency_ms, 0.95) AS p95, "
        "SUM(CASE WHEN kind = 'llm' THEN cost_usd ELSE 0 END) AS cost "
        "FROM spans WHERE project = ? AND timestamp >= ? AND timestamp < ?",
        ["default", start, start + dt.timedelta(hours=1)],
    ).dicts()
    assert rows[0]["n"] == 10
    assert rows[0]["p95"] == pytest.approx(8.55)
    assert rows[0]["cost"] == pytest.approx(0.123)
    hourly = store.query(
        "SELECT date_trunc('hour', timestamp) AS bucket, COUNT(*) AS n FROM spans WHERE project = ? "
        "GROUP BY bucket ORDER BY bucket",
        ["default"],
    ).rows
    assert sum(n for _, n in hourly) == 10
    assert all(b.minute == 0 and b.second == 0 for b, _ in hourly)
    since = store.query(
        "SELECT COUNT(*) AS n FROM spans WHERE timestamp >= make_timestamp(?)", [NOW_US + 4 * 60_000_000]
    ).rows
    assert since == [[6]]


def test_string_agg_in_the_portable_dialect(store: Store) -> None:
    """The sketch quantiles hand each group's cells over as one string: string_agg skips NULLs on both."""
    spans = [empty_span(f"g{i}") for i in range(6)]
    for i, s in enumerate(spans):
        s.model = ("a", "b")[i % 2]
        s.latency_ms = None if i == 4 else float(i)
    store.write(spans, [])
    rows = store.query(
        "SELECT model, string_agg(CAST(latency_ms AS BIGINT)::VARCHAR, ',') AS cells FROM spans "
        "WHERE project = ? GROUP BY model ORDER BY model",
        ["default"],
    ).rows
    assert [(m, sorted(c.split(","))) for m, c in rows] == [("a", ["0", "2"]), ("b", ["1", "3", "5"])]


def test_execute_deletes_old_rows(store: Store) -> None:
    old, new = empty_span("old"), empty_span("new")
    old.start_us = NOW_US - 40 * 86_400_000_000
    store.write([old, new], [])
    cutoff = dt.datetime.fromtimestamp((NOW_US - 86_400_000_000) / 1e6, dt.UTC).replace(tzinfo=None)
    store.execute("DELETE FROM store.spans WHERE timestamp < ?", [cutoff])
    assert store.query("SELECT span_id FROM spans").rows == [["new"]]
