"""Smaller-model candidates: a feature that runs on an expensive model while a cheaper model already
answers the same feature with feedback that is not significantly different."""

from __future__ import annotations

import re
import shlex
from collections import defaultdict
from typing import Any

from llmlens.query.stats import two_proportion_test

from ._context import FindingContext, example_traces, num
from ._model import Action, Chart, Insight, confidence_for

KIND = "smaller_model"
EXPERIMENT_CALLS = 20
MIN_CALLS = 20
CHEAPER = 0.7  # the candidate costs at most this share of the expensive model per call


def _dataset_name(feature: str, model: str) -> str:
    """A dataset name (letters, digits, _.-) for the feature's calls on a model."""
    text = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"insights-{feature}-{model}").strip("-.")
    return text[:100] or "insights"


def find_smaller_model(ctx: FindingContext) -> list[Insight]:
    usage = ctx.rows(
        "SELECT COALESCE(feature, '(none)') AS feature, model, COUNT(*) AS calls, SUM(cost_usd) AS cost, "
        f"COUNT(cost_usd) AS priced FROM spans WHERE {ctx.llm_where()} AND model IS NOT NULL "
        "AND (status IS NULL OR status <> 'error') GROUP BY COALESCE(feature, '(none)'), model",
        ctx.llm_params(),
    )
    rated = {
        (r["feature"], r["model"]): (int(num(r["ups"])), int(num(r["n"])))
        for r in ctx.rows(
            "SELECT COALESCE(s.feature, '(none)') AS feature, s.model, COUNT(*) AS n, "
            "SUM(CASE WHEN f.feedback_type = 'thumbs_up' THEN 1 ELSE 0 END) AS ups "
            "FROM spans s JOIN feedback_events f ON f.project = s.project AND f.message_id = s.message_id "
            f"WHERE {ctx.llm_where('s')} AND f.feedback_type IN ('thumbs_up', 'thumbs_down') "
            "GROUP BY COALESCE(s.feature, '(none)'), s.model",
            ctx.llm_params(),
        )
    }
    features: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for u in usage:
        if int(num(u["priced"])) >= MIN_CALLS and num(u["cost"]) > 0:
            u["cpc"] = num(u["cost"]) / int(num(u["priced"]))
            features[str(u["feature"])].append(u)
    out = []
    for feature, models in features.items():
        for expensive in models:
            best = _cheaper_equal(feature, expensive, models, rated)
            if best is not None:
                out.append(_insight(ctx, feature, expensive, best, models, rated))
    return out


def _cheaper_equal(
    feature: str,
    expensive: dict[str, Any],
    models: list[dict[str, Any]],
    rated: dict[tuple[str, str], tuple[int, int]],
) -> dict[str, Any] | None:
    """The cheapest model of the feature whose feedback is not significantly different from `expensive`'s."""
    e_up, e_n = rated.get((feature, expensive["model"]), (0, 0))
    found = None
    for m in sorted(models, key=lambda m: m["cpc"]):
        if m is expensive or m["cpc"] > CHEAPER * expensive["cpc"]:
            continue
        c_up, c_n = rated.get((feature, m["model"]), (0, 0))
        test = two_proportion_test(e_up, e_n, c_up, c_n, "satisfaction")
        if test.too_small or test.significant:
            continue
        m["test"] = test
        found = m
        break
    return found


def _insight(
    ctx: FindingContext,
    feature: str,
    expensive: dict[str, Any],
    cheap: dict[str, Any],
    models: list[dict[str, Any]],
    rated: dict[tuple[str, str], tuple[int, int]],
) -> Insight:
    e_model, c_model = str(expensive["model"]), str(cheap["model"])
    calls = int(num(expensive["priced"]))
    saving = calls * (expensive["cpc"] - cheap["cpc"])
    test = cheap["test"]
    n = min(test.a.n, test.b.n)
    confidence = confidence_for(n, high=200, medium=60)
    dataset = _dataset_name(feature, e_model)
    command = (
        f"llmlens experiment run {dataset} --from-filter feature={shlex.quote(feature)} "
        f"--from-filter model={shlex.quote(e_model)} --from-filter limit={EXPERIMENT_CALLS} "
        f"--variant model={shlex.quote(e_model)} --variant model={shlex.quote(c_model)} --evaluator helpfulness"
    )
    shown = sorted(models, key=lambda m: -m["cpc"])[:6]
    return Insight(
        kind=KIND,
        title=f"{feature}: {c_model} answers as well as {e_model} at {cheap['cpc'] / expensive['cpc']:.0%} of the "
        "cost per call",
        scope={"feature": feature, "model": e_model, "candidate": c_model},
        saving_usd=round(saving, 6),
        saving_usd_per_month=round(ctx.per_month(saving), 6),
        saving_ms_per_trace=None,
        calls_affected=calls,
        confidence=confidence,
        method=(
            "Per feature, each model's cost per successful call and its share of thumbs-up among rated calls. A "
            f"model at most {CHEAPER:.0%} of another's cost per call, whose satisfaction a two-proportion z-test "
            "finds not significantly different (5 % level, at least 30 rated calls each), is a candidate; the "
            "saving is the expensive model's calls at the difference in cost per call."
        ),
        example_trace_ids=example_traces(ctx, "COALESCE(feature, '(none)') = ? AND model = ?", [feature, e_model]),
        assumptions=[
            "The two models get similar requests within the feature, so a call costs on the cheaper model what "
            "the cheaper model's calls cost on average.",
            f"Feedback is the measure of quality: {test.verdict} Not finding a difference is not proof there is "
            "none; replay a sample of the feature's calls on the cheaper model to confirm.",
        ],
        summary=f"{calls} calls on {e_model} at ${expensive['cpc']:.4f} each; {c_model} costs "
        f"${cheap['cpc']:.4f} per call in the same feature.",
        chart=Chart(
            title=f"Cost per call in {feature}",
            categories=[str(m["model"]) for m in shown],
            series=[{"label": "cost per call", "values": [round(m["cpc"], 6) for m in shown]}],
            unit="$",
        ),
        evidence=[
            {
                "model": str(m["model"]),
                "calls": int(num(m["calls"])),
                "cost_per_call_usd": round(m["cpc"], 6),
                "rated": rated.get((feature, m["model"]), (0, 0))[1],
                "thumbs_up": rated.get((feature, m["model"]), (0, 0))[0],
            }
            for m in shown
        ],
        action=Action(
            kind="experiment",
            label=f"Run an experiment: {e_model} against {c_model} on {EXPERIMENT_CALLS} calls of {feature}",
            method="POST",
            url="/api/v1/experiments",
            body={
                "name": f"{feature}: {e_model} vs {c_model}",
                "dataset": {
                    "name": dataset,
                    "filter": {"feature": feature, "model": e_model, "limit": EXPERIMENT_CALLS, "range": "30d"},
                },
                "variants": [{"model": e_model}, {"model": c_model}],
                "evaluators": ["helpfulness"],
                "max_cost_usd": 2.0,
            },
            command=command,
            note=f"Puts the feature's {EXPERIMENT_CALLS} latest calls on {e_model} in the dataset {dataset}, sends "
            f"each to both models, has the judge score how helpful each answer is, and shows the answers side by "
            f"side with their cost, latency, win rate and a paired test ({e_model}, the model in use, is the "
            "baseline).",
        ),
        details={
            "cost_per_call_usd": round(expensive["cpc"], 6),
            "candidate_cost_per_call_usd": round(cheap["cpc"], 6),
            "satisfaction": test.a.rate,
            "candidate_satisfaction": test.b.rate,
            "p_value": test.p_value,
        },
    )
