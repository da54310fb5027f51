"""DuckDB rollups stay equal to the raw spans when stored spans change afterwards: context inherited
from a late root span (update_span_fields) and retention deletes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from llmlens.ingest.retention import enforce_retention
from llmlens.model import Span
from llmlens.pricing import PriceBook
from llmlens.store.duckdb import DuckDBStore

HOUR_US = 3_600_000_000
NOW = dt.datetime(2026, 11, 20, 12, 0, 0)
NOW_US = int((NOW - dt.datetime(1970, 1, 1)).total_seconds() * 1_000_000)


def _llm(i: int, age_hours: float, feature: str | None = None) -> Span:
    span = Span(
        trace_id=f"{i:032x}",
        span_id=f"{i + 1:016x}",
        kind="llm",
        name="chat",
        model="gpt-4o",
        provider="openai",
        start_us=NOW_US - int(age_hours * HOUR_US),
        latency_ms=100.0 + i,
        prompt_tokens=1000,
        completion_tokens=100,
        status="ok",
        feature=feature,
        user_id=f"u{i % 3}",
    )
    PriceBook.load(None).price_span(span)
    return span


def _by_feature_from_rollups(store: DuckDBStore) -> dict[str | None, tuple[int, float]]:
    rows = store.query(
        "SELECT feature, sum(calls), sum(cost_usd) FROM store.rollup_hour WHERE kind = 'llm' "
        "GROUP BY feature HAVING sum(calls) <> 0"
    ).rows
    return {r[0]: (int(r[1]), round(float(r[2] or 0), 9)) for r in rows}


def _by_feature_raw(store: DuckDBStore) -> dict[str | None, tuple[int, float]]:
    rows = store.query("SELECT feature, count(*), sum(cost_usd) FROM spans WHERE kind = 'llm' GROUP BY feature").rows
    return {r[0]: (int(r[1]), round(float(r[2] or 0), 9)) for r in rows}


def test_late_context_moves_spans_between_rollup_keys(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "s.duckdb")
    store.write([_llm(i, age_hours=i) for i in range(10)], [])
    assert _by_feature_from_rollups(store) == {None: (10, _by_feature_raw(store)[None][1])}

    # The app's root span arrives last and carries the feature: its LLM spans inherit it.
    store.update_span_fields("default", {f"{i + 1:016x}": {"feature": "chat"} for i in range(6)})
    assert _by_feature_raw(store)[None][0] == 4 and _by_feature_raw(store)["chat"][0] == 6
    assert _by_feature_from_rollups(store) == _by_feature_raw(store)
    store.compact_rollups()
    assert _by_feature_from_rollups(store) == _by_feature_raw(store)
    day = store.query("SELECT feature, sum(calls) FROM store.rollup_day GROUP BY feature HAVING sum(calls) <> 0").rows
    assert dict(day) == {None: 4, "chat": 6}
    store.close()


def test_retention_takes_deleted_spans_out_of_the_rollups(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "s.duckdb")
    store.write([_llm(i, age_hours=24 * i + 1, feature="chat") for i in range(10)], [])
    enforce_retention(store, 5, {}, now=NOW)
    raw = _by_feature_raw(store)
    assert raw["chat"][0] == 5
    assert _by_feature_from_rollups(store) == raw
    users = store.query("SELECT sum(calls) FROM store.user_day").rows[0][0]
    assert users == 5
    store.close()
