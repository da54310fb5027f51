"""The overview: request rate, error rates, cost, latency percentiles and tokens, with trends."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from llmlens.store import Store

from ._common import Scope, TimeChart, bucket_expr, num, opt, rows, time_chart
from .forecast import MonthForecast, month_forecast


@dataclass(slots=True)
class OverviewTotals:
    requests: int  # request-layer spans (HTTP); LLM calls when there are none
    requests_per_s: float
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


def overview(store: Store, scope: Scope, *, now: dt.datetime) -> Overview:
    where = scope.where()
    t = rows(store, _TOTALS_SQL.format(where=where), scope.params())[0]
    requests = int(num(t["requests"]))
    llm_calls = int(num(t["llm_calls"]))
    llm_errors = int(num(t["llm_errors"]))
    counted = requests or llm_calls
    totals = OverviewTotals(
        requests=counted,
        requests_per_s=counted / scope.window.seconds,
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
    errors = {
        str(r["error_type"]): int(r["calls"]) for r in rows(store, _ERRORS_SQL.format(where=where), scope.params())
    }
    trend_rows = rows(store, _TRENDS_SQL.format(where=where, bucket=bucket_expr(scope.window)), scope.params())
    step_s = scope.window.bucket_step.total_seconds()
    for r in trend_rows:
        n = num(r["requests"]) or num(r["llm_calls"])
        r["requests_per_s"] = n / step_s
        r["error_rate"] = num(r["llm_errors"]) / num(r["llm_calls"]) if num(r["llm_calls"]) else None
    w = scope.window
    trends = {
        "requests_per_s": time_chart(w, trend_rows, series_key=None, value_key="requests_per_s", unit="/s"),
        "error_rate": time_chart(w, trend_rows, series_key=None, value_key="error_rate", fill=None, unit="%"),
        "cost_usd": time_chart(w, trend_rows, series_key=None, value_key="cost_usd", unit="$"),
        "latency_p95_ms": time_chart(w, trend_rows, series_key=None, value_key="p95", fill=None, unit="ms"),
        "tokens": time_chart(w, trend_rows, series_key=None, value_key="tokens", unit="tokens"),
    }
    return Overview(
        totals=totals, errors_by_type=errors, month=month_forecast(store, scope.project, now), trends=trends
    )
