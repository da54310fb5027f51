"""max_tokens: answers cut at the limit (finish reason `length`), and features whose answers stay far
below the limit they set, or set none, with a limit suggested from the observed distribution (the
article's "stop generating at 500 tokens if that's enough")."""

from __future__ import annotations

import math
from typing import Any

from ._context import FindingContext, counted, example_traces, num
from ._model import Chart, Insight, confidence_for

KIND = "max_tokens"
_CUT = "lower(COALESCE(finish_reason, '')) IN ('length', 'max_tokens')"
_FEATURE = "COALESCE(feature, '(none)')"
MIN_CUT = 3
MIN_CALLS = 20
HEADROOM = 1.2  # the suggested limit: the 99th percentile plus this much room, rounded up to 50
FAR_ABOVE = 4.0  # a limit this many times the 99th percentile does not limit anything


def find_max_tokens(ctx: FindingContext) -> list[Insight]:
    return [*_cut_off(ctx), *_loose_limits(ctx)]


def suggested_limit(p99: float) -> int:
    return int(math.ceil(p99 * HEADROOM / 50.0) * 50)


def _cut_off(ctx: FindingContext) -> list[Insight]:
    rows = ctx.rows(
        f"SELECT {_FEATURE} AS feature, COUNT(*) AS calls, COUNT(*) FILTER (WHERE {_CUT}) AS cut, "
        f"SUM(cost_usd) FILTER (WHERE {_CUT}) AS cut_cost, MAX(max_tokens) FILTER (WHERE {_CUT}) AS max_limit, "
        f"MIN(max_tokens) FILTER (WHERE {_CUT}) AS min_limit FROM spans WHERE {ctx.llm_where()} GROUP BY {_FEATURE}",
        ctx.llm_params(),
    )
    out = []
    for r in rows:
        cut, calls = int(num(r["cut"])), int(num(r["calls"]))
        if cut < MIN_CUT:
            continue
        feature, usd = str(r["feature"]), num(r["cut_cost"])
        lo, hi = r["min_limit"], r["max_limit"]
        limit = "no max_tokens" if lo is None else (f"max_tokens {lo}" if lo == hi else f"max_tokens {lo}-{hi}")
        out.append(
            Insight(
                kind=KIND,
                title=f"{counted(cut, 'answer')} in {feature} cut off at the token limit "
                f"({cut / calls:.1%} of calls, {limit})",
                scope={"feature": feature, "check": "cut_off"},
                saving_usd=round(usd, 6),
                saving_usd_per_month=round(ctx.per_month(usd), 6),
                saving_ms_per_trace=None,
                calls_affected=cut,
                confidence=confidence_for(cut, high=50, medium=10),
                method=(
                    "LLM calls whose finish reason is `length` (OpenAI) or `max_tokens` (Anthropic, Gemini) stopped "
                    "because they reached their token limit. The dollars are what those calls cost."
                ),
                example_trace_ids=example_traces(ctx, f"{_FEATURE} = ? AND {_CUT}", [feature]),
                assumptions=[
                    "An answer cut off mid-way is of little use and is often retried: its cost is money spent "
                    "without a complete answer. Raise the limit, or ask for shorter answers in the prompt.",
                ],
                summary=f"{cut} of {calls} calls of {feature} ended at the limit, costing ${usd:.4f}.",
                chart=Chart(
                    title="How calls ended",
                    categories=["cut at the limit", "finished"],
                    series=[{"label": "calls", "values": [cut, calls - cut]}],
                ),
                evidence=[{"feature": feature, "calls": calls, "cut_off": cut, "limit": limit}],
                details={"calls": calls, "cut_off": cut, "share": cut / calls if calls else None},
            )
        )
    return out


