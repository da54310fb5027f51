"""Retries and rate limits: bursts of rate-limit errors by model and provider, failed calls that were
charged anyway, and tool calls retried with the same failing arguments."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from ._context import FindingContext, counted, example_traces, num, rule_name
from ._model import Action, Chart, Insight, confidence_for

KIND = "retries"
BURST_PER_MINUTE = 5  # rate-limit errors in one minute that make a burst
_RATE_LIMITED = "(error_type = 'rate_limit' OR http_status = 429)"
_FAILED_TOOL = "(status = 'error' OR tool_success = FALSE)"


def find_retries(ctx: FindingContext) -> list[Insight]:
    return [*_rate_limit_bursts(ctx), *_paid_failures(ctx), *_tool_retries(ctx)]


def _rate_limit_bursts(ctx: FindingContext) -> list[Insight]:
    rows = ctx.rows(
        "SELECT COALESCE(model, '(none)') AS model, COALESCE(provider, '(none)') AS provider, "
        "date_trunc('minute', timestamp) AS minute, COUNT(*) AS errors, SUM(latency_ms) AS latency, "
        "COUNT(DISTINCT trace_id) AS traces "
        f"FROM spans WHERE {ctx.llm_where()} AND {_RATE_LIMITED} "
        "GROUP BY COALESCE(model, '(none)'), COALESCE(provider, '(none)'), date_trunc('minute', timestamp)",
        ctx.llm_params(),
    )
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[(str(r["model"]), str(r["provider"]))].append(r)
    out = []
    for (model, provider), minutes in groups.items():
        bursts = [m for m in minutes if int(m["errors"]) >= BURST_PER_MINUTE]
        if not bursts:
            continue
        errors = sum(int(m["errors"]) for m in minutes)
        in_bursts = sum(int(m["errors"]) for m in bursts)
        waited = sum(num(m["latency"]) for m in minutes)
        traces = sum(int(num(m["traces"])) for m in minutes)
        peak = max(bursts, key=lambda m: int(m["errors"]))
        shown = sorted(bursts, key=lambda m: m["minute"])[-12:]
        out.append(
            Insight(
                kind=KIND,
                title=f"{model}: {counted(len(bursts), 'burst')} of rate-limit errors ({in_bursts} errors, up to "
                f"{int(peak['errors'])} a minute)",
                scope={"model": model, "provider": provider, "check": "rate_limit"},
                saving_usd=0.0,
                saving_usd_per_month=0.0,
                saving_ms_per_trace=round(waited / traces, 1) if traces else None,
                calls_affected=errors,
                confidence=confidence_for(errors, high=100, medium=20),
                method=(
                    "LLM calls refused for rate or quota (error type rate_limit, or HTTP 429), counted per model, "
                    f"provider and minute; a minute with {BURST_PER_MINUTE} or more is a burst. The time is what "
                    "the refused attempts took, per trace that had one."
                ),
                example_trace_ids=example_traces(ctx, f"model = ? AND {_RATE_LIMITED}", [model], order_by="timestamp"),
                assumptions=[
                    "A refused call costs nothing but the time it took and the backoff after it (not recorded: the "
                    "saving is a floor).",
                    "Spreading calls (a queue, a concurrency limit, jittered backoff) or a higher rate tier avoids "
                    "the refusals. llmlens does not record which provider key a call used.",
                ],
                saving_s_per_month=round(ctx.per_month(waited) / 1000, 1),
                traces_affected=traces,
                summary=f"{errors} calls to {model} were refused for rate limits, {in_bursts} of them in "
                f"{len(bursts)} burst minutes.",
                chart=Chart(
                    title="Rate-limit errors per burst minute",
                    categories=[str(m["minute"])[5:16] for m in shown],
                    series=[{"label": "errors", "values": [int(m["errors"]) for m in shown]}],
                ),
                evidence=[{"minute": str(m["minute"])[:16], "errors": int(m["errors"])} for m in shown],
                action=Action(
                    kind="alert",
                    label=f"Alert on error bursts of {model}",
                    method="POST",
                    url="/api/v1/alerts/rules",
                    body={
                        "name": rule_name(f"insights errors {model}"),
                        "type": "error_rate",
                        "scope": {"model": model},
                        "max_error_rate": 0.05,
                        "window_minutes": 5,
                    },
                    note="An error_rate rule on this model: it fires when over 5 % of its calls fail in 5 minutes.",
                ),
                details={"bursts": len(bursts), "errors": errors, "errors_in_bursts": in_bursts},
            )
        )
    return out


def _paid_failures(ctx: FindingContext) -> list[Insight]:
    rows = ctx.rows(
        "SELECT COALESCE(feature, '(none)') AS feature, COALESCE(model, '(none)') AS model, COUNT(*) AS calls, "
        "SUM(cost_usd) AS cost, COUNT(DISTINCT trace_id) AS traces "
        f"FROM spans WHERE {ctx.llm_where()} AND status = 'error' AND cost_usd > 0 "
        "GROUP BY COALESCE(feature, '(none)'), COALESCE(model, '(none)')",
        ctx.llm_params(),
    )
    by_feature: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_feature[str(r["feature"])].append(r)
    out = []
    for feature, models in by_feature.items():
        calls = sum(int(m["calls"]) for m in models)
        usd = sum(num(m["cost"]) for m in models)
        if calls < 3 or usd <= 0:
            continue
        out.append(
            Insight(
                kind=KIND,
                title=f"{feature}: {counted(calls, 'failed call')} charged anyway "
                f"({', '.join(str(m['model']) for m in models)})",
                scope={"feature": feature, "check": "paid_failures"},
                saving_usd=round(usd, 6),
                saving_usd_per_month=round(ctx.per_month(usd), 6),
                saving_ms_per_trace=None,
                calls_affected=calls,
                confidence=confidence_for(calls, high=50, medium=10),
                method="LLM calls that ended in an error but report a cost (tokens were billed): money spent "
                "without an answer, per feature.",
                example_trace_ids=example_traces(
                    ctx, "COALESCE(feature, '(none)') = ? AND status = 'error' AND cost_usd > 0", [feature]
                ),
                assumptions=[
                    "A failure that bills tokens (a timeout after generation started, an answer dropped by the "
                    "client) is avoidable: shorter timeouts on the client, smaller requests, or no blind retry.",
                ],
                traces_affected=sum(int(num(m["traces"])) for m in models),
                summary=f"${usd:.4f} billed for {calls} calls that failed.",
                chart=Chart(
                    title="Billed failures per model",
                    categories=[str(m["model"]) for m in models],
                    series=[{"label": "cost", "values": [round(num(m["cost"]), 6) for m in models]}],
                    unit="$",
                ),
                evidence=[
                    {"model": str(m["model"]), "calls": int(m["calls"]), "cost_usd": num(m["cost"])} for m in models
                ],
            )
        )
    return out


def _tool_retries(ctx: FindingContext) -> list[Insight]:
    rows = ctx.rows(
        "SELECT tool_name, trace_id, COUNT(*) AS attempts, "
        f"SUM(CASE WHEN {_FAILED_TOOL} THEN 1 ELSE 0 END) AS failures, "
        f"SUM(CASE WHEN {_FAILED_TOOL} THEN latency_ms ELSE 0 END) AS failed_ms "
        f"FROM spans WHERE {ctx.span_where()} AND kind = 'tool' AND tool_name IS NOT NULL "
        "GROUP BY tool_name, trace_id, COALESCE(CAST(tool_args AS VARCHAR), '') "
        f"HAVING SUM(CASE WHEN {_FAILED_TOOL} THEN 1 ELSE 0 END) >= 2",
        ctx.llm_params(),
    )
    tools: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        tools[str(r["tool_name"])].append(r)
    out = []
    for tool, groups in tools.items():
        # Of n failures with the same arguments, the n - 1 after the first were retries that could not work.
        wasted_calls = sum(int(g["failures"]) - 1 for g in groups)
        wasted_ms = sum(num(g["failed_ms"]) * (int(g["failures"]) - 1) / int(g["failures"]) for g in groups)
        traces = len({g["trace_id"] for g in groups})
        if wasted_calls < 2:
            continue
        out.append(
            Insight(
                kind=KIND,
                title=f"Tool {tool} is retried with the same failing arguments ({wasted_calls} retries in "
                f"{traces} traces)",
                scope={"tool": tool, "check": "tool_retries"},
                saving_usd=0.0,
                saving_usd_per_month=0.0,
                saving_ms_per_trace=round(wasted_ms / traces, 1),
                calls_affected=wasted_calls,
                confidence=confidence_for(wasted_calls, high=50, medium=10),
                method=(
                    "Tool calls of one trace with the same tool and the same arguments that failed two or more "
                    "times: every failure after the first repeated a call that had already failed."
                ),
                example_trace_ids=[str(g["trace_id"]) for g in groups[:5]],
                assumptions=[
                    "The same arguments fail the same way again; retry only on transient errors, or change the "
                    "arguments (the model can, if it is shown the error).",
                    "Only the retries' own time is counted, not the model calls around them.",
                ],
                saving_s_per_month=round(ctx.per_month(wasted_ms) / 1000, 1),
                traces_affected=traces,
                summary=f"{wasted_calls} repeated failures of {tool} took {wasted_ms / 1000:.1f} s.",
                chart=Chart(
                    title="Failures with the same arguments, per trace",
                    categories=[str(g["trace_id"])[:12] for g in groups[:10]],
                    series=[{"label": "failed attempts", "values": [int(g["failures"]) for g in groups[:10]]}],
                ),
                evidence=[
                    {"trace_id": str(g["trace_id"]), "attempts": int(g["attempts"]), "failures": int(g["failures"])}
                    for g in groups[:10]
                ],
            )
        )
    return out
