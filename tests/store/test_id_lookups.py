"""A lookup by trace, session, message or span id reads the hours the store's id map names (not the whole
table) and finds what a full scan finds: for ids whose spans lie days apart, for spans not mapped yet, after
a restart, after retention, and for the same ids in two projects; on DuckDB and on ClickHouse."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.support.llmlens_server import LLMLensServer

from llmlens.ingest.retention import enforce_retention
from llmlens.model import Feedback, Span
from llmlens.query import session_detail, trace_detail
from llmlens.query._id_lookup import rows_by_id, spans_by_id
from llmlens.query._spans import read_spans
from llmlens.store import Store, open_store
from llmlens.store.duckdb import DuckDBStore

HOUR_US = 3_600_000_000
NOW = dt.datetime.now(dt.UTC).replace(tzinfo=None, minute=0, second=0, microsecond=0)
NOW_US = int((NOW - dt.datetime(1970, 1, 1)).total_seconds() * 1_000_000)
ID_COLUMNS = ("trace_id", "session_id", "message_id", "span_id")


def _span(i: int, hours_ago: float, *, trace: str, project: str = "default", kind: str = "llm") -> Span:
    return Span(
        trace_id=trace,
        span_id=f"{i:016x}",
        kind=kind,
        name="chat",
        start_us=NOW_US - int(hours_ago * HOUR_US),
        latency_ms=120.0,
        model="gpt-4o" if kind == "llm" else None,
        message_id=f"m{i}" if kind == "llm" else None,
        session_id=f"s{i % 7}",
        user_id="u1",
        project=project,
    )


def _traffic(first: int, count: int, *, project: str = "default") -> list[Span]:
    """Traces of two or three spans over the last ten days; trace 0 is spread over six days."""
    return [
        _span(first + i, (i * 7) % 240 + 0.5, trace=f"{(first + i) // 3 + 1:032x}", project=project)
        for i in range(count)
    ]


def _ids(store: Store, project: str) -> list[tuple[str, str]]:
    rows = store.query(
        "SELECT trace_id, session_id, message_id, span_id FROM spans WHERE project = ? ORDER BY span_id LIMIT 12",
        [project],
    ).rows
    return [(col, str(r[i])) for r in rows for i, col in enumerate(ID_COLUMNS) if r[i] is not None]


def _assert_lookups_match_a_scan(store: Store, project: str = "default") -> None:
    ids = [*_ids(store, project), ("trace_id", "f" * 32), ("session_id", "no such session")]
    for column, value in ids:
        found = spans_by_id(store, project, column, value)
        scanned = read_spans(store, f"project = ? AND {column} = ?", [project, value])
        assert [s["span_id"] for s in found] == [s["span_id"] for s in scanned], (column, value)
        assert found == scanned
    messages = sorted({v for c, v in ids if c == "message_id"})
    feedback = rows_by_id(store, project, "message_id", messages, "feedback_id", table="feedback")
    marks = ", ".join("?" for _ in messages)
    scanned_feedback = store.query(
        f"SELECT feedback_id FROM store.feedback WHERE project = ? AND message_id IN ({marks})", [project, *messages]
    ).rows
    assert sorted(r["feedback_id"] for r in feedback) == sorted(r[0] for r in scanned_feedback)


@pytest.fixture(params=["duckdb", pytest.param("clickhouse", marks=pytest.mark.clickhouse)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str | None]]:
    if request.param == "duckdb":
        yield "duckdb", None
    else:
        url: str = request.getfixturevalue("clickhouse_url")
        yield "clickhouse", url.rsplit("/", 1)[0] + f"/id_lookups_{tmp_path.name[-8:].replace('-', '_')}"


def test_lookups_find_what_a_scan_finds(backend: tuple[str, str | None], tmp_path: Path) -> None:
    _, url = backend
    store = open_store(url, tmp_path)
    try:
        spread = f"{999:032x}"  # one trace over six days, one session over ten
        store.write(
            [
                *_traffic(0, 300),
                *(_span(5000 + h, h, trace=spread) for h in (1, 30, 75, 144)),
                *_traffic(0, 60, project="other"),  # the same ids in another project
            ],
            [
                Feedback(feedback_id=f"f{i}", message_id=f"m{i}", feedback_type="thumbs_up", timestamp_us=NOW_US)
                for i in range(0, 300, 4)
            ],
        )
        _assert_lookups_match_a_scan(store)
        _assert_lookups_match_a_scan(store, "other")
        assert [s["span_id"] for s in spans_by_id(store, "default", "trace_id", spread)] == [
            f"{5000 + h:016x}" for h in (144, 75, 30, 1)
        ]
        # Spans of known ids arriving later (on DuckDB, not mapped until the store catches up).
        store.write([_span(7000, 200, trace=spread), _span(7001, 0.2, trace=f"{1:032x}")], [])
        _assert_lookups_match_a_scan(store)
        assert len(spans_by_id(store, "default", "trace_id", spread)) == 5
        fold = getattr(store, "fold_rollups", None)
        if fold is not None:
            fold()
            _assert_lookups_match_a_scan(store)
        # Retention: the map forgets the hours whose spans went, and lookups still find what is left.
        enforce_retention(store, 5, {}, now=NOW)
        assert len(spans_by_id(store, "default", "trace_id", spread)) == 3  # 144 and 200 hours old: gone
        _assert_lookups_match_a_scan(store)
        _assert_lookups_match_a_scan(store, "other")
        old = _mapped_hours_before(store, NOW - dt.timedelta(days=6))
        assert old == 0, f"{old} id map rows left for hours whose spans retention deleted"
    finally:
        store.close()
    reopened = open_store(url, tmp_path)
    try:
        _assert_lookups_match_a_scan(reopened)
        detail = trace_detail(reopened, "default", spread)
        assert detail is not None and len(detail.spans) == 3
        assert session_detail(reopened, "other", "s3") is not None
        assert session_detail(reopened, "other", "s99") is None
    finally:
        reopened.close()


def _mapped_hours_before(store: Any, before: dt.datetime) -> int:
    if isinstance(store, DuckDBStore):
        hour = int((before - dt.datetime(1970, 1, 1)).total_seconds() // 3600)
        both = [f"(SELECT count(*) FROM store.{t} WHERE hour < ?)" for t in ("span_ids", "span_ids_recent")]
        return int(store.query(f"SELECT {' + '.join(both)}", [hour, hour]).rows[0][0])
    # The map is no relation the query layer reads: asked of ClickHouse directly.
    rows = store._pool.client().execute(
        "SELECT count() FROM llmlens_id_map WHERE source = 0 AND bucket < toDateTime(%(t)s, 'UTC')",
        {"t": int(before.replace(tzinfo=dt.UTC).timestamp())},
    )
    return int(rows[0][0])


def test_a_lookup_reads_a_few_row_groups(tmp_path: Path) -> None:
    """On a table of many row groups, finding a trace or a session reads a few of them, not all."""
    store = DuckDBStore(tmp_path / "s.duckdb")
    try:
        # 600,000 spans over 30 days (five row groups), written as trusted SQL: not mapped until caught up.
        store.execute(
            "INSERT INTO store.spans (project, trace_id, span_id, kind, name, timestamp, session_id, ingested_at) "
            "SELECT 'default', printf('%032x', i // 2 + 1), printf('%016x', i + 1), 'llm', 'chat', "
            "?::TIMESTAMP - to_microseconds(((600000 - i) * 4320000)::BIGINT), 's' || (i // 40), now()::TIMESTAMP "
            "FROM range(600000) r(i)",
            [NOW],
        )
    finally:
        store.close()
    store = DuckDBStore(tmp_path / "s.duckdb")  # catches up at open
    issued: list[tuple[str, Any]] = []
    query = store.query

    def recorded(sql: str, params: Any = ()) -> Any:
        issued.append((sql, params))
        return query(sql, params)

    store.query = recorded  # type: ignore[method-assign]
    try:
        assert store.query("SELECT count(*) FROM store.spans").rows[0][0] == 600_000
        for column, value in (("trace_id", f"{150001:032x}"), ("session_id", "s7000")):
            issued.clear()
            if column == "trace_id":
                trace = trace_detail(store, "default", value)
                assert trace is not None and len(trace.spans) == 2
            else:
                session = session_detail(store, "default", value)  # 40 spans, two to a trace
                assert session is not None and len(session.turns) == 20
            reads = [(sql, p) for sql, p in issued if "store.spans" in sql or "FROM spans" in sql]
            assert reads, issued
            for sql, params in reads:
                plan = store._cursor().execute("EXPLAIN ANALYZE " + sql, params).fetchall()[0][1]
                for scanned, total in re.findall(r"Row Groups Scanned:\s*(\d+)\s*/\s*(\d+)", plan):
                    assert int(total) >= 5, plan
                    assert int(scanned) <= 2, f"{column} lookup read {scanned} of {total} row groups:\n{sql}"
    finally:
        store.close()


@pytest.fixture
def pages(tmp_path: Path) -> Iterator[LLMLensServer]:
    with LLMLensServer(tmp_path / "data") as server:
        yield server


def test_trace_and_session_pages_after_a_kill(pages: LLMLensServer) -> None:
    """Through the server: the trace and session pages list what SQL over the whole table lists, also for
    spans a killed server had not mapped yet."""
    events: list[dict[str, Any]] = []
    for i in range(1, 301):
        events.append(
            {
                "type": "llm", "trace_id": f"{i // 3 + 1:032x}", "span_id": f"{i:016x}", "model": "gpt-4o",
                "prompt": "hi", "response": "hello", "timestamp": (NOW_US - (i * 7 % 200) * HOUR_US) / 1e6,
                "message_id": f"m{i}", "session_id": f"s{i % 9}", "latency_ms": 100.0,
            }
        )  # fmt: skip
    assert pages.ingest({"events": events})["rejected"] == []

    def check() -> None:
        with httpx.Client(base_url=pages.url, timeout=60) as client:
            for trace in (f"{1:032x}", f"{50:032x}", f"{101:032x}"):
                shown = client.get(f"/api/v1/traces/{trace}").json()["trace"]["spans"]
                listed = pages.sql(f"SELECT span_id FROM spans WHERE trace_id = '{trace}'")
                assert sorted(s["span"]["span_id"] for s in shown) == sorted(r["span_id"] for r in listed)
            for session in ("s0", "s4"):
                turns = client.get(f"/api/v1/sessions/{session}").json()["session"]["turns"]
                listed = pages.sql(f"SELECT DISTINCT trace_id FROM spans WHERE session_id = '{session}'")
                assert sorted(t["trace_id"] for t in turns) == sorted(r["trace_id"] for r in listed)

    check()
    # More spans of the same traces and sessions, then a kill before the server maps them.
    more = [
        {**e, "span_id": f"{int(e['span_id'], 16) + 1000:016x}", "message_id": e["message_id"] + "b"}
        for e in events[:30]
    ]
    assert pages.ingest({"events": more})["rejected"] == []
    pages.stop(kill=True)
    pages.start()
    check()


def test_a_map_made_with_another_hash_is_not_trusted(tmp_path: Path) -> None:
    """DuckDB does not promise its hash() across versions: a map whose keys another DuckDB made is read by no
    lookup (read-only) and made again (writable)."""
    import duckdb

    path = tmp_path / "s.duckdb"
    store = DuckDBStore(path)
    store.write(_traffic(0, 90), [])
    store.close()
    con = duckdb.connect(str(path))
    con.execute("UPDATE llmlens_meta SET value = 'another hash' WHERE key = 'indexes_hash_canary'")
    con.execute("UPDATE store.span_ids SET key = xor(key, 1)")  # what another hash would have made
    con.close()
    old = DuckDBStore(path, read_only=True)
    try:
        assert old.locate_ids("default", [f"{1:032x}"]) is None
        _assert_lookups_match_a_scan(old)
    finally:
        old.close()
    store = DuckDBStore(path)
    try:
        located = store.locate_ids("default", [f"{1:032x}"])
        assert located is not None and located.hours
        _assert_lookups_match_a_scan(store)
    finally:
        store.close()