def _loose_limits(ctx: FindingContext) -> list[Insight]:
    rows = ctx.rows(
        f"SELECT {_FEATURE} AS feature, COUNT(*) AS calls, COUNT(max_tokens) AS with_limit, "
        "quantile_cont(completion_tokens, 0.5) AS p50, quantile_cont(completion_tokens, 0.99) AS p99, "
        "MAX(completion_tokens) AS top, quantile_cont(max_tokens, 0.5) AS limit_p50 "
        f"FROM spans WHERE {ctx.llm_where()} AND completion_tokens > 0 AND (status IS NULL OR status <> 'error') "
        f"AND NOT {_CUT} GROUP BY {_FEATURE} HAVING COUNT(*) >= {MIN_CALLS}",
        ctx.llm_params(),
    )
    out = []
    for r in rows:
        calls, with_limit = int(num(r["calls"])), int(num(r["with_limit"]))
        p99, limit = num(r["p99"]), r["limit_p50"]
        unset = with_limit < calls / 2
        if not unset and (limit is None or num(limit) < FAR_ABOVE * p99):
            continue
        out.append(_loose(ctx, str(r["feature"]), r, calls, unset, suggested_limit(p99)))
    return out


def _loose(ctx: FindingContext, feature: str, r: dict[str, Any], calls: int, unset: bool, suggested: int) -> Insight:
    over = ctx.rows(
        "SELECT model, provider, SUM(CASE WHEN completion_tokens > ? THEN completion_tokens - ? ELSE 0 END) AS extra, "
        "COUNT(*) FILTER (WHERE completion_tokens > ?) AS n "
        f"FROM spans WHERE {ctx.llm_where()} AND {_FEATURE} = ? AND completion_tokens > 0 GROUP BY model, provider",
        [suggested, suggested, suggested, *ctx.llm_params(), feature],
    )
    usd, over_calls, unpriced = 0.0, 0, 0
    for o in over:
        over_calls += int(num(o["n"]))
        rates = ctx.prices.rates(o["provider"], o["model"])
        if rates is None:
            unpriced += int(num(o["n"]))
        else:
            usd += num(o["extra"]) * rates.output
    p50, p99, top = num(r["p50"]), num(r["p99"]), num(r["top"])
    limit = None if r["limit_p50"] is None else round(num(r["limit_p50"]))
    why = "set no max_tokens" if unset else f"set max_tokens {limit}, over {FAR_ABOVE:g}× what they use"
    assumptions = [
        f"A limit of {suggested} tokens (the 99th percentile of answers, {p99:,.0f}, plus {HEADROOM - 1:.0%}) "
        "leaves 99 % of answers as they are and stops runaway generations.",
        "The output tokens the longest answers spent past that limit are the saving; it is small when answers "
        "are well-behaved: the limit is then a guard against the rare runaway answer.",
    ]
    if unpriced:
        assumptions.append(f"{unpriced} calls of models without a price are counted at $0.")
    return Insight(
        kind=KIND,
        title=f"{feature}: calls {why}; answers need at most about {suggested} tokens",
        scope={"feature": feature, "check": "limit"},
        saving_usd=round(usd, 6),
        saving_usd_per_month=round(ctx.per_month(usd), 6),
        saving_ms_per_trace=None,
        calls_affected=over_calls if over_calls else calls,
        confidence=confidence_for(calls, high=500, medium=50),
        method=(
            "The distribution of completion tokens of the feature's successful calls (not cut off) against the "
            "max_tokens they were sent with. A feature where most calls set none, or whose median limit is "
            f"{FAR_ABOVE:g}× its 99th percentile or more, gets a suggested limit; calls past it are priced at the "
            "output tokens they would not have generated."
        ),
        example_trace_ids=example_traces(ctx, f"{_FEATURE} = ?", [feature], order_by="completion_tokens"),
        assumptions=assumptions,
        summary=f"Median answer {p50:,.0f} tokens, 99th percentile {p99:,.0f}, longest {top:,.0f}; "
        f"{'no limit' if unset else f'limit {limit}'}.",
        chart=Chart(
            title="Completion tokens",
            categories=["median", "99th percentile", "longest", "limit set", "suggested"],
            series=[{"label": "tokens", "values": [round(p50), round(p99), round(top), limit, suggested]}],
        ),
        evidence=[
            {"feature": feature, "calls": calls, "with_limit": int(num(r["with_limit"])), "suggested": suggested}
        ],
        details={"suggested_max_tokens": suggested, "p50": p50, "p99": p99, "max": top, "limit": limit},
    )
