"""Where the money goes: spend over time by model, per user against tier budgets, per feature,
per template version, unpriced models, month to date and the month-end forecast."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from llmlens.store import Store

from ._common import Scope, TimeChart, bucket_expr, num, rows, time_chart, together
from ._rollup import aggregate, rollups_enabled, user_spend
from .budgets import Budgets
from .forecast import MonthForecast, month_bounds, month_forecast

TOP_USERS = 25
_NO_END = dt.datetime(9999, 1, 1)  # month to date counts every call from the month's start on, like the raw query
TOP_MODELS_IN_CHART = 8


@dataclass(slots=True)
class ModelCost:
    model: str
    cost_usd: float | None  # None: no call of it has a price (unknown, not zero)
    calls: int
    unpriced_calls: int  # successful calls without a price (the unpriced list counts the same)


@dataclass(slots=True)
class UserSpend:
    user_id: str
    cost_usd: float  # in the window
    calls: int
    tier: str | None
    month_to_date_usd: float
    monthly_budget_usd: float | None
    budget_used: float | None  # month-to-date / budget (1.0 = 100 %)


@dataclass(slots=True)
class FeatureCost:
    feature: str
    cost_usd: float | None  # None: no call of it has a price
    calls: int
    unpriced_calls: int
    cost_per_call_usd: float | None
    times_cheapest: float | None  # cost per call relative to the cheapest feature
    monthly_budget_usd: float | None


@dataclass(slots=True)
class TemplateVersionCost:
    template_id: str
    template_version: str
    cost_usd: float | None  # None: no call of it has a price
    calls: int
    unpriced_calls: int
    cost_per_call_usd: float | None


@dataclass(slots=True)
class UnpricedModel:
    model: str
    calls: int
    prompt_tokens: int
    completion_tokens: int


@dataclass(slots=True)
class CostReport:
    total_usd: float  # the priced calls' spend: unpriced calls add an unknown amount
    calls: int
    unpriced_calls: int
    by_model_over_time: TimeChart
    by_model: list[ModelCost]
    top_users: list[UserSpend]
    by_feature: list[FeatureCost]
    by_template_version: list[TemplateVersionCost]
    unpriced: list[UnpricedModel]
    month: MonthForecast


_MODEL = ("model", "COALESCE(model, '(none)')")
_LLM = "kind = 'llm'"


_UNPRICED_SQL = "COUNT(*) FILTER (WHERE cost_usd IS NULL AND (status IS NULL OR status <> 'error'))"


def _known_cost(r: dict[str, Any]) -> float | None:
    """The summed cost of a group, or None when it has unpriced calls and not one priced call: its spend
    is unknown, not zero (a group of failed calls only did cost nothing)."""
    if int(num(r.get("unpriced_calls"))) and not int(num(r.get("priced"))):
        return None
    return num(r["cost_usd"])


def _by_cost(recs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """ORDER BY cost_usd DESC NULLS LAST."""
    return sorted(recs, key=lambda r: (r["cost_usd"] is None, -num(r["cost_usd"])))


def _window(store: Store, scope: Scope) -> tuple[Store, str, dt.datetime, dt.datetime]:
    return store, scope.project, scope.window.start, scope.window.end


def _by_model_over_time(store: Store, scope: Scope) -> tuple[TimeChart, list[ModelCost]]:
    if rollups_enabled(store):
        model_rows = _by_cost(
            aggregate(
                *_window(store, scope),
                measures=("cost_usd", "calls", "priced", "unpriced_calls"),
                groups=[_MODEL],
                where=_LLM,
            )
        )
    else:
        model_rows = rows(
            store,
            f"SELECT COALESCE(model, '(none)') AS model, SUM(cost_usd) AS cost_usd, COUNT(*) AS calls, "
            f"COUNT(cost_usd) AS priced, {_UNPRICED_SQL} AS unpriced_calls "
            f"FROM spans WHERE {scope.where()} AND kind = 'llm' "
            "GROUP BY COALESCE(model, '(none)') ORDER BY cost_usd DESC NULLS LAST",
            scope.params(),
        )
    by_model = [
        ModelCost(
            model=str(r["model"]),
            cost_usd=_known_cost(r),
            calls=int(r["calls"]),
            unpriced_calls=int(num(r["unpriced_calls"])),
        )
        for r in model_rows
    ]
    shown = [m.model for m in by_model[:TOP_MODELS_IN_CHART]]
    bucket = bucket_expr(scope.window)
    if rollups_enabled(store):
        series_rows = aggregate(
            *_window(store, scope), measures=("cost_usd",), groups=[_MODEL], where=_LLM, unit=scope.window.bucket
        )
    else:
        series_rows = rows(
            store,
            f"SELECT {bucket} AS bucket, COALESCE(model, '(none)') AS model, SUM(cost_usd) AS cost_usd "
            f"FROM spans WHERE {scope.where()} AND kind = 'llm' GROUP BY {bucket}, COALESCE(model, '(none)')",
            scope.params(),
        )
    other: dict[dt.datetime, float] = {}
    kept = []
    for r in series_rows:
        if r["model"] in shown:
            kept.append(r)
        else:
            other[r["bucket"]] = other.get(r["bucket"], 0.0) + num(r["cost_usd"])
    kept += [{"bucket": b, "model": "other", "cost_usd": c} for b, c in other.items()]
    labels = shown + (["other"] if other else [])
    chart = time_chart(scope.window, kept, series_key="model", value_key="cost_usd", unit="$", labels=labels)
    return chart, by_model


def _top_users(store: Store, scope: Scope, budgets: Budgets, now: dt.datetime) -> list[UserSpend]:
    order = f"ORDER BY cost_usd DESC NULLS LAST, user_id LIMIT {TOP_USERS}"
    if rollups_enabled(store):
        top = user_spend(*_window(store, scope), order_limit=order)
    else:
        top = rows(
            store,
            f"SELECT user_id, SUM(cost_usd) AS cost_usd, COUNT(*) AS calls FROM spans "
            f"WHERE {scope.where()} AND kind = 'llm' AND user_id IS NOT NULL GROUP BY user_id {order}",
            scope.params(),
        )
    if not top:
        return []
    month_start, _ = month_bounds(now)
    users = [str(r["user_id"]) for r in top]
    marks = ", ".join("?" for _ in users)
    if rollups_enabled(store):
        month_rows = [
            {**r, "mtd": r["cost_usd"]}
            for r in user_spend(store, scope.project, month_start, _NO_END, where=f"user_id IN ({marks})", params=users)
        ]
    else:
        month_rows = rows(
            store,
            "SELECT user_id, SUM(cost_usd) AS mtd, MAX(json_extract_string(metadata, '$.tier')) AS tier "
            f"FROM spans WHERE project = ? AND timestamp >= ? AND kind = 'llm' AND user_id IN ({marks}) "
            "GROUP BY user_id",
            [scope.project, month_start, *users],
        )
    month = {str(r["user_id"]): r for r in month_rows}
    out = []
    for r in top:
        user = str(r["user_id"])
        m = month.get(user, {})
        tier = budgets.tier_of(user, m.get("tier"))
        limit = budgets.monthly_limit(tier)
        mtd = num(m.get("mtd"))
        out.append(
            UserSpend(
                user_id=user,
                cost_usd=num(r["cost_usd"]),
                calls=int(r["calls"]),
                tier=tier,
                month_to_date_usd=mtd,
                monthly_budget_usd=limit,
                budget_used=mtd / limit if limit else None,
            )
        )
    return out


def _by_feature(store: Store, scope: Scope, budgets: Budgets) -> list[FeatureCost]:
    if rollups_enabled(store):
        feature = ("feature", "COALESCE(feature, '(none)')")
        measures = ("cost_usd", "calls", "priced", "unpriced_calls")
        recs = _by_cost(aggregate(*_window(store, scope), measures=measures, groups=[feature], where=_LLM))
    else:
        recs = rows(
            store,
            f"SELECT COALESCE(feature, '(none)') AS feature, SUM(cost_usd) AS cost_usd, COUNT(*) AS calls, "
            f"COUNT(cost_usd) AS priced, {_UNPRICED_SQL} AS unpriced_calls "
            f"FROM spans WHERE {scope.where()} AND kind = 'llm' "
            "GROUP BY COALESCE(feature, '(none)') ORDER BY cost_usd DESC NULLS LAST",
            scope.params(),
        )
    per_call = {str(r["feature"]): num(r["cost_usd"]) / int(r["priced"]) if r["priced"] else None for r in recs}
    positive = [v for v in per_call.values() if v]
    cheapest = min(positive) if positive else None
    return [
        FeatureCost(
            feature=str(r["feature"]),
            cost_usd=_known_cost(r),
            calls=int(r["calls"]),
            unpriced_calls=int(num(r["unpriced_calls"])),
            cost_per_call_usd=per_call[str(r["feature"])],
            times_cheapest=(per_call[str(r["feature"])] or 0.0) / cheapest if cheapest else None,
            monthly_budget_usd=budgets.features.get(str(r["feature"])),
        )
        for r in recs
    ]


def _by_template_version(store: Store, scope: Scope) -> list[TemplateVersionCost]:
    if rollups_enabled(store):
        groups = [("template_id", "template_id"), ("template_version", "COALESCE(template_version, '(none)')")]
        recs = aggregate(
            *_window(store, scope),
            measures=("cost_usd", "calls", "priced", "unpriced_calls"),
            groups=groups,
            where="kind = 'llm' AND template_id IS NOT NULL",
        )
        recs.sort(key=lambda r: (r["template_id"], r["template_version"]))
    else:
        recs = rows(
            store,
            f"SELECT template_id, COALESCE(template_version, '(none)') AS template_version, "
            f"SUM(cost_usd) AS cost_usd, COUNT(*) AS calls, COUNT(cost_usd) AS priced, "
            f"{_UNPRICED_SQL} AS unpriced_calls "
            f"FROM spans WHERE {scope.where()} AND kind = 'llm' AND template_id IS NOT NULL "
            "GROUP BY template_id, COALESCE(template_version, '(none)') ORDER BY template_id, template_version",
            scope.params(),
        )
    return [
        TemplateVersionCost(
            template_id=str(r["template_id"]),
            template_version=str(r["template_version"]),
            cost_usd=_known_cost(r),
            calls=int(r["calls"]),
            unpriced_calls=int(num(r["unpriced_calls"])),
            cost_per_call_usd=num(r["cost_usd"]) / int(r["priced"]) if r["priced"] else None,
        )
        for r in recs
    ]


def unpriced_models(store: Store, scope: Scope) -> list[UnpricedModel]:
    """Models whose calls have no cost: their spend is unknown, never a silent zero."""
    if rollups_enabled(store):
        measures = ("unpriced_calls", "unpriced_prompt_tokens", "unpriced_completion_tokens")
        recs = [
            {
                "model": r["model"],
                "calls": r["unpriced_calls"],
                "prompt_tokens": r["unpriced_prompt_tokens"],
                "completion_tokens": r["unpriced_completion_tokens"],
            }
            for r in aggregate(*_window(store, scope), measures=measures, groups=[_MODEL], where=_LLM)
            if r["unpriced_calls"]
        ]
        recs.sort(key=lambda r: -int(r["calls"]))
    else:
        recs = rows(
            store,
            f"SELECT COALESCE(model, '(none)') AS model, COUNT(*) AS calls, SUM(prompt_tokens) AS prompt_tokens, "
            f"SUM(completion_tokens) AS completion_tokens FROM spans "
            f"WHERE {scope.where()} AND kind = 'llm' AND cost_usd IS NULL "
            "AND (status IS NULL OR status <> 'error') "
            "GROUP BY COALESCE(model, '(none)') ORDER BY calls DESC",
            scope.params(),
        )
    return [
        UnpricedModel(
            model=str(r["model"]),
            calls=int(r["calls"]),
            prompt_tokens=int(num(r["prompt_tokens"])),
            completion_tokens=int(num(r["completion_tokens"])),
        )
        for r in recs
    ]


def cost_report(store: Store, scope: Scope, budgets: Budgets, *, now: dt.datetime) -> CostReport:
    (chart, by_model), top_users, by_feature, by_version, unpriced, month = together(
        store,
        lambda: _by_model_over_time(store, scope),
        lambda: _top_users(store, scope, budgets, now),
        lambda: _by_feature(store, scope, budgets),
        lambda: _by_template_version(store, scope),
        lambda: unpriced_models(store, scope),
        lambda: month_forecast(store, scope.project, now),
    )
    return CostReport(
        total_usd=sum(m.cost_usd or 0.0 for m in by_model),
        calls=sum(m.calls for m in by_model),
        unpriced_calls=sum(m.unpriced_calls for m in by_model),
        by_model_over_time=chart,
        by_model=by_model,
        top_users=top_users,
        by_feature=by_feature,
        by_template_version=by_version,
        unpriced=unpriced,
        month=month,
    )
