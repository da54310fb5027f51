"""Tool calls: volume, success rate and latency per tool, failing tools first, sample failures."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from typing import Any

from llmlens.store import Store

from ._common import Scope, TimeChart, bucket_expr, num, opt, rows, time_chart

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


def tools_report(store: Store, scope: Scope) -> ToolsReport:
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
        for r in rows(
            store,
            "SELECT COALESCE(tool_name, name, '(unnamed)') AS tool_name, COUNT(*) AS calls, "
            "SUM(CASE WHEN tool_success = false OR status = 'error' THEN 1 ELSE 0 END) AS failures, "
            "AVG(CASE WHEN tool_success = false OR status = 'error' THEN 0.0 ELSE 1.0 END) AS success_rate, "
            "AVG(latency_ms) AS avg_ms, quantile_cont(latency_ms, 0.5) AS p50, "
            "quantile_cont(latency_ms, 0.95) AS p95, quantile_cont(latency_ms, 0.99) AS p99 "
            f"FROM spans WHERE {scope.where()} AND kind = 'tool' "
            "GROUP BY COALESCE(tool_name, name, '(unnamed)') ORDER BY success_rate ASC, calls DESC",
            scope.params(),
        )
    ]
    bucket = bucket_expr(scope.window)
    series = rows(
        store,
        f"SELECT {bucket} AS bucket, COALESCE(tool_name, name, '(unnamed)') AS tool_name, "
        "AVG(CASE WHEN tool_success = false OR status = 'error' THEN 0.0 ELSE 1.0 END) AS success_rate "
        f"FROM spans WHERE {scope.where()} AND kind = 'tool' "
        f"GROUP BY {bucket}, COALESCE(tool_name, name, '(unnamed)')",
        scope.params(),
    )
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
