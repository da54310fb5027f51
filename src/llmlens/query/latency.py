"""Latency by model: p50/p95/p99 of total latency, TTFT and tokens/s, over time; a histogram;
the slowest calls."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmlens.store import Store
from llmlens.store.rollups import LATENCY_HISTOGRAM_EDGES_MS, plan_window
from llmlens.store.rollups._page_tables import SLOW_CALLS, SLOW_CALLS_KEPT

from ._call_feedback import page_rollups
from ._common import Scope, TimeChart, bucket_expr, num, opt, rows, time_chart
from ._rollup import aggregate, quantiles, rollups_enabled
from ._sketch_reads import quantiles_of, sketch_rows

# Histogram bucket upper edges in ms (the last bucket is open-ended); the rollups count the same bins.
HISTOGRAM_EDGES_MS: tuple[float, ...] = LATENCY_HISTOGRAM_EDGES_MS
_MODEL = ("model", "COALESCE(model, '(none)')")
SLOWEST_LIMIT = 20
assert SLOWEST_LIMIT <= SLOW_CALLS_KEPT  # the rollup keeps at least as many per hour as the page lists


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
    if rollups_enabled(store):
        names = [f"latency_bin_{i}" for i in range(len(HISTOGRAM_EDGES_MS) + 1)]
        w = scope.window
        got = aggregate(
            store, scope.project, w.start, w.end, measures=names, where=f"kind = 'llm'{extra}", params=extra_params
        )
        counts = {i: int(num(got[0][n])) for i, n in enumerate(names)} if got else {}
    else:
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


Rows = list[dict[str, Any]]


def _from_raw(store: Store, scope: Scope, where: str, params: list[Any]) -> tuple[Rows, Rows, Rows]:
    model_rows = rows(
        store,
        "SELECT COALESCE(model, '(none)') AS model, COUNT(*) AS calls, "
        "quantile_cont(latency_ms, 0.5) AS p50, quantile_cont(latency_ms, 0.95) AS p95, "
        "quantile_cont(latency_ms, 0.99) AS p99, quantile_cont(ttft_ms, 0.5) AS t50, "
        "quantile_cont(ttft_ms, 0.95) AS t95, quantile_cont(ttft_ms, 0.99) AS t99, "
        "quantile_cont(tokens_per_second, 0.5) AS tps "
        f"FROM spans WHERE {where} GROUP BY COALESCE(model, '(none)') ORDER BY p95 DESC NULLS LAST",
        params,
    )
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
    return model_rows, series, overall_rows


def _from_rollups(store: Store, scope: Scope, extra: str, extra_params: list[Any]) -> tuple[Rows, Rows, Rows]:
    w = scope.window
    span = (store, scope.project, w.start, w.end)
    filt: dict[str, Any] = {"where": f"TRUE{extra}", "params": extra_params}
    calls = aggregate(*span, measures=("calls",), groups=[_MODEL], where=f"kind = 'llm'{extra}", params=extra_params)
    merged: dict[str, dict[str, Any]] = {str(r["model"]): {"model": r["model"], "calls": r["calls"]} for r in calls}
    if not page_rollups(store):  # the one-read path is DuckDB SQL; other stores read per question
        return _from_rollups_per_question(store, scope, extra, extra_params, merged)
    # One read of the sketches for the totals, one for the series and the overall percentiles.
    metrics = ("latency_ms", "ttft_ms", "tokens_per_second")
    models = sorted(merged)
    totals = sketch_rows(*span, metrics, models, **filt)
    by_bucket = sketch_rows(*span, metrics, models, unit=w.bucket, **filt)
    if totals is None or by_bucket is None:  # a sketched model without calls: read as before
        return _from_rollups_per_question(store, scope, extra, extra_params, merged)
    for metric, qs in _TOTALS:
        for r in quantiles_of(totals, metric, qs):
            merged[str(r["model"])].update({k: r[k] for k in qs})
    model_rows = _model_rows(merged)
    series_by: dict[tuple[Any, str], dict[str, Any]] = {}
    for metric, name, q in _SERIES:
        for r in quantiles_of(by_bucket, metric, {name: q}):
            key = (r["bucket"], str(r["model"]))
            rec = series_by.setdefault(
                key, {"bucket": r["bucket"], "model": r["model"], "p95": None, "ttft50": None, "tps": None}
            )
            rec[name] = r[name]
    overall_rows = quantiles_of(by_bucket, "latency_ms", _OVERALL, by_model=False)
    return model_rows, list(series_by.values()), overall_rows


_TOTALS = (
    ("latency_ms", {"p50": 0.5, "p95": 0.95, "p99": 0.99}),
    ("ttft_ms", {"t50": 0.5, "t95": 0.95, "t99": 0.99}),
    ("tokens_per_second", {"tps": 0.5}),
)
_SERIES = (("latency_ms", "p95", 0.95), ("ttft_ms", "ttft50", 0.5), ("tokens_per_second", "tps", 0.5))
_OVERALL = {"p50": 0.5, "p95": 0.95, "p99": 0.99}


def _model_rows(merged: dict[str, dict[str, Any]]) -> Rows:
    model_rows = []
    for rec in merged.values():
        for k in ("p50", "p95", "p99", "t50", "t95", "t99", "tps"):
            rec.setdefault(k, None)
        model_rows.append(rec)
    model_rows.sort(key=lambda r: (r["p95"] is None, -(r["p95"] or 0.0)))
    return model_rows


def _from_rollups_per_question(
    store: Store, scope: Scope, extra: str, extra_params: list[Any], merged: dict[str, dict[str, Any]]
) -> tuple[Rows, Rows, Rows]:
    """`_from_rollups` with one read of the sketches per question."""
    w = scope.window
    span = (store, scope.project, w.start, w.end)
    filt: dict[str, Any] = {"where": f"TRUE{extra}", "params": extra_params}
    for metric, qs in _TOTALS:
        for r in quantiles(*span, metric=metric, qs=qs, groups=[_MODEL], **filt):
            rec = merged.setdefault(str(r["model"]), {"model": r["model"], "calls": 0})
            rec.update({k: r[k] for k in qs})
    series_by: dict[tuple[Any, str], dict[str, Any]] = {}
    for metric, name, q in _SERIES:
        for r in quantiles(*span, metric=metric, qs={name: q}, groups=[_MODEL], unit=w.bucket, **filt):
            key = (r["bucket"], str(r["model"]))
            rec = series_by.setdefault(
                key, {"bucket": r["bucket"], "model": r["model"], "p95": None, "ttft50": None, "tps": None}
            )
            rec[name] = r[name]
    overall_rows = quantiles(*span, metric="latency_ms", qs=_OVERALL, unit=w.bucket, **filt)
    return _model_rows(merged), list(series_by.values()), overall_rows


def _slowest(store: Store, scope: Scope, where: str, params: list[Any], model: str | None) -> Rows:
    """The SLOWEST_LIMIT slowest calls of the window: with the page rollups, from the slowest calls kept
    per hour and model (the window's slowest are each among their own hour's and model's), plus the
    ragged edges of the window from raw spans; else from every call of the window."""
    select = (
        "SELECT trace_id, span_id, timestamp, model, feature, user_id, latency_ms, ttft_ms, prompt_tokens, "
        "completion_tokens, status"
    )
    order = f"ORDER BY latency_ms DESC LIMIT {SLOWEST_LIMIT}"
    if not page_rollups(store):
        return rows(store, f"{select} FROM spans WHERE {where} AND latency_ms IS NOT NULL {order}", params)
    w = scope.window
    parts: list[str] = []
    args: list[Any] = []
    for seg in plan_window(w.start, w.end, "hour", sources=("hour",)):
        if seg.source == "raw":
            raw_where = f"project = ? AND timestamp >= ? AND timestamp < ? AND kind = 'llm'{_model_filter(model)[0]}"
            parts.append(f"{select} FROM spans WHERE {raw_where} AND latency_ms IS NOT NULL")
        else:
            kept = f"project = ? AND bucket >= ? AND bucket < ?{_model_filter(model)[0]}"
            parts.append(f"{select} FROM {SLOW_CALLS} WHERE {kept}")
        args += [scope.project, seg.start, seg.end, *([model] if model else [])]
    if not parts:
        return []
    union = " UNION ALL ".join(f"({p})" for p in parts)
    return rows(store, f"SELECT * FROM ({union}) AS slow {order}", args)


def latency_report(store: Store, scope: Scope, *, model: str | None = None) -> LatencyReport:
    extra, extra_params = _model_filter(model)
    where = f"{scope.where()} AND kind = 'llm'{extra}"
    params = scope.params() + extra_params
    if rollups_enabled(store):
        model_rows, series, overall_rows = _from_rollups(store, scope, extra, extra_params)
    else:
        model_rows, series, overall_rows = _from_raw(store, scope, where, params)
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
        for r in model_rows
    ]
    overall = time_chart(scope.window, [], series_key=None, value_key="p50", fill=None, unit="ms")
    for key in ("p50", "p95", "p99"):
        overall.add_series(
            time_chart(scope.window, overall_rows, series_key=None, value_key=key, fill=None, labels=[key])
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
        for r in _slowest(store, scope, where, params, model)
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
