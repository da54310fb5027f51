"""End to end: demo traffic ingested over HTTP by a real server on DuckDB and on ClickHouse, then every
dashboard report computed from each store; the answers agree (ClickHouse 18.16 keeps whole seconds)."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import importlib
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from tests.support.llmlens_server import LLMLensServer

from llmlens.demo import demo_events
from llmlens.store import Store, open_store

pytestmark = [pytest.mark.clickhouse, pytest.mark.slow]

_NOW = dt.datetime.now(dt.UTC).replace(tzinfo=None, second=0, microsecond=0)


def _ingest(server: LLMLensServer, events: list[dict[str, Any]]) -> None:
    for start in range(0, len(events), 2000):
        doc = server.ingest({"events": events[start : start + 2000]})
        assert doc.get("rejected", []) == []


@pytest.fixture(scope="module")
def stores(clickhouse_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Store]]:
    events = demo_events(days=3, seed=11)
    data = tmp_path_factory.mktemp("dash-duckdb")
    ch_url = clickhouse_url.rsplit("/", 1)[0] + "/dashboard_e2e"
    with LLMLensServer(data) as duck, LLMLensServer(args=["--store", ch_url]) as ch:
        _ingest(duck, events)
        _ingest(ch, events)
    opened = {"duckdb": open_store(None, data), "clickhouse": open_store(ch_url, data)}
    yield opened
    for store in opened.values():
        store.close()


def _reports() -> dict[str, Callable[[Store], Any]]:
    q = {name: importlib.import_module(f"llmlens.query.{name}") for name in _MODULES}
    scope = q["_common"].Scope("default", q["_window"].parse_window("7d", now=_NOW))
    budgets = q["budgets"].Budgets()
    return {
        "overview": lambda s: q["overview"].overview(s, scope, now=_NOW),
        "cost": lambda s: q["cost"].cost_report(s, scope, budgets, now=_NOW),
        "feedback": lambda s: q["feedback"].feedback_report(s, scope),
        "rated_calls": lambda s: _unambiguous_rated(
            q["feedback"].rated_calls(s, scope, q["feedback"].RatedCallFilters())
        ),
        "rated_slow_v5": lambda s: _unambiguous_rated(
            q["feedback"].rated_calls(
                s,
                scope,
                q["feedback"].RatedCallFilters(template="support_answer@v5", speed="slow", feedback="thumbs_down"),
            )
        ),
        "latency": lambda s: q["latency"].latency_report(s, scope),
        "templates": lambda s: q["prompts"].templates(s, scope),
        "prompt_length": lambda s: q["prompts"].prompt_length_by_template(s, scope),
        "outliers": lambda s: q["prompts"].outliers(s, scope),
        "versions": lambda s: q["prompts"].prompt_versions(s, scope, "support_answer"),
        "sessions": lambda s: _unambiguous_sessions(q["sessions"].session_page(s, scope)),
        "tools": lambda s: q["tools"].tools_report(s, scope),
        "traces": lambda s: _unambiguous_page(q["traces"].trace_list(s, scope, q["traces"].TraceFilters())),
    }


def _unambiguous_page(page: Any) -> dict[str, Any]:
    """A page of traces keyed by id, without the traces of the page's last second: ClickHouse 18.16 keeps
    whole seconds, so traces started within the same second can order (and page) differently."""
    rows = [dataclasses.asdict(t) for t in page.traces]
    if not rows:
        return {}
    last_second = _plain(rows[-1]["timestamp"])
    return {r["trace_id"]: r for r in rows if _plain(r["timestamp"]) != last_second}


def _unambiguous_sessions(page: Any) -> dict[str, Any]:
    """A page of sessions keyed by id, without those last seen in the page's last second, and its total:
    sessions last seen within the same second order (and page) by id on ClickHouse 18.16 alone."""
    rows = [dataclasses.asdict(r) for r in page.sessions]
    last_second = _plain(rows[-1]["last_seen"]) if rows else None
    kept = {r["session_id"]: r for r in rows if _plain(r["last_seen"]) != last_second}
    return {"sessions": kept, "total": page.total, "total_capped": page.total_capped}


def _unambiguous_rated(page: Any) -> dict[str, Any]:
    """Rated calls keyed by feedback id, without those rated in the page's last second, and the total: ratings
    within the same second order (and page) by id on ClickHouse 18.16 alone."""
    rows = [dataclasses.asdict(r) for r in page.calls]
    last_second = _plain(rows[-1]["rated_at"]) if rows else None
    kept = {r["feedback_id"]: r for r in rows if _plain(r["rated_at"]) != last_second}
    return {"calls": kept, "total": page.total, "limit": page.limit}


_MODULES = ("_common", "_window", "budgets", "overview", "cost", "feedback", "latency", "prompts", "sessions")
_MODULES = (*_MODULES, "tools", "traces")
_QUANTILE_PATH = re.compile(r"p\d\d|ttft|tokens_per_s|overall|latency_p")
_FRACTION = re.compile(r"(T\d\d:\d\d:\d\d)\.\d+")


def _plain(value: Any) -> Any:
    """Comparable form: seconds-resolution times, series keyed by label."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(dataclasses.asdict(value))
    if isinstance(value, dt.datetime):
        return value.replace(microsecond=0)
    if isinstance(value, str):
        return _FRACTION.sub(r"\1", value)
    if isinstance(value, dict):
        return {k: _plain(_decoded_cursor(v) if k == "next_cursor" else v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        items = [_plain(v) for v in value]
        if items and all(isinstance(i, dict) and "label" in i for i in items):
            return {i["label"]: i for i in items}
        return items
    return value


def _decoded_cursor(cursor: Any) -> Any:
    """Keyset cursors are base64 of 'time|trace_id'; compare the time at seconds resolution."""
    if not isinstance(cursor, str):
        return cursor
    return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()


def _assert_close(a: Any, b: Any, path: str) -> None:
    if isinstance(a, float) or isinstance(b, float):
        assert a is not None and b is not None, f"{path}: {a!r} != {b!r}"
        # DuckDB answers percentiles from its rollups' quantile sketches (within 1 %); ClickHouse exactly.
        quantile = bool(_QUANTILE_PATH.search(path))
        rel = 0.011 if quantile else 1e-3
        # Durations span two stored times, each kept in whole seconds by ClickHouse 18.16.
        within = 2000.0 if path.endswith("duration_ms") else 1e-6
        # Reports round percentiles to 0.1: each side may also be up to 0.05 off its unrounded value.
        slack = 0.1 if quantile else 0.0
        assert abs(float(a) - float(b)) <= max(rel * max(abs(float(a)), abs(float(b))), within) + slack, (
            f"{path}: {a!r} != {b!r}"
        )
    elif isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), f"{path}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            _assert_close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), f"{path}: {len(a)} != {len(b)} items"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_close(x, y, f"{path}[{i}]")
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


@pytest.mark.parametrize("report", list(_reports()))
def test_dashboard_report_agrees(stores: dict[str, Store], report: str) -> None:
    build = _reports()[report]
    duck, ch = build(stores["duckdb"]), build(stores["clickhouse"])
    _assert_close(_plain(duck), _plain(ch), report)


def test_counts_agree(stores: dict[str, Store]) -> None:
    sql = "SELECT kind, COUNT(*) AS n FROM spans WHERE project = ? GROUP BY kind ORDER BY kind"
    assert stores["duckdb"].query(sql, ["default"]).rows == stores["clickhouse"].query(sql, ["default"]).rows
    assert stores["clickhouse"].query(sql, ["default"]).rows, "the demo traffic was stored"


def test_rollup_matches_raw_rows(stores: dict[str, Store]) -> None:
    ch = stores["clickhouse"]
    raw = ch.query("SELECT COUNT(*) AS n, SUM(cost_usd) AS cost FROM spans WHERE kind = 'llm'").rows[0]
    rolled = ch.query("SELECT SUM(calls) AS n, SUM(cost_usd) AS cost FROM llm_hourly").rows[0]
    assert rolled[0] == raw[0]
    assert rolled[1] == pytest.approx(raw[1])


# Each filter and sort of the traces explorer (issue 21): the same traces, counts and pages on both stores.
_TRACE_CASES: dict[str, dict[str, Any]] = {
    "claude": {"model": "claude"},
    "exact model": {"model": "gpt-4o"},
    "user": {"user_id": "user-free-0"},
    "errors": {"status": "error"},
    "ok": {"status": "ok"},
    "thumbs down": {"feedback": "thumbs_down"},
    "no feedback": {"feedback": "none"},
    "tool": {"tool": "search_web"},
    "error type": {"error_type": "rate_limit"},
    "template version": {"template_id": "support_answer", "template_version": "v5"},
    "min cost": {"min_cost_usd": 0.01},
    "min latency": {"min_latency_ms": 5000},
    "text": {"text": "password"},
    "oldest first": {"sort": "time"},
    "dearest first": {"sort": "-cost"},
    "cheapest first": {"sort": "cost"},
    "slowest first": {"sort": "-latency"},
    "most tokens first": {"sort": "-tokens"},
    "claude by cost": {"model": "claude", "sort": "-cost"},
}


@pytest.mark.parametrize("case", list(_TRACE_CASES))
def test_trace_explorer_agrees(stores: dict[str, Store], case: str) -> None:
    traces = importlib.import_module("llmlens.query.traces")
    q = {name: importlib.import_module(f"llmlens.query.{name}") for name in ("_common", "_window")}
    scope = q["_common"].Scope("default", q["_window"].parse_window("7d", now=_NOW))
    filters = traces.TraceFilters(limit=15, **_TRACE_CASES[case])
    answers = {}
    for name, store in stores.items():
        first = traces.trace_list(store, scope, filters)
        assert first.next_cursor, f"{case}: one page only on {name}; the case does not test paging"
        second = traces.trace_list(store, scope, filters, cursor=first.next_cursor)
        assert second.prev_cursor
        back = traces.trace_list(store, scope, filters, cursor=second.prev_cursor)
        assert [t.trace_id for t in back.traces] == [t.trace_id for t in first.traces]
        answers[name] = (first.total, first.total_capped, first, second)
    duck, ch = answers["duckdb"], answers["clickhouse"]
    assert duck[:2] == ch[:2] and duck[0] > 0
    for d, c in zip(duck[2:], ch[2:], strict=True):
        if filters.sort.lstrip("-") == "time":
            _assert_close(_plain(_unambiguous_page(d)), _plain(_unambiguous_page(c)), case)
        else:
            _assert_close(
                _plain([dataclasses.asdict(t) for t in d.traces]),
                _plain([dataclasses.asdict(t) for t in c.traces]),
                case,
            )
