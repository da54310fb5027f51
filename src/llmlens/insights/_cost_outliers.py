"""Cost outliers (the article's "why did a single call cost $5"): calls that cost many times a typical call
of their feature, with what made each expensive: its prompt, its reasoning tokens, its model."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from ._context import FindingContext, counted, num, rule_name
from ._model import Action, Chart, Insight, confidence_for

KIND = "cost_outliers"
FACTOR = 10.0  # a call costing this many times its feature's median is an outlier
MIN_COST_USD = 0.05  # and at least this much: tenfold a tenth of a cent is not worth a finding
MIN_BASELINE = 20  # priced calls a feature needs for its median to mean something
TOP = 500  # the most expensive calls examined


def find_cost_outliers(ctx: FindingContext) -> list[Insight]:
    baselines = {
        str(r["feature"]): r
        for r in ctx.rows(
            "SELECT COALESCE(feature, '(none)') AS feature, COUNT(*) AS calls, "
            "quantile_cont(cost_usd, 0.5) AS median_cost, quantile_cont(prompt_tokens, 0.5) AS median_prompt, "
            "quantile_cont(COALESCE(reasoning_tokens, 0), 0.5) AS median_reasoning "
            f"FROM spans WHERE {ctx.llm_where()} AND cost_usd > 0 GROUP BY COALESCE(feature, '(none)') "
            f"HAVING COUNT(*) >= {MIN_BASELINE}",
            ctx.llm_params(),
        )
    }
    if not baselines:
        return []
    usual_model: dict[str, tuple[str, float]] = {}
    for r in ctx.rows(
        "SELECT COALESCE(feature, '(none)') AS feature, model, COUNT(*) AS calls, AVG(cost_usd) AS cpc "
        f"FROM spans WHERE {ctx.llm_where()} AND cost_usd > 0 GROUP BY COALESCE(feature, '(none)'), model "
        "ORDER BY calls DESC, model",
        ctx.llm_params(),
    ):
        usual_model.setdefault(str(r["feature"]), (str(r["model"]), num(r["cpc"])))
    top = ctx.rows(
        "SELECT COALESCE(feature, '(none)') AS feature, trace_id, span_id, model, cost_usd, prompt_tokens, "
        "completion_tokens, reasoning_tokens, timestamp "
        f"FROM spans WHERE {ctx.llm_where()} AND cost_usd >= ? ORDER BY cost_usd DESC LIMIT {TOP}",
        [*ctx.llm_params(), MIN_COST_USD],
    )
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for call in top:
        base = baselines.get(str(call["feature"]))
        if base is None or num(call["cost_usd"]) < FACTOR * num(base["median_cost"]):
            continue
        call["reasons"] = _reasons(call, base, usual_model.get(str(call["feature"])))
        found[str(call["feature"])].append(call)
    return [_insight(ctx, feature, calls, baselines[feature], len(top) >= TOP) for feature, calls in found.items()]


def _reasons(call: dict[str, Any], base: dict[str, Any], usual: tuple[str, float] | None) -> list[str]:
    """What set this call apart from a typical call of its feature."""
    reasons = []
    prompt, typical_prompt = num(call["prompt_tokens"]), num(base["median_prompt"])
    if typical_prompt and prompt >= 3 * typical_prompt:
        reasons.append(
            f"prompt of {prompt:,.0f} tokens ({prompt / typical_prompt:.0f}× the usual {typical_prompt:,.0f})"
        )
    reasoning = num(call["reasoning_tokens"])
    if reasoning >= max(1000.0, 3 * num(base["median_reasoning"])):
        reasons.append(f"{reasoning:,.0f} reasoning tokens")
    completion = num(call["completion_tokens"])
    if usual is not None and call["model"] != usual[0]:
        reasons.append(f"model {call['model']} (the feature mostly uses {usual[0]})")
    if not reasons:
        reasons.append(f"{prompt:,.0f} prompt and {completion:,.0f} completion tokens on {call['model']}")
    return reasons


def _insight(
    ctx: FindingContext, feature: str, calls: list[dict[str, Any]], base: dict[str, Any], capped: bool
) -> Insight:
    median = num(base["median_cost"])
    excess = sum(num(c["cost_usd"]) - median for c in calls)
    worst = max(num(c["cost_usd"]) for c in calls)
    shown = calls[:8]
    assumptions = [
        "Had each outlier cost what a typical (median) call of its feature costs, the difference would be saved: "
        "the calls may be legitimate, but each one shows what drives the bill (cap prompt size, route large "
        "inputs to a cheaper model, limit reasoning effort).",
    ]
    if capped:
        assumptions.append(f"Only the {TOP} most expensive calls of the window were examined.")
    return Insight(
        kind=KIND,
        title=f"{counted(len(calls), 'call')} in {feature} cost over {FACTOR:g}× a typical call "
        f"(up to ${worst:,.2f}, typical ${median:.4f})",
        scope={"feature": feature},
        saving_usd=round(excess, 6),
        saving_usd_per_month=round(ctx.per_month(excess), 6),
        saving_ms_per_trace=None,
        calls_affected=len(calls),
        confidence=confidence_for(int(base["calls"]), high=200, medium=MIN_BASELINE),
        method=(
            f"The {TOP} most expensive LLM calls of the window against the median cost of their feature's priced "
            f"calls: a call costing {FACTOR:g}× the median and at least ${MIN_COST_USD:.2f} is an outlier. Each is "
            "explained by what differs from the feature's typical call: prompt size (3× the median), reasoning "
            "tokens, or a model the feature does not usually use."
        ),
        example_trace_ids=list(dict.fromkeys(str(c["trace_id"]) for c in calls))[:5],
        assumptions=assumptions,
        summary=f"{len(calls)} calls cost ${excess + median * len(calls):,.2f}; at the typical ${median:.4f} each "
        f"they would have cost ${median * len(calls):,.4f}.",
        chart=Chart(
            title="Cost of the outliers and of a typical call",
            categories=["typical", *(str(c["trace_id"])[:8] for c in shown)],
            series=[{"label": "cost", "values": [round(median, 6), *(round(num(c["cost_usd"]), 6) for c in shown)]}],
            unit="$",
        ),
        evidence=[
            {
                "trace_id": str(c["trace_id"]),
                "model": c["model"],
                "cost_usd": num(c["cost_usd"]),
                "prompt_tokens": c["prompt_tokens"],
                "why": "; ".join(c["reasons"]),
            }
            for c in shown
        ],
        action=Action(
            kind="alert",
            label=f"Alert on cost spikes in {feature}",
            method="POST",
            url="/api/v1/alerts/rules",
            body={
                "name": rule_name(f"insights cost spike {feature}"),
                "type": "cost_spike",
                "scope": {"feature": feature},
                "factor": 3.0,
            },
            note="A cost_spike rule on this feature: it fires when an hour's spend is 3× its usual.",
        ),
        details={"median_cost_usd": median, "max_cost_usd": worst},
    )
