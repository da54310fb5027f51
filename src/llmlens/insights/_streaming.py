"""Streaming: user-facing calls that wait for a long completion without streaming it; with streaming,
users would see the first words after the model's measured time to first token."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from llmlens.query._rollup import quantiles

from ._context import FindingContext, counted, example_traces, num
from ._model import Chart, Insight, confidence_for

KIND = "streaming"
MIN_LATENCY_MS = 2_000  # waits shorter than this are not worth streaming for
MIN_COMPLETION_TOKENS = 100
MIN_CALLS = 5
_NOT_STREAMED = (
    "(streamed IS NULL OR NOT streamed) AND (status IS NULL OR status <> 'error') "
    f"AND latency_ms >= {MIN_LATENCY_MS} AND completion_tokens >= {MIN_COMPLETION_TOKENS} "
    "AND (user_id IS NOT NULL OR session_id IS NOT NULL)"
)


def model_ttft(ctx: FindingContext) -> dict[str, tuple[float, int]]:
    """Median time to first token per model over the requested window: (ms, calls measured)."""
    if ctx.rollups:
        rows = quantiles(
            ctx.store,
            ctx.project,
            ctx.start,
            ctx.end,
            metric="ttft_ms",
            qs={"p50": 0.5},
            groups=[("model", "COALESCE(model, '(none)')")],
        )
        return {str(r["model"]): (float(r["p50"]), int(r["count"])) for r in rows if r["p50"] is not None}
    rows = ctx.rows(
        "SELECT COALESCE(model, '(none)') AS model, quantile_cont(ttft_ms, 0.5) AS p50, COUNT(ttft_ms) AS n "
        "FROM spans WHERE project = ? AND timestamp >= ? AND timestamp < ? AND kind = 'llm' "
        "AND ttft_ms IS NOT NULL GROUP BY COALESCE(model, '(none)')",
        [ctx.project, ctx.start, ctx.end],
    )
    return {str(r["model"]): (num(r["p50"]), int(num(r["n"]))) for r in rows if r["p50"] is not None}


def find_streaming(ctx: FindingContext) -> list[Insight]:
    rows = ctx.rows(
        "SELECT COALESCE(feature, '(none)') AS feature, model, COUNT(*) AS calls, SUM(latency_ms) AS latency, "
        f"COUNT(DISTINCT trace_id) AS traces FROM spans WHERE {ctx.llm_where()} AND {_NOT_STREAMED} "
        "GROUP BY COALESCE(feature, '(none)'), model",
        ctx.llm_params(),
    )
    if not rows:
        return []
    ttft = model_ttft(ctx)
    features: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        measured = ttft.get(str(r["model"]))
        if measured is None:
            continue
        r["ttft"], r["measured"] = measured
        r["avg"] = num(r["latency"]) / int(r["calls"])
        if r["avg"] > r["ttft"]:
            features[str(r["feature"])].append(r)
    out = []
    for feature, models in features.items():
        calls = sum(int(m["calls"]) for m in models)
        if calls < MIN_CALLS:
            continue
        traces = sum(int(num(m["traces"])) for m in models)
        saved = sum((m["avg"] - m["ttft"]) * int(m["calls"]) for m in models)
        out.append(_insight(ctx, feature, models, calls, traces, saved))
    return out


def _insight(
    ctx: FindingContext, feature: str, models: list[dict[str, Any]], calls: int, traces: int, saved: float
) -> Insight:
    per_call = saved / calls
    wait = sum(m["avg"] * int(m["calls"]) for m in models) / calls
    first = sum(m["ttft"] * int(m["calls"]) for m in models) / calls
    names = ", ".join(sorted(str(m["model"]) for m in models))
    return Insight(
        kind=KIND,
        title=f"{feature}: {counted(calls, 'long answer')} not streamed; users would see text "
        f"{per_call / 1000:.1f} s sooner",
        scope={"feature": feature},
        saving_usd=0.0,
        saving_usd_per_month=0.0,
        saving_ms_per_trace=round(per_call, 1),
        calls_affected=calls,
        confidence=confidence_for(min(calls, min(m["measured"] for m in models)), high=100, medium=20),
        method=(
            f"User-facing LLM calls (with a user or session) that were not streamed, took {MIN_LATENCY_MS / 1000:g} s "
            f"or more and returned {MIN_COMPLETION_TOKENS}+ tokens. Streamed, the first words would show after the "
            "model's median time to first token, measured on this project's streamed calls of the same model; the "
            "saving is the wait before the first words, not the time to the whole answer."
        ),
        example_trace_ids=example_traces(
            ctx, f"COALESCE(feature, '(none)') = ? AND {_NOT_STREAMED}", [feature], order_by="latency_ms"
        ),
        assumptions=[
            "The model's time to first token on these calls would be its median on the project's streamed calls.",
            "The user sees the answer as it arrives (a chat UI); a caller that needs the whole answer gains nothing.",
        ],
        saving_s_per_month=round(ctx.per_month(saved) / 1000, 1),
        traces_affected=traces,
        summary=f"Users wait {wait / 1000:.1f} s for these answers ({names}); streamed, the first words would "
        f"arrive after {first / 1000:.1f} s.",
        chart=Chart(
            title="Wait before the first words, per model",
            categories=[str(m["model"]) for m in models],
            series=[
                {"label": "now (whole answer)", "values": [round(m["avg"], 1) for m in models]},
                {"label": "streamed (first token)", "values": [round(m["ttft"], 1) for m in models]},
            ],
            unit="ms",
        ),
        evidence=[
            {
                "model": str(m["model"]),
                "calls": int(m["calls"]),
                "avg_latency_ms": round(m["avg"], 1),
                "ttft_p50_ms": round(m["ttft"], 1),
                "ttft_measured_on": m["measured"],
            }
            for m in models
        ],
        details={"avg_wait_ms": round(wait, 1), "first_token_ms": round(first, 1)},
    )
