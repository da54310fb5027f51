"""Evaluate one rule at one instant over the stored data: rule + store + now -> Evaluation.

No state and no side effects: the state machine (state.py) decides what an Evaluation means.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from llmlens.store import Store

from . import attribution
from ._sql import Range, as_float, first_timestamp, one, rows, scope_clause
from .baseline import DAY, RobustBaseline, robust_baseline, seasonal_windows
from .rules import RuleSpec, budget_limit

# A static baseline needs this much history before a rule may fire: no alerts on a fresh install.
MIN_BASELINE_HISTORY = timedelta(days=1)
# A forecast_budget rule needs this many days of spend history before it may fire.
FORECAST_MIN_DAYS = 7


@dataclass(slots=True)
class Evaluation:
    """What one rule saw: the measured value against its threshold, and why if it fires."""

    rule: RuleSpec
    project: str
    at: datetime
    firing: bool
    value: float | None
    threshold: float | None
    unit: str  # usd | ratio | ms | tokens | change
    sample_size: int
    enough_samples: bool
    window_start: datetime | None
    window_end: datetime | None
    message: str
    baseline: dict[str, Any] = field(default_factory=dict)
    attribution: dict[str, Any] = field(default_factory=dict)
    links: dict[str, Any] = field(default_factory=dict)

    @property
    def samples_needed(self) -> int:
        """What `sample_size` must reach before the rule may fire: calls, or days for a forecast."""
        return FORECAST_MIN_DAYS if self.rule.type == "forecast_budget" else self.rule.min_samples

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule.name,
            "type": self.rule.type,
            "project": self.project,
            "at": self.at,
            "firing": self.firing,
            "value": self.value,
            "threshold": self.threshold,
            "unit": self.unit,
            "sample_size": self.sample_size,
            "samples_needed": self.samples_needed,
            "enough_samples": self.enough_samples,
            "window_start": self.window_start,
            "window_end": self.window_end,
            "message": self.message,
            "baseline": self.baseline,
            "attribution": self.attribution,
            "links": self.links,
        }


@dataclass(frozen=True, slots=True)
class EvaluationContext:
    store: Store
    project: str
    now: datetime
    base_url: str = ""
    budgets: Mapping[str, Any] = field(default_factory=dict)


def evaluate_rule(rule: RuleSpec, ctx: EvaluationContext) -> Evaluation:
    evaluator = _EVALUATORS[rule.type]
    return evaluator(rule, ctx)


# -- window metrics ------------------------------------------------------------------------------

_METRIC_SQL = {
    "cost_spike": "sum(cost_usd)",
    "error_rate": "avg(CASE WHEN status = 'error' THEN 1.0 ELSE 0.0 END)",
    "latency_p95": "quantile_cont(latency_ms, 0.95)",
    "prompt_drift": "avg(CASE WHEN status = 'error' THEN NULL ELSE prompt_tokens END)",
}
_UNITS = {"cost_spike": "usd", "error_rate": "ratio", "latency_p95": "ms", "prompt_drift": "tokens"}


def _metric(ctx: EvaluationContext, rule: RuleSpec, window: Range) -> tuple[float | None, int]:
    scope_sql, scope_params = scope_clause(rule.scope)
    row = one(
        ctx.store,
        f"SELECT count(*) AS calls, {_METRIC_SQL[rule.type]} AS value FROM spans "
        f"WHERE kind = 'llm' AND project = ? AND timestamp >= ? AND timestamp < ?{scope_sql}",
        [ctx.project, window[0], window[1], *scope_params],
    )
    value = row.get("value")
    calls = int(row.get("calls") or 0)
    if rule.type == "cost_spike":
        return as_float(value), calls
    return (None if value is None else float(value)), calls


def _window(rule: RuleSpec, now: datetime) -> Range:
    return now - timedelta(minutes=rule.window_minutes), now


def _seasonal(rule: RuleSpec, ctx: EvaluationContext, window: Range) -> tuple[RobustBaseline | None, list[Range]]:
    first = first_timestamp(ctx.store, ctx.project)
    candidates, kind = seasonal_windows(window, weeks=rule.seasonal_weeks, first_data=first)
    values: list[float] = []
    used: list[Range] = []
    for past in candidates:
        value, calls = _metric(ctx, rule, past)
        # A window too small to measure a rate or a percentile says nothing about the usual level.
        if value is None or (rule.type != "cost_spike" and calls < rule.min_samples):
            continue
        values.append(value)
        used.append(past)
    return robust_baseline(values, kind), used


def _fmt(unit: str, value: float | None) -> str:
    if value is None:
        return "n/a"
    if unit == "usd":
        return f"${value:,.4f}" if value < 1 else f"${value:,.2f}"
    if unit == "ratio":
        return f"{value:.1%}"
    if unit == "ms":
        return f"{value:,.0f} ms"
    if unit == "change":
        return f"{value:+.0%}"
    if unit == "score":
        return f"{value:.3f}"
    return f"{value:,.0f}"


def _evaluate_seasonal(rule: RuleSpec, ctx: EvaluationContext) -> Evaluation:
    window = _window(rule, ctx.now)
    value, calls = _metric(ctx, rule, window)
    unit = _UNITS[rule.type]
    enough = calls >= rule.min_samples
    baseline, used = _seasonal(rule, ctx, window)
    threshold = baseline.boundary(rule.z_threshold, rule.min_change) if baseline else None
    firing = bool(enough and value is not None and threshold is not None and value > threshold)
    info: dict[str, Any] = {"kind": "seasonal", "windows": len(used)}
    if baseline is not None:
        info.update(
            pattern=baseline.kind,
            median=baseline.median,
            scale=baseline.scale,
            score=None if value is None else round(baseline.score(value), 3),
        )
    what = rule.type.replace("_", " ")
    if baseline is None:
        message = f"{rule.name}: not enough history for a seasonal baseline ({len(used)} comparable windows)"
    else:
        message = (
            f"{rule.name}: {what} {_fmt(unit, value)} over the last {rule.window_minutes} min; usually "
            f"{_fmt(unit, baseline.median)} at this hour ({baseline.kind}), deviation score "
            f"{info['score'] if info['score'] is not None else 'n/a'} (fires above {_fmt(unit, threshold)})"
        )
    evaluation = Evaluation(
        rule=rule,
        project=ctx.project,
        at=ctx.now,
        firing=firing,
        value=value,
        threshold=threshold,
        unit=unit,
        sample_size=calls,
        enough_samples=enough,
        window_start=window[0],
        window_end=window[1],
        message=message,
        baseline=info,
    )
    if firing:
        _attribute(evaluation, ctx, used, float(len(used)))
    return evaluation


def _static_baseline_range(rule: RuleSpec, ctx: EvaluationContext, window: Range) -> tuple[Range, float] | None:
    """[start, window start) over the last baseline_days, clipped to the data; and how many windows long."""
    first = first_timestamp(ctx.store, ctx.project)
    start = window[0] - timedelta(days=rule.baseline_days)
    if first is None or window[0] - first < MIN_BASELINE_HISTORY:
        return None
    start = max(start, first)
    windows = (window[0] - start) / (window[1] - window[0])
    return (start, window[0]), windows


def _attribute(evaluation: Evaluation, ctx: EvaluationContext, baseline: list[Range], windows: float) -> None:
    rule = evaluation.rule
    window = (evaluation.window_start, evaluation.window_end)
    assert window[0] is not None and window[1] is not None
    current: Range = (window[0], window[1])
    if rule.type == "cost_spike":
        found = attribution.cost_drivers(ctx.store, ctx.project, rule.scope, current, baseline, windows)
    elif rule.type == "error_rate":
        found = attribution.error_breakdown(ctx.store, ctx.project, rule.scope, current)
    elif rule.type == "latency_p95":
        found = attribution.latency_breakdown(ctx.store, ctx.project, rule.scope, current, baseline)
    else:
        found = attribution.prompt_growth(ctx.store, ctx.project, rule.scope, current, baseline, "template")
    evaluation.attribution = found
    evaluation.links = attribution.links(ctx.base_url, ctx.project, rule, current, found)
    headline = attribution.headline(rule.type, found)
    if headline:
        evaluation.message += f"; {headline}"


# -- static rules --------------------------------------------------------------------------------


def _evaluate_cost_spike(rule: RuleSpec, ctx: EvaluationContext) -> Evaluation:
    if rule.baseline == "seasonal":
        return _evaluate_seasonal(rule, ctx)
    window = _window(rule, ctx.now)
    spend, calls = _metric(ctx, rule, window)
    enough = calls >= rule.min_samples
    base = _static_baseline_range(rule, ctx, window)
    if base is None:
        return _no_history(rule, ctx, window, spend, calls, "usd")
    (b_start, b_end), windows = base
    scope_sql, scope_params = scope_clause(rule.scope)
    row = one(
        ctx.store,
        "SELECT sum(cost_usd) AS spend FROM spans WHERE kind = 'llm' AND project = ? AND timestamp >= ? "
        f"AND timestamp < ?{scope_sql}",
        [ctx.project, b_start, b_end, *scope_params],
    )
    average = as_float(row.get("spend")) / windows
    threshold = rule.threshold * average
    firing = bool(enough and spend is not None and spend > threshold and spend > 0)
    evaluation = Evaluation(
        rule=rule,
        project=ctx.project,
        at=ctx.now,
        firing=firing,
        value=spend,
        threshold=threshold,
        unit="usd",
        sample_size=calls,
        enough_samples=enough,
        window_start=window[0],
        window_end=window[1],
        message=(
            f"{rule.name}: {_fmt('usd', spend)} spent in the last {rule.window_minutes} min, "
            f"{(spend or 0) / average if average else float('inf'):.1f}x the average of "
            f"{_fmt('usd', average)} over the last {(b_end - b_start) / DAY:.1f} days (limit {rule.threshold:g}x)"
        ),
        baseline={"kind": "static", "average": average, "from": b_start, "to": b_end, "windows": windows},
    )
    if firing:
        _attribute(evaluation, ctx, [(b_start, b_end)], windows)
    return evaluation


def _no_history(
    rule: RuleSpec, ctx: EvaluationContext, window: Range, value: float | None, calls: int, unit: str
) -> Evaluation:
    return Evaluation(
        rule=rule,
        project=ctx.project,
        at=ctx.now,
        firing=False,
        value=value,
        threshold=None,
        unit=unit,
        sample_size=calls,
        enough_samples=calls >= rule.min_samples,
        window_start=window[0],
        window_end=window[1],
        message=f"{rule.name}: less than {MIN_BASELINE_HISTORY.days} day of history for a baseline",
        baseline={"kind": "static", "history": "too short"},
    )


def _evaluate_threshold(rule: RuleSpec, ctx: EvaluationContext) -> Evaluation:
    """error_rate and latency_p95 against their static thresholds (the article's 5% and 5 s)."""
    if rule.baseline == "seasonal":
        return _evaluate_seasonal(rule, ctx)
    window = _window(rule, ctx.now)
    value, calls = _metric(ctx, rule, window)
    unit = _UNITS[rule.type]
    enough = calls >= rule.min_samples
    firing = bool(enough and value is not None and value > rule.threshold)
    what = "error rate" if rule.type == "error_rate" else "p95 latency"
    evaluation = Evaluation(
        rule=rule,
        project=ctx.project,
        at=ctx.now,
        firing=firing,
        value=value,
        threshold=rule.threshold,
        unit=unit,
        sample_size=calls,
        enough_samples=enough,
        window_start=window[0],
        window_end=window[1],
        message=(
            f"{rule.name}: {what} {_fmt(unit, value)} over {calls} calls in the last {rule.window_minutes} min "
            f"(limit {_fmt(unit, rule.threshold)})"
        ),
        baseline={"kind": "static"},
    )
    if firing:
        first = first_timestamp(ctx.store, ctx.project) or window[0]
        base_start = max(window[0] - timedelta(days=rule.baseline_days), first)
        _attribute(evaluation, ctx, [(base_start, window[0])], 1.0)
    return evaluation


def _evaluate_prompt_drift(rule: RuleSpec, ctx: EvaluationContext) -> Evaluation:
    if rule.baseline == "seasonal":
        return _evaluate_seasonal(rule, ctx)
    window = _window(rule, ctx.now)
    base = _static_baseline_range(rule, ctx, window)
    _, calls = _metric(ctx, rule, window)
    if base is None:
        return _no_history(rule, ctx, window, None, calls, "change")
    (b_start, b_end), _ = base
    groups = attribution.prompt_growth(
        ctx.store, ctx.project, rule.scope, window, [(b_start, b_end)], rule.group_by, min_samples=rule.min_samples
    )
    measured = [g for g in groups["groups"] if g["change"] is not None and g["calls"] >= rule.min_samples]
    worst = max(measured, key=lambda g: abs(g["change"]), default=None)
    value = None if worst is None else abs(float(worst["change"]))
    enough = worst is not None
    firing = bool(value is not None and value > rule.threshold)
    if worst is None:
        what = rule.group_by if rule.group_by != "none" else "traffic"
        message = f"{rule.name}: no {what} with {rule.min_samples}+ calls in the last {rule.window_minutes} min"
    else:
        label = worst["name"] if rule.group_by != "none" else "all calls"
        message = (
            f"{rule.name}: average prompt of {label} is {worst['current_avg']:,.0f} tokens against "
            f"{worst['baseline_avg']:,.0f} over the last {(b_end - b_start) / DAY:.1f} days "
            f"({worst['change']:+.0%}, limit ±{rule.threshold:.0%})"
        )
    evaluation = Evaluation(
        rule=rule,
        project=ctx.project,
        at=ctx.now,
        firing=firing,
        value=value,
        threshold=rule.threshold,
        unit="change",
        sample_size=int(worst["calls"]) if worst else calls,
        enough_samples=enough,
        window_start=window[0],
        window_end=window[1],
        message=message,
        baseline={"kind": "static", "from": b_start, "to": b_end, "group_by": rule.group_by},
    )
    if firing:
        drifted = [g for g in measured if abs(g["change"]) > rule.threshold]
        if rule.group_by == "template":
            versions = attribution.template_versions(
                ctx.store, ctx.project, rule.scope, window, (b_start, b_end), drifted
            )
        else:
            versions = []
        evaluation.attribution = {"groups": drifted, "versions": versions, "group_by": rule.group_by}
        evaluation.links = attribution.links(ctx.base_url, ctx.project, rule, window, evaluation.attribution)
        headline = attribution.headline("prompt_drift", evaluation.attribution)
        if headline:
            evaluation.message += f"; {headline}"
    return evaluation


def _evaluate_tool_success(rule: RuleSpec, ctx: EvaluationContext) -> Evaluation:
    window = _window(rule, ctx.now)
    first = first_timestamp(ctx.store, ctx.project, "tool_logs")
    if first is None or window[0] - first < MIN_BASELINE_HISTORY:
        return _no_history(rule, ctx, window, None, 0, "ratio")
    b_start = max(window[0] - timedelta(days=rule.baseline_days), first)
    tools = attribution.tool_drops(ctx.store, ctx.project, rule.scope, window, (b_start, window[0]))
    measured = [t for t in tools if t["calls"] >= rule.min_samples and t["baseline_rate"] is not None]
    worst = max(measured, key=lambda t: t["drop"], default=None)
    value = None if worst is None else float(worst["drop"])
    firing = bool(value is not None and value > rule.threshold)
    if worst is None:
        message = f"{rule.name}: no tool with {rule.min_samples}+ calls in the last {rule.window_minutes} min"
    else:
        message = (
            f"{rule.name}: {worst['tool']} succeeded {worst['current_rate']:.0%} of {worst['calls']} calls in the "
            f"last {rule.window_minutes} min against {worst['baseline_rate']:.0%} before "
            f"(drop {worst['drop']:.0%}, limit {rule.threshold:.0%})"
        )
    evaluation = Evaluation(
        rule=rule,
        project=ctx.project,
        at=ctx.now,
        firing=firing,
        value=value,
        threshold=rule.threshold,
        unit="ratio",
        sample_size=int(worst["calls"]) if worst else 0,
        enough_samples=worst is not None,
        window_start=window[0],
        window_end=window[1],
        message=message,
        baseline={"kind": "static", "from": b_start, "to": window[0]},
    )
    if firing:
        evaluation.attribution = {"tools": [t for t in measured if t["drop"] > rule.threshold]}
        evaluation.links = attribution.links(ctx.base_url, ctx.project, rule, window, evaluation.attribution)
    return evaluation


def period_start(now: datetime, period: str) -> datetime:
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return day.replace(day=1) if period == "month" else day


def _evaluate_budget(rule: RuleSpec, ctx: EvaluationContext) -> Evaluation:
    start = period_start(ctx.now, rule.period)
    scope_sql, scope_params = scope_clause(rule.scope)
    column = "feature" if rule.group_by == "feature" else "user_id"
    tier = "max(json_extract_string(metadata, '$.tier'))" if rule.group_by == "user" else "NULL"
    spend = rows(
        ctx.store,
        f"SELECT {column} AS name, {tier} AS tier, sum(cost_usd) AS spend, count(*) AS calls FROM spans "
        f"WHERE kind = 'llm' AND project = ? AND timestamp >= ? AND timestamp < ? "
        f"AND {column} IS NOT NULL{scope_sql} "
        f"GROUP BY {column}",
        [ctx.project, start, ctx.now, *scope_params],
    )
    over: list[dict[str, Any]] = []
    worst_ratio: float | None = None
    calls = 0
    for entry in spend:
        calls += int(entry["calls"])
        limit, tier_name = budget_limit(rule, ctx.budgets, str(entry["name"]), entry.get("tier"))
        if not limit:
            continue
        ratio = as_float(entry["spend"]) / limit
        worst_ratio = ratio if worst_ratio is None else max(worst_ratio, ratio)
        if ratio >= 1.0:
            over.append(
                {
                    "name": entry["name"],
                    "tier": tier_name,
                    "spend_usd": as_float(entry["spend"]),
                    "limit_usd": limit,
                    "ratio": ratio,
                }
            )
    over.sort(key=lambda e: -e["ratio"])
    firing = bool(over) and calls >= rule.min_samples
    what = rule.group_by
    if over:
        names = ", ".join(f"{e['name']} {_fmt('usd', e['spend_usd'])}/{_fmt('usd', e['limit_usd'])}" for e in over[:5])
        message = f"{rule.name}: {len(over)} {what}(s) over their {rule.period}ly budget: {names}"
    else:
        message = f"{rule.name}: every {what} within budget (highest {worst_ratio or 0:.0%} of its limit)"
    evaluation = Evaluation(
        rule=rule,
        project=ctx.project,
        at=ctx.now,
        firing=firing,
        value=worst_ratio,
        threshold=1.0,
        unit="ratio",
        sample_size=calls,
        enough_samples=calls >= rule.min_samples,
        window_start=start,
        window_end=ctx.now,
        message=message,
        baseline={"kind": "budget", "period": rule.period},
        attribution={"over_budget": over, "group_by": rule.group_by} if over else {},
    )
    if firing:
        lead = {"user_id" if rule.group_by == "user" else "feature": over[0]["name"]}
        evaluation.links = attribution.links(
            ctx.base_url, ctx.project, rule, (start, ctx.now), {**evaluation.attribution, "filter": lead}
        )
    return evaluation


def _evaluate_forecast_budget(rule: RuleSpec, ctx: EvaluationContext) -> Evaluation:
    from .forecast import forecast_month

    forecast = forecast_month(ctx.store, ctx.project, ctx.now, scope=rule.scope)
    budget = rule.threshold
    projected = float(forecast["projected_usd"])
    enough = forecast["days_of_history"] >= FORECAST_MIN_DAYS
    firing = bool(budget > 0 and projected > budget and enough)
    message = (
        f"{rule.name}: month-end spend projected at {_fmt('usd', projected)} "
        f"({_fmt('usd', forecast['low_usd'])}-{_fmt('usd', forecast['high_usd'])}), "
        f"budget {_fmt('usd', budget) if budget else 'not set'}; {_fmt('usd', forecast['month_to_date_usd'])} so far"
    )
    return Evaluation(
        rule=rule,
        project=ctx.project,
        at=ctx.now,
        firing=firing,
        value=projected,
        threshold=budget or None,
        unit="usd",
        sample_size=int(forecast["days_of_history"]),
        enough_samples=enough,
        window_start=period_start(ctx.now, "month"),
        window_end=ctx.now,
        message=message,
        baseline={"kind": "forecast", "interval": forecast["interval"]},
        attribution={"by_feature": forecast["by_feature"][:5], "by_user": forecast["by_user"][:5]} if firing else {},
    )


# -- score rules ---------------------------------------------------------------------------------

_SCORE_GROUPS = {
    "feature": "COALESCE(c.feature, '(none)')",
    "template": "concat(COALESCE(c.template_id, '(none)'), '@', COALESCE(c.template_version, '(none)'))",
    "none": "'all calls'",
}


def _score_means(ctx: EvaluationContext, rule: RuleSpec, window: Range) -> dict[str, tuple[int, float]]:
    """Group -> (scored calls, mean score) of the calls made in the window (replays and experiments left out)."""
    scope_sql, scope_params = scope_clause(rule.scope)
    group = _SCORE_GROUPS[rule.group_by]
    found = rows(
        ctx.store,
        f"SELECT {group} AS name, count(*) AS n, avg(s.value) AS mean FROM scores s "
        "JOIN spans c ON c.project = s.project AND c.span_id = s.span_id "
        "WHERE s.project = ? AND s.name = ? AND s.value IS NOT NULL AND c.kind IN ('llm', 'retrieval') "
        f"AND c.replay_of IS NULL AND c.timestamp >= ? AND c.timestamp < ?{scope_sql} GROUP BY {group}",
        [ctx.project, rule.score, window[0], window[1], *scope_params],
    )
    return {str(r["name"]): (int(r["n"] or 0), float(r["mean"])) for r in found if r["mean"] is not None}


def _evaluate_score(rule: RuleSpec, ctx: EvaluationContext) -> Evaluation:
    """A score's mean per feature, template version or overall: below `min_mean`, or `max_drop` under its mean
    over the `baseline_days` before the window."""
    window = _window(rule, ctx.now)
    current = _score_means(ctx, rule, window)
    base_range: Range = (window[0] - timedelta(days=rule.baseline_days), window[0])
    baseline = _score_means(ctx, rule, base_range) if rule.max_drop > 0 else {}
    groups: list[dict[str, Any]] = []
    for name, (n, mean) in current.items():
        base_n, base_mean = baseline.get(name, (0, None))
        drop = None if base_mean is None or base_n < rule.min_samples else base_mean - mean
        below = rule.threshold > 0 and mean < rule.threshold
        dropped = rule.max_drop > 0 and drop is not None and drop > rule.max_drop
        groups.append(
            {
                "name": name,
                "calls": n,
                "mean": round(mean, 4),
                "baseline_mean": None if base_mean is None else round(base_mean, 4),
                "drop": None if drop is None else round(drop, 4),
                "below": below and n >= rule.min_samples,
                "dropped": dropped and n >= rule.min_samples,
            }
        )
    measured = [g for g in groups if g["calls"] >= rule.min_samples]
    failing = sorted([g for g in measured if g["below"] or g["dropped"]], key=lambda g: g["mean"])
    worst = min(measured, key=lambda g: g["mean"], default=None)
    firing = bool(failing)
    what = {"feature": "feature", "template": "template version", "none": "calls"}[rule.group_by]
    if failing:
        parts = [
            f"{g['name']} {g['mean']:.3f}" + (f" (was {g['baseline_mean']:.3f})" if g["dropped"] else "")
            for g in failing[:5]
        ]
        message = f"{rule.name}: mean {rule.score} too low for {len(failing)} {what}(s) in the last " + (
            f"{rule.window_minutes} min: {', '.join(parts)}"
        )
    elif worst is None:
        message = (
            f"{rule.name}: no {what} with {rule.min_samples}+ {rule.score} scores in the last {rule.window_minutes} min"
        )
    else:
        message = f"{rule.name}: lowest mean {rule.score} {worst['mean']:.3f} ({worst['name']}), within limits"
    evaluation = Evaluation(
        rule=rule,
        project=ctx.project,
        at=ctx.now,
        firing=firing,
        value=None if worst is None else worst["mean"],
        threshold=rule.threshold or None,
        unit="score",
        sample_size=sum(g["calls"] for g in groups),
        enough_samples=worst is not None,
        window_start=window[0],
        window_end=window[1],
        message=message,
        baseline={"kind": "static", "from": base_range[0], "to": base_range[1], "max_drop": rule.max_drop},
    )
    if firing:
        evaluation.attribution = {"groups": failing, "group_by": rule.group_by, "score": rule.score}
        lead = {"feature": failing[0]["name"]} if rule.group_by == "feature" and failing[0]["name"] != "(none)" else {}
        evaluation.links = attribution.links(
            ctx.base_url, ctx.project, rule, window, {**evaluation.attribution, "filter": lead}
        )
    return evaluation


_EVALUATORS: dict[str, Callable[[RuleSpec, EvaluationContext], Evaluation]] = {
    "cost_spike": _evaluate_cost_spike,
    "error_rate": _evaluate_threshold,
    "latency_p95": _evaluate_threshold,
    "prompt_drift": _evaluate_prompt_drift,
    "tool_success": _evaluate_tool_success,
    "budget": _evaluate_budget,
    "forecast_budget": _evaluate_forecast_budget,
    "score": _evaluate_score,
}

__all__ = ["Evaluation", "EvaluationContext", "evaluate_rule", "period_start"]
