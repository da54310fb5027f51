"""Tool calls: volume, success rate and latency per tool, failing tools first, sample failures.

Stores that keep the tool rollups answer from them; others scan the window's tool spans. Percentiles come
from log-bucket sketches either way (within 1 %)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from typing import Any

from llmlens.store import Store
from llmlens.store.rollups import index_sql
from llmlens.store.rollups._page_tables import TOOL_NAME_SQL, TOOL_SKETCH, TOOLS

from ._call_feedback import page_rollups
from ._common import Scope, TimeChart, bucket_expr, num, opt, rows, time_chart
from ._page_rollups import page_aggregate, page_quantiles
from ._rollup import quantile_rows

FAILURE_SAMPLES = 5


@dataclass(slots=True)
class ToolStats:
    tool_name: str
    calls: int
    failures: int
    success_rate: float | None
    avg_ms: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


@dataclass(slots=True)
class ToolFailure:
    tool_name: str
    timestamp: dt.datetime
    trace_id: str
    span_id: str
    args: str | None  # JSON text, as stored
    error: str | None


@dataclass(slots=True)
class ToolsReport:
    tools: list[ToolStats]
    success_over_time: TimeChart
    failures: list[ToolFailure]


_PERCENTILES = {"p50": 0.5, "p95": 0.95, "p99": 0.99}


def _stats_from_rollups(store: Store, scope: Scope) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The per-tool and per-bucket rows of the window, from the tool rollups."""
    w = scope.window
    span = (store, TOOLS, scope.project, w.start, w.end)
    tool = [("tool_name", "tool_name")]
    counts = page_aggregate(*span, measures=("calls", "failures", "latency_ms", "latency_n"), groups=tool)
    percentiles = page_quantiles(
        store, TOOL_SKETCH, scope.project, w.start, w.end, metric="latency_ms", qs=_PERCENTILES, groups=tool
    )
    per_bucket = page_aggregate(*span, measures=("calls", "failures"), groups=tool, unit=w.bucket)
    return _stats(counts, percentiles), _series(per_bucket)


def _stats_from_spans(store: Store, scope: Scope) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The same rows from the window's tool spans: counted per bucket and tool in one pass (the tool's
    figures are their sums), percentiles from sketches as the rollups keep them (sorting a month of tool
    latencies per tool took ClickHouse 18.16 five times as long as the counts)."""
    where = f"{scope.where()} AND kind = 'tool'"
    per_bucket = rows(
        store,
        f"SELECT {bucket_expr(scope.window)} AS bucket, {TOOL_NAME_SQL} AS tool_name, COUNT(*) AS calls, "
        "SUM(CASE WHEN tool_success = false OR status = 'error' THEN 1 ELSE 0 END) AS failures, "
        "SUM(latency_ms) AS latency_ms, COUNT(latency_ms) AS latency_n "
        f"FROM spans WHERE {where} GROUP BY ALL",
        scope.params(),
    )
    counts: dict[str, dict[str, Any]] = {}
    for r in per_bucket:
        tool = counts.setdefault(r["tool_name"], {"tool_name": r["tool_name"]})
        for measure in ("calls", "failures", "latency_ms", "latency_n"):
            if r[measure] is not None:
                tool[measure] = tool.get(measure, 0) + r[measure]
    sketches = (
        f"SELECT {TOOL_NAME_SQL} AS tool_name, {index_sql('latency_ms')} AS idx, 1 AS n FROM store.spans WHERE {where}"
    )
    percentiles = quantile_rows(store, sketches, scope.params(), ["tool_name"], _PERCENTILES)
    return _stats(list(counts.values()), percentiles), _series(per_bucket)


def _stats(counts: list[dict[str, Any]], percentiles: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per tool: calls, failures, success rate, mean and percentile latencies; failing tools first."""
    by_tool = {str(r["tool_name"]): r for r in percentiles}
    stats = []
    for r in counts:
        calls, failures = int(r["calls"]), int(num(r.get("failures")))
        p = by_tool.get(str(r["tool_name"]), {})
        stats.append(
            {
                "tool_name": r["tool_name"],
                "calls": calls,
                "failures": failures,
                "success_rate": (calls - failures) / calls if calls else None,
                "avg_ms": num(r.get("latency_ms")) / int(r["latency_n"]) if r.get("latency_n") else None,
                **{k: p.get(k) for k in _PERCENTILES},
            }
        )
    stats.sort(key=lambda r: (r["success_rate"] is None, r["success_rate"] or 0.0, -r["calls"]))
    return stats


def _series(per_bucket: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "bucket": r["bucket"],
            "tool_name": r["tool_name"],
            "success_rate": (r["calls"] - num(r["failures"])) / r["calls"],
        }
        for r in per_bucket
        if r["calls"]
    ]


def tools_report(store: Store, scope: Scope) -> ToolsReport:
    found, series = _stats_from_rollups(store, scope) if page_rollups(store) else _stats_from_spans(store, scope)
    stats = [
        ToolStats(
            tool_name=str(r["tool_name"]),
            calls=int(r["calls"]),
            failures=int(num(r["failures"])),
            success_rate=opt(r["success_rate"]),
            avg_ms=opt(r["avg_ms"], 1),
            p50_ms=opt(r["p50"], 1),
            p95_ms=opt(r["p95"], 1),
            p99_ms=opt(r["p99"], 1),
        )
        for r in found
    ]
    needed = {t.tool_name: min(t.failures, FAILURE_SAMPLES) for t in stats if t.failures}
    failures = [
        ToolFailure(
            tool_name=str(r["tool_name"]),
            timestamp=r["timestamp"],
            trace_id=str(r["trace_id"]),
            span_id=str(r["span_id"]),
            args=None if r["args"] is None else str(r["args"]),
            error=r["error"],
        )
        for r in _recent_failures(store, scope, needed)
    ]
    order = {t.tool_name: i for i, t in enumerate(stats)}
    failures.sort(key=lambda f: order.get(f.tool_name, len(order)))
    return ToolsReport(
        tools=stats,
        success_over_time=time_chart(
            scope.window,
            series,
            series_key="tool_name",
            value_key="success_rate",
            fill=None,
            unit="%",
            labels=[t.tool_name for t in stats],
        ),
        failures=failures,
    )


def _recent_failures(store: Store, scope: Scope, needed: dict[str, int]) -> list[dict[str, Any]]:
    """The last FAILURE_SAMPLES failures of each tool, from a recent slice of the window that widens until
    it holds as many failures of each tool as the window has (up to FAILURE_SAMPLES): the slice's latest
    failures are then the window's."""
    found: list[dict[str, Any]] = []
    if not needed:
        return found
    for start in scope.window.recent_slice_starts():
        found = rows(
            store,
            "SELECT tool_name, timestamp, trace_id, span_id, args, error FROM ("
            "SELECT COALESCE(tool_name, name, '(unnamed)') AS tool_name, timestamp, trace_id, span_id, "
            "tool_args AS args, error_message AS error, ROW_NUMBER() OVER ("
            "PARTITION BY COALESCE(tool_name, name, '(unnamed)') ORDER BY timestamp DESC) AS rn "
            f"FROM spans WHERE {scope.where()} AND kind = 'tool' "
            "AND (tool_success = false OR status = 'error')) t "
            f"WHERE rn <= {FAILURE_SAMPLES} ORDER BY tool_name, timestamp DESC",
            [scope.project, start, scope.window.end],
        )
        got = Counter(str(r["tool_name"]) for r in found)
        if all(got[tool] >= n for tool, n in needed.items()):
            break
    return found
