"""A user on current ClickHouse gets what a user on 18.16 gets: the same traffic stored through the ClickHouse
store on 18.16 (a real server) and on 26 (chdb, in process), then every dashboard report, the 13 example
queries of docs/questions.md and the rollups compared (18.16 keeps whole seconds; 26 keeps microseconds)."""

from __future__ import annotations

import datetime as dt
import itertools
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.server.test_article_sql import FEEDBACK, LLM, RETRIEVALS, TOOL_EVENTS
from tests.store.test_clickhouse_rollups import assert_rollups_equal_raw
from tests.store.test_dashboard_on_both_backends import _assert_close, _plain, _reports
from tests.support.chdb_adapter import ChdbEngine

from llmlens.codec.native import DecodedEvents, decode_events
from llmlens.demo import demo_events
from llmlens.pricing import PriceBook
from llmlens.store import Store
from llmlens.store.clickhouse import ClickHouseStore

pytestmark = [pytest.mark.clickhouse, pytest.mark.slow]

QUESTIONS = Path(__file__).parents[2] / "docs" / "questions.md"
_QUIET_US = 30 * 60 * 1_000_000


def example_queries() -> list[str]:
    """The SQL blocks of docs/questions.md's "Example queries that run unchanged", verbatim."""
    text = QUESTIONS.read_text()
    section = text.split("## Example queries that run unchanged", 1)[1].split("\n## ", 1)[0]
    return [q.strip() for q in re.findall(r"```sql\n(.*?)```", section, re.S)]


def traffic() -> DecodedEvents:
    """Three days of demo traffic and the article's own log lines, decoded and priced once for both stores."""
    events = demo_events(days=3, seed=11) + LLM + TOOL_EVENTS + RETRIEVALS + FEEDBACK
    decoded = decode_events(events, project="default")
    assert not decoded.rejected
    # Each store answers `NOW() - INTERVAL 1 DAY` at its own moment: no call may cross that edge between
    # the two, so the half hour after the edge as it is now holds none (the module runs in less).
    edge_us = int((time.time() - 86_400) * 1_000_000)
    decoded.spans = [s for s in decoded.spans if not edge_us <= s.start_us < edge_us + _QUIET_US]
    prices = PriceBook.load(None)
    for span in decoded.spans:
        prices.price_span(span)
    return decoded


def fill(store: ClickHouseStore, decoded: DecodedEvents) -> None:
    for start in range(0, len(decoded.spans), 5000):
        store.write(decoded.spans[start : start + 5000], [])
    store.write([], decoded.feedback)
    # A late root span's context reaches calls already stored (trace_context.py).
    llm = sorted(s.span_id for s in decoded.spans if s.kind == "llm")
    assert store.update_span_fields("default", {i: {"feature": "late"} for i in llm[::7]}) > 0


@pytest.fixture(scope="module")
def stores(clickhouse_url: str, chdb_engine: ChdbEngine) -> Iterator[dict[str, ClickHouseStore]]:
    database = f"versions_{uuid.uuid4().hex[:10]}"
    opened = {
        "18.16": ClickHouseStore(f"{clickhouse_url.rsplit('/', 1)[0]}/{database}"),
        "26": chdb_engine.store(f"clickhouse://default@localhost/{database}"),
    }
    assert opened["18.16"].features.version[:2] == (18, 16)
    assert opened["26"].features.version[0] >= 26
    decoded = traffic()
    for store in opened.values():
        fill(store, decoded)
    yield opened
    for store in opened.values():
        store.close()


def _seconds_order(value: Any) -> Any:
    """Lists of records ordered by a time, put in one order: 18.16 keeps whole seconds, so records within
    one second come in any order there (the values themselves are compared in full)."""
    if isinstance(value, dict):
        return {k: _seconds_order(v) for k, v in value.items()}
    if isinstance(value, list):
        items = [_seconds_order(v) for v in value]
        if items and all(isinstance(i, dict) and any(isinstance(v, dt.datetime) for v in i.values()) for i in items):
            return sorted(items, key=lambda i: ([v for v in i.values() if isinstance(v, dt.datetime)], repr(i)))
        return items
    return value


@pytest.mark.parametrize("report", list(_reports()))
def test_dashboard_report_agrees(stores: dict[str, Store], report: str) -> None:
    build = _reports()[report]
    old, new = build(stores["18.16"].scoped("default")), build(stores["26"].scoped("default"))
    _assert_close(_seconds_order(_plain(old)), _seconds_order(_plain(new)), report)


def _rows(store: ClickHouseStore, sql: str) -> tuple[list[str], list[Any]]:
    result = store.user_sql(sql, project="default")
    rows = [_plain(list(r)) for r in result.rows]
    ordered = re.search(r"ORDER BY\s+(\w+)", re.sub(r"\([^()]*\)", "", sql))  # not WITHIN GROUP's
    if not ordered:
        return result.columns, sorted(rows, key=repr)
    if ordered.group(1) not in result.columns:
        return result.columns, rows
    # Rows that tie on the sort key come in any order: each run of ties is put in one order.
    key = result.columns.index(ordered.group(1))
    runs = [sorted(run, key=repr) for _, run in itertools.groupby(rows, key=lambda r: r[key])]
    return result.columns, [r for run in runs for r in run]


def test_the_thirteen_example_queries_agree(stores: dict[str, ClickHouseStore]) -> None:
    queries = example_queries()
    assert len(queries) == 13
    answered = 0
    for sql in queries:
        old_columns, old = _rows(stores["18.16"], sql)
        new_columns, new = _rows(stores["26"], sql)
        assert old_columns == new_columns, sql
        _assert_close(old, new, sql.splitlines()[0])
        answered += bool(old)
    assert answered == 13, "every example query found rows"


def test_rollups_equal_raw_on_both(stores: dict[str, ClickHouseStore]) -> None:
    for version, store in stores.items():
        assert_rollups_equal_raw(store, f"ClickHouse {version}")
