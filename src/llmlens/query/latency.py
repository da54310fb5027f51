"""Latency by model: p50/p95/p99 of total latency, TTFT and tokens/s, over time; a histogram;
the slowest calls."""

from __future__ import annotations

from dataclasses import dataclass

from llmlens.store import Store

from ._common import Scope, TimeChart, bucket_expr, num, opt, rows, time_chart

# Histogram bucket upper edges in ms (the last bucket is open-ended).
HISTOGRAM_EDGES_MS: tuple[float, ...] = (100, 250, 500, 1000, 2000, 3000, 5000, 10000, 20000, 30000)
SLOWEST_LIMIT = 20


@dataclass(slots=True)
class ModelLatency:
    model: str
    calls: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    ttft_p50_ms: float | None
    ttft_p95_ms: float | None
    ttft_p99_ms: float | None
    tokens_per_s_p50: float | None


@dataclass(slots=True)
class HistogramBin:
    label: str
    lo_ms: float
    hi_ms: float | None
    calls: int


@dataclass(slots=True)
class SlowCall:
    trace_id: str
    span_id: str
    timestamp: str
    model: str | None
    feature: str | None
    user_id: str | None
    latency_ms: float
    ttft_ms: float | None
    prompt_tokens: int | None
    completion_tokens: int | None
    status: str | None


@dataclass(slots=True)
class LatencyReport:
    by_model: list[ModelLatency]
    p95_by_model: TimeChart
    ttft_p50_by_model: TimeChart
    tokens_per_s_by_model: TimeChart
    overall: TimeChart  # p50 / p95 / p99 of every call
    histogram: list[HistogramBin]
    slowest: list[SlowCall]


def _model_filter(model: str | None) -> tuple[str, list[str]]:
    return (" AND model = ?", [model]) if model else ("", [])


def _histogram(store: Store, scope: Scope, extra: str, extra_params: list[str]) -> list[HistogramBin]:
    cases = " ".join(f"WHEN latency_ms < {edge} THEN {i}" for i, edge in enumerate(HISTOGRAM_EDGES_MS))
    expr = f"CASE {cases} ELSE {len(HISTOGRAM_EDGES_MS)} END"
    counts = {
        int(r["bin"]): int(r["calls"])
        for r in rows(
            store,
            f"SELECT {expr} AS bin, COUNT(*) AS calls FROM spans "
            f"WHERE {scope.where()} AND kind = 'llm' AND latency_ms IS NOT NULL{extra} GROUP BY {expr}",
            scope.params() + extra_params,
        )
    }
    bins = []
    lo = 0.0
    for i, edge in enumerate((*HISTOGRAM_EDGES_MS, None)):
        label = f"< {_ms(edge)}" if i == 0 else (f"{_ms(lo)}–{_ms(edge)}" if edge else f"≥ {_ms(lo)}")
        bins.append(HistogramBin(label=label, lo_ms=lo, hi_ms=edge, calls=counts.get(i, 0)))
        lo = edge or lo
    return bins


def _ms(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value / 1000:g} s" if value >= 1000 else f"{value:g} ms"


def latency_report(store: Store, scope: Scope, *, model: str | None = None) -> LatencyReport:
    extra, extra_params = _model_filter(model)
    where = f"{scope.where()} AND kind = 'llm'{extra}"
    params = scope.params() + extra_params
    by_model = [
        ModelLatency(
            model=str(r["model"]),
            calls=int(r["calls"]),
            p50_ms=opt(r["p50"], 1),
            p95_ms=opt(r["p95"], 1),
            p99_ms=opt(r["p99"], 1),
            ttft_p50_ms=opt(r["t50"], 1),
            ttft_p95_ms=opt(r["t95"], 1),
            ttft_p99_ms=opt(r["t99"], 1),
            tokens_per_s_p50=opt(r["tps"], 1),
        )
        for r in rows(
            store,
            "SELECT COALESCE(model, '(none)') AS model, COUNT(*) AS calls, "
            "quantile_cont(latency_ms, 0.5) AS p50, quantile_cont(latency_ms, 0.95) AS p95, "
            "quantile_cont(latency_ms, 0.99) AS p99, quantile_cont(ttft_ms, 0.5) AS t50, "
            "quantile_cont(ttft_ms, 0.95) AS t95, quantile_cont(ttft_ms, 0.99) AS t99, "
            "quantile_cont(tokens_per_second, 0.5) AS tps "
            f"FROM spans WHERE {where} GROUP BY COALESCE(model, '(none)') ORDER BY p95 DESC NULLS LAST",
            params,
        )
    ]
    bucket = bucket_expr(scope.window)
    series = rows(
        store,
        f"SELECT {bucket} AS bucket, COALESCE(model, '(none)') AS model, "
        "quantile_cont(latency_ms, 0.95) AS p95, quantile_cont(ttft_ms, 0.5) AS ttft50, "
        "quantile_cont(tokens_per_second, 0.5) AS tps "
        f"FROM spans WHERE {where} GROUP BY {bucket}, COALESCE(model, '(none)')",
        params,
    )
    overall_rows = rows(
        store,
        f"SELECT {bucket} AS bucket, quantile_cont(latency_ms, 0.5) AS p50, "
        "quantile_cont(latency_ms, 0.95) AS p95, quantile_cont(latency_ms, 0.99) AS p99 "
        f"FROM spans WHERE {where} GROUP BY {bucket}",
        params,
    )
    overall = time_chart(scope.window, [], series_key=None, value_key="p50", fill=None, unit="ms")
    for key in ("p50", "p95", "p99"):
        overall.series.append(
            time_chart(scope.window, overall_rows, series_key=None, value_key=key, fill=None).series[0]
        )
    labels = [m.model for m in by_model]
    w = scope.window
    slowest = [
        SlowCall(
            trace_id=str(r["trace_id"]),
            span_id=str(r["span_id"]),
            timestamp=r["timestamp"].isoformat() + "Z",
            model=r["model"],
            feature=r["feature"],
            user_id=r["user_id"],
            latency_ms=num(r["latency_ms"]),
            ttft_ms=opt(r["ttft_ms"]),
            prompt_tokens=r["prompt_tokens"],
            completion_tokens=r["completion_tokens"],
            status=r["status"],
        )
        for r in rows(
            store,
            "SELECT trace_id, span_id, timestamp, model, feature, user_id, latency_ms, ttft_ms, prompt_tokens, "
            f"completion_tokens, status FROM spans WHERE {where} AND latency_ms IS NOT NULL "
            f"ORDER BY latency_ms DESC LIMIT {SLOWEST_LIMIT}",
            params,
        )
    ]
    return LatencyReport(
        by_model=by_model,
        p95_by_model=time_chart(w, series, series_key="model", value_key="p95", fill=None, unit="ms", labels=labels),
        ttft_p50_by_model=time_chart(
            w, series, series_key="model", value_key="ttft50", fill=None, unit="ms", labels=labels
        ),
        tokens_per_s_by_model=time_chart(
            w, series, series_key="model", value_key="tps", fill=None, unit="tok/s", labels=labels
        ),
        overall=overall,
        histogram=_histogram(store, scope, extra, extra_params),
        slowest=slowest,
    )
