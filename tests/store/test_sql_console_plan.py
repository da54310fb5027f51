"""The SQL console's example queries read what they need: `timestamp > NOW() - INTERVAL ...` skips the row
groups outside the interval, and `llm_logs` joins calls to their feedback only for a query that reads
`user_satisfaction` (the join is most of the time of a query that does not, at 10M calls)."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from llmlens.model import Feedback, Span
from llmlens.store.clickhouse import ClickHouseStore
from llmlens.store.clickhouse._sandbox import rewrite_user_sql
from llmlens.store.clickhouse._schema import FEEDBACK_TABLE, SPANS_TABLE
from llmlens.store.duckdb import DuckDBStore
from llmlens.store.duckdb._sandbox import NOW_AS_TIMESTAMP

COST_PER_FEATURE = (
    "SELECT feature, SUM(cost_usd) as total_cost, COUNT(*) as calls FROM llm_logs "
    "WHERE timestamp > NOW() - INTERVAL 7 DAY GROUP BY feature ORDER BY total_cost DESC"
)
SATISFACTION = (
    "SELECT template_version, AVG(user_satisfaction) as avg_satisfaction FROM llm_logs "
    "WHERE timestamp > NOW() - INTERVAL 7 DAY GROUP BY template_version"
)


def _store(path: Path) -> DuckDBStore:
    store = DuckDBStore(path)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    # 500,000 calls over 30 days (five row groups), a tenth of them rated.
    store.execute(
        "INSERT INTO store.spans (project, trace_id, span_id, kind, name, timestamp, feature, template_version, "
        "message_id, cost_usd, ingested_at) SELECT 'default', printf('%032x', i + 1), printf('%016x', i + 1), "
        "'llm', 'chat', ?::TIMESTAMP - to_microseconds(((500000 - i) * 5184000)::BIGINT), "
        "['chat', 'search'][i % 2 + 1], 'v1', 'm' || i, 0.01, now()::TIMESTAMP FROM range(500000) r(i)",
        [now],
    )
    store.execute(
        "INSERT INTO store.feedback (project, feedback_id, message_id, feedback_type, timestamp, ingested_at) "
        "SELECT 'default', 'f' || i, 'm' || i, 'thumbs_up', ?::TIMESTAMP, now()::TIMESTAMP "
        "FROM range(0, 500000, 10) r(i)",
        [now],
    )
    return store


def _plan(store: DuckDBStore, sql: str) -> str:
    """The executed plan of `sql` in a cursor set up as the console's (one project, its `now()`)."""
    cur = store._con.cursor()
    try:
        cur.execute("SET TimeZone = 'UTC'")
        cur.execute("SET VARIABLE llmlens_project = 'default'")
        cur.execute(NOW_AS_TIMESTAMP)
        plan: str = cur.execute("EXPLAIN ANALYZE " + sql).fetchall()[0][1]
        return plan
    finally:
        cur.close()


def test_the_console_reads_only_the_interval_and_joins_feedback_only_when_asked(tmp_path: Path) -> None:
    store = _store(tmp_path / "s.duckdb")
    try:
        plan = _plan(store, COST_PER_FEATURE)
        assert "HASH_JOIN" not in plan.upper().replace(" ", "_"), f"joined feedback it does not read:\n{plan}"
        scanned = [(int(a), int(b)) for a, b in re.findall(r"Row Groups Scanned:\s*(\d+)\s*/\s*(\d+)", plan)]
        assert scanned, plan
        assert all(total >= 4 and read <= 2 for read, total in scanned), f"read {scanned} row groups:\n{plan}"
        # A query that reads the satisfaction still gets it, and both give what they gave.
        assert "HASH_JOIN" in _plan(store, SATISFACTION).upper().replace(" ", "_")
        by_feature = store.user_sql(COST_PER_FEATURE, project="default").rows
        week_ago = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(days=7)
        calls = store.query("SELECT count(*) FROM store.spans WHERE timestamp > ?", [week_ago]).rows[0][0]
        assert sorted(r[0] for r in by_feature) == ["chat", "search"]
        assert abs(sum(r[2] for r in by_feature) - calls) <= 1  # the two NOW()s are a moment apart
        satisfaction = store.user_sql(SATISFACTION, project="default").rows
        assert satisfaction == [["v1", 1.0]]
        assert store.user_sql("SELECT typeof(now())", project="default").rows == [["TIMESTAMP"]]
        assert store.user_sql(COST_PER_FEATURE, project="another").rows == []
    finally:
        store.close()


