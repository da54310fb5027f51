"""The overview: request rate, error rates, cost, latency percentiles and tokens, with trends."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from llmlens.store import Store

from ._common import Scope, TimeChart, bucket_expr, num, opt, rate_unit, rows, time_chart, together
from ._rollup import aggregate, quantiles, rollups_enabled
from .forecast import MonthForecast, month_forecast


@dataclass(slots=True)
class OverviewTotals:
    requests: int  # request-layer spans (HTTP); LLM calls when there are none
    requests_per_s: float
    rate_unit: str  # s | min | h | day: the unit the request rate reads in (trends.request_rate is in it)
    http_4xx: int
    http_5xx: int
    llm_calls: int
    llm_errors: int
    error_rate: float  # LLM calls that failed / LLM calls
    cost_usd: float
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None


@dataclass(slots=True)
class Overview:
    totals: OverviewTotals
    errors_by_type: dict[str, int]
    month: MonthForecast
    trends: dict[str, TimeChart] = field(default_factory=dict)


_TOTALS_SQL = """
SELECT
  SUM(CASE WHEN kind = 'request' THEN 1 ELSE 0 END) AS requests,
  SUM(CASE WHEN kind = 'request' AND http_status >= 400 AND http_status < 500 THEN 1 ELSE 0 END) AS http_4xx,
  SUM(CASE WHEN kind = 'request' AND http_status >= 500 THEN 1 ELSE 0 END) AS http_5xx,
  SUM(CASE WHEN kind = 'llm' THEN 1 ELSE 0 END) AS llm_calls,
  SUM(CASE WHEN kind = 'llm' AND status = 'error' THEN 1 ELSE 0 END) AS llm_errors,
  SUM(CASE WHEN kind = 'llm' THEN cost_usd ELSE 0 END) AS cost_usd,
  SUM(CASE WHEN kind = 'llm' THEN prompt_tokens ELSE 0 END) AS prompt_tokens,
  SUM(CASE WHEN kind = 'llm' THEN completion_tokens ELSE 0 END) AS completion_tokens,
  quantile_cont(CASE WHEN kind = 'llm' THEN latency_ms END, 0.5) AS p50,
  quantile_cont(CASE WHEN kind = 'llm' THEN latency_ms END, 0.95) AS p95,
  quantile_cont(CASE WHEN kind = 'llm' THEN latency_ms END, 0.99) AS p99
FROM spans
WHERE {where} AND kind IN ('request', 'llm')
"""

_TRENDS_SQL = """
SELECT
  {bucket} AS bucket,
  SUM(CASE WHEN kind = 'request' THEN 1 ELSE 0 END) AS requests,
  SUM(CASE WHEN kind = 'llm' THEN 1 ELSE 0 END) AS llm_calls,
  SUM(CASE WHEN kind = 'llm' AND status = 'error' THEN 1 ELSE 0 END) AS llm_errors,
  SUM(CASE WHEN kind = 'request' AND http_status >= 400 THEN 1 ELSE 0 END) AS http_errors,
  SUM(CASE WHEN kind = 'llm' THEN cost_usd ELSE 0 END) AS cost_usd,
  SUM(CASE WHEN kind = 'llm' THEN total_tokens ELSE 0 END) AS tokens,
  quantile_cont(CASE WHEN kind = 'llm' THEN latency_ms END, 0.95) AS p95