SATISFACTION_BY_SPEED = (
    "SELECT CASE WHEN latency_ms < 1000 THEN 'fast' ELSE 'slow' END as speed, "
    "AVG(CASE WHEN feedback_type = 'thumbs_up' THEN 1.0 ELSE 0.0 END) as satisfaction "
    "FROM llm_logs JOIN feedback_events ON llm_logs.message_id = feedback_events.message_id GROUP BY speed"
)


@pytest.mark.clickhouse
def test_on_clickhouse_the_views_read_only_the_columns_a_query_names(clickhouse_url: str) -> None:
    """ClickHouse 18.16 reads every column of a `SELECT *` subquery: the views' bodies name only what the
    query reads, join feedback only for `user_satisfaction` and the calls only for the columns that come
    from them; the answers stay those of the whole views."""
    store = ClickHouseStore(clickhouse_url.rsplit("/", 1)[0] + f"/console_{uuid.uuid4().hex[:8]}")
    try:
        now_us = int(dt.datetime.now(dt.UTC).timestamp() * 1_000_000)
        calls = [
            Span(trace_id=f"{i + 1:032x}", span_id=f"{i + 1:016x}", kind="llm", name="chat", start_us=now_us - i,
                 latency_ms=400.0 + 700 * i, feature=("chat", "search")[i % 2], template_version="v1",
                 message_id=f"m{i}", cost_usd=0.01, prompt="a long prompt", user_id=f"u{i}")
            for i in range(6)
        ]  # fmt: skip
        rated = [
            Feedback(feedback_id=f"f{i}", message_id=f"m{i}", feedback_type=("thumbs_up", "thumbs_down")[i % 2],
                     timestamp_us=now_us)
            for i in range(4)
        ]  # fmt: skip
        store.write(calls, rated)
        translator = store._translator

        def sql(query: str) -> str:
            return rewrite_user_sql(query, "default", translator)

        def answer(query: str) -> list[list[Any]]:
            return sorted(store.user_sql(query, project="default").rows, key=repr)

        lean = sql(COST_PER_FEATURE)
        assert "prompt" not in lean and FEEDBACK_TABLE not in lean, lean
        assert answer(COST_PER_FEATURE) == [["chat", pytest.approx(0.03), 3], ["search", pytest.approx(0.03), 3]]
        assert FEEDBACK_TABLE in sql(SATISFACTION) and "prompt" not in sql(SATISFACTION)
        assert answer(SATISFACTION) == [["v1", 0.5]]
        # feedback_events: no join to the calls for columns of the feedback itself.
        assert sql(SATISFACTION_BY_SPEED).count(SPANS_TABLE) == 1
        assert answer(SATISFACTION_BY_SPEED) == [["fast", 1.0], ["slow", pytest.approx(1 / 3)]]
        # A `*` still reads every column, the satisfaction too; and the user of a call reaches its feedback.
        star = store.user_sql("SELECT * FROM llm_logs WHERE message_id = 'm0'", project="default").dicts()
        assert star[0]["prompt"] == "a long prompt" and star[0]["user_satisfaction"] == 1.0
        assert answer("SELECT message_id, user_id FROM feedback_events") == [[f"m{i}", f"u{i}"] for i in range(4)]
    finally:
        store.close()