FROM spans
WHERE {where} AND kind IN ('request', 'llm')
GROUP BY {bucket}
ORDER BY bucket
"""

_ERRORS_SQL = """
SELECT COALESCE(error_type, 'other') AS error_type, COUNT(*) AS calls
FROM spans
WHERE {where} AND kind = 'llm' AND status = 'error'
GROUP BY COALESCE(error_type, 'other')
ORDER BY calls DESC
"""


def _from_raw(store: Store, scope: Scope) -> tuple[dict[str, Any], dict[str, int], list[dict[str, Any]]]:
    where = scope.where()
    t = rows(store, _TOTALS_SQL.format(where=where), scope.params())[0]
    errors = {
        str(r["error_type"]): int(r["calls"]) for r in rows(store, _ERRORS_SQL.format(where=where), scope.params())
    }
    trend_rows = rows(store, _TRENDS_SQL.format(where=where, bucket=bucket_expr(scope.window)), scope.params())
    return t, errors, trend_rows


def _from_rollups(store: Store, scope: Scope) -> tuple[dict[str, Any], dict[str, int], list[dict[str, Any]]]:
    w = scope.window
    span = (store, scope.project, w.start, w.end)
    measures = ("calls", "errors", "http_4xx", "http_5xx", "cost_usd", "prompt_tokens", "completion_tokens")
    trend_measures = ("calls", "errors", "http_4xx", "http_5xx", "cost_usd", "total_tokens")
    totals, latency, errs, trend_counts, trend_p95 = together(
        store,
        lambda: aggregate(*span, measures=measures, groups=[("kind", "kind")]),
        lambda: quantiles(*span, metric="latency_ms", qs={"p50": 0.5, "p95": 0.95, "p99": 0.99}),
        lambda: aggregate(
            *span, measures=("errors",), groups=[("error_type", "COALESCE(error_type, 'other')")], where="kind = 'llm'"
        ),
        lambda: aggregate(*span, measures=trend_measures, groups=[("kind", "kind")], unit=w.bucket),
        lambda: quantiles(*span, metric="latency_ms", qs={"p95": 0.95}, unit=w.bucket),
    )
    by_kind = {r["kind"]: r for r in totals}
    req, llm = by_kind.get("request", {}), by_kind.get("llm", {})
    t: dict[str, Any] = {
        "requests": req.get("calls", 0),
        "http_4xx": req.get("http_4xx", 0),
        "http_5xx": req.get("http_5xx", 0),
        "llm_calls": llm.get("calls", 0),
        "llm_errors": llm.get("errors", 0),
        "cost_usd": llm.get("cost_usd"),
        "prompt_tokens": llm.get("prompt_tokens"),
        "completion_tokens": llm.get("completion_tokens"),
    }
    q = latency[0]
    t.update(p50=q["p50"], p95=q["p95"], p99=q["p99"])
    errors = {str(r["error_type"]): int(r["errors"]) for r in sorted(errs, key=lambda r: -int(r["errors"] or 0))}
    errors = {k: v for k, v in errors.items() if v}
    trend: dict[Any, dict[str, Any]] = {}
    for r in trend_counts:
        b = trend.setdefault(
            r["bucket"],
            {
                "bucket": r["bucket"],
                "requests": 0,
                "llm_calls": 0,
                "llm_errors": 0,
                "http_errors": 0,
                "cost_usd": 0.0,
                "tokens": 0,
                "p95": None,
            },
        )
        if r["kind"] == "request":
            b["requests"] += int(r["calls"])
            b["http_errors"] += int(num(r["http_4xx"]) + num(r["http_5xx"]))
        else:
            b["llm_calls"] += int(r["calls"])
            b["llm_errors"] += int(r["errors"])
            b["cost_usd"] += num(r["cost_usd"])
            b["tokens"] += int(num(r["total_tokens"]))
    for r in trend_p95:
        if r["bucket"] in trend:
            trend[r["bucket"]]["p95"] = r["p95"]
    return t, errors, sorted(trend.values(), key=lambda r: r["bucket"])


def overview(store: Store, scope: Scope, *, now: dt.datetime) -> Overview:
    if rollups_enabled(store):
        t, errors, trend_rows = _from_rollups(store, scope)
    else:
        t, errors, trend_rows = _from_raw(store, scope)
    requests = int(num(t["requests"]))
    llm_calls = int(num(t["llm_calls"]))
    llm_errors = int(num(t["llm_errors"]))
    counted = requests or llm_calls
    per_s = counted / scope.window.seconds
    # The rate reads per second, minute, hour or day, whichever gives a figure of 1 or more; the trend
    # chart counts per bucket in the same unit.
    unit_s, unit_name = rate_unit(per_s)
    totals = OverviewTotals(
        requests=counted,
        requests_per_s=per_s,
        rate_unit=unit_name,
        http_4xx=int(num(t["http_4xx"])),
        http_5xx=int(num(t["http_5xx"])),
        llm_calls=llm_calls,
        llm_errors=llm_errors,
        error_rate=llm_errors / llm_calls if llm_calls else 0.0,
        cost_usd=num(t["cost_usd"]),
        prompt_tokens=int(num(t["prompt_tokens"])),
        completion_tokens=int(num(t["completion_tokens"])),
        total_tokens=int(num(t["prompt_tokens"])) + int(num(t["completion_tokens"])),
        latency_p50_ms=opt(t["p50"], 1),
        latency_p95_ms=opt(t["p95"], 1),
        latency_p99_ms=opt(t["p99"], 1),
    )
    step_s = scope.window.bucket_step.total_seconds()
    for r in trend_rows:
        n = num(r["requests"]) or num(r["llm_calls"])
        r["request_rate"] = n / step_s * unit_s
        r["error_rate"] = num(r["llm_errors"]) / num(r["llm_calls"]) if num(r["llm_calls"]) else None
    w = scope.window
    trends = {
        "request_rate": time_chart(
            w,
            trend_rows,
            series_key=None,
            value_key="request_rate",
            unit=f"/{unit_name}",
            name=f"requests / {unit_name}",
        ),
        "error_rate": time_chart(
            w, trend_rows, series_key=None, value_key="error_rate", fill=None, unit="%", name="LLM error rate"
        ),
        "cost_usd": time_chart(w, trend_rows, series_key=None, value_key="cost_usd", unit="$", name="spend"),
        "latency_p95_ms": time_chart(
            w, trend_rows, series_key=None, value_key="p95", fill=None, unit="ms", name="p95 latency"
        ),
        "tokens": time_chart(w, trend_rows, series_key=None, value_key="tokens", unit="tokens", name="tokens"),
    }
    return Overview(
        totals=totals, errors_by_type=errors, month=month_forecast(store, scope.project, now), trends=trends
    )
