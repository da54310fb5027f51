"""Context builders of the analytics pages: overview, cost, latency, prompts, tools, feedback."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from llmlens import query

from .._budgets import project_budgets
from .._http import HttpError
from .._jsonable import jsonable
from .._params import PageParams
from .._state import AppState
from ._context import active_alerts, alerts_evaluated, plain, window_context
from ._scores import score_columns_context


def overview_context(state: AppState, p: PageParams, path: dict[str, str]) -> dict[str, Any]:
    return {
        "project": p.project,
        "window": window_context(p.window),
        "overview": plain(query.overview(state.store, p.scope, now=query.utc_now())),
        "alerts": active_alerts(state, p.project),
        "alerts_evaluated": alerts_evaluated(state),
    }


def cost_context(state: AppState, p: PageParams, path: dict[str, str]) -> dict[str, Any]:
    # The page's project's own policy, or the server-wide default: never another project's tiers.
    policy = project_budgets(state).policy_for(p.project)
    budgets = query.budgets_from_settings(policy.to_config() if policy.enabled else {})
    now = query.utc_now()
    return {
        "project": p.project,
        "window": window_context(p.window),
        "budgets": plain(budgets),
        "cost": plain(query.cost_report(state.store, p.scope, budgets, now=now)),
        "forecast": _forecast_by_feature_and_user(state, p.project, now),
        "cache": _cache_savings(state, p),
    }


_FORECAST_TTL_S = 60.0


def _forecast_by_feature_and_user(state: AppState, project: str, now: Any) -> dict[str, Any]:
    """Month-end projections per feature and per user (alerts.forecast), cached a minute: they read eight
    weeks of daily spend per group. The total is not taken from here but from `cost.month`, computed with
    every request, so the page shows the same total as the Overview, the API and `llmlens report`."""
    from llmlens.alerts import forecast_month

    cache: dict[str, tuple[float, dict[str, Any]]] = state.services.setdefault("cost_forecast_cache", {})
    hit = cache.get(project)
    if hit is not None and time.monotonic() - hit[0] < _FORECAST_TTL_S:
        return hit[1]
    found = forecast_month(state.store, project, now)
    doc: dict[str, Any] = jsonable({"by_feature": found["by_feature"], "by_user": found["by_user"]})
    cache[project] = (time.monotonic(), doc)
    return doc


def _cache_savings(state: AppState, p: PageParams) -> dict[str, Any]:
    """Gateway cache hits in the window: answered without calling the provider, cost 0, saving recorded."""
    w = p.window
    result = state.store.query(
        "SELECT count(*) AS hits, sum(cost_saved_usd) AS saved FROM spans "
        "WHERE project = ? AND kind = 'llm' AND cache_hit AND timestamp >= ? AND timestamp < ?",
        [p.project, w.start, w.end],
    )
    hits, saved = result.rows[0] if result.rows else (0, None)
    return {"hits": int(hits or 0), "saved_usd": float(saved or 0.0)}


def latency_context(state: AppState, p: PageParams, path: dict[str, str]) -> dict[str, Any]:
    model = p.text("model")
    return {
        "project": p.project,
        "window": window_context(p.window),
        "model": model,
        "latency": plain(query.latency_report(state.store, p.scope, model=model)),
        "scores": score_columns_context(state, p, model=model),
    }


def prompts_context(state: AppState, p: PageParams, path: dict[str, str]) -> dict[str, Any]:
    min_tokens = int(p.number("min_tokens", query.prompts.OUTLIER_MIN_TOKENS) or 0)
    min_cost = p.number("min_cost", query.prompts.OUTLIER_MIN_COST_USD) or 0.0
    return {
        "project": p.project,
        "window": window_context(p.window),
        "templates": plain(query.templates(state.store, p.scope)),
        "prompt_length": plain(query.prompt_length_by_template(state.store, p.scope)),
        "thresholds": {"min_tokens": min_tokens, "min_cost": min_cost},
        "outliers": plain(query.outliers(state.store, p.scope, min_tokens=min_tokens, min_cost_usd=min_cost)),
        "scores": score_columns_context(state, p),
    }


def prompt_context(state: AppState, p: PageParams, path: dict[str, str]) -> dict[str, Any]:
    template_id = path["template_id"]
    comparison = query.prompt_versions(state.store, p.scope, template_id, a=p.text("a"), b=p.text("b"))
    if not comparison.versions:
        raise HttpError(404, f"no calls with template {template_id!r} in project {p.project!r} in this time range")
    return {
        "project": p.project,
        "window": window_context(p.window),
        "template_id": template_id,
        "comparison": plain(comparison),
    }


def tools_context(state: AppState, p: PageParams, path: dict[str, str]) -> dict[str, Any]:
    return {
        "project": p.project,
        "window": window_context(p.window),
        "tools": plain(query.tools_report(state.store, p.scope)),
    }


def feedback_context(state: AppState, p: PageParams, path: dict[str, str]) -> dict[str, Any]:
    filters = query.feedback.RatedCallFilters(
        feature=p.text("feature"),
        model=p.text("model"),
        template=p.text("template"),
        speed=p.text("speed"),
        feedback=p.text("feedback"),
    )
    try:
        rated = query.feedback.rated_calls(state.store, p.scope, filters)
    except query.feedback.RatedFilterError as exc:
        raise HttpError(400, str(exc)) from None
    return {
        "project": p.project,
        "window": window_context(p.window),
        "feedback": plain(query.feedback_report(state.store, p.scope)),
        "rated": plain(rated),
        "rated_filters": {k: v for k, v in dataclasses.asdict(filters).items() if v},
        "scores": score_columns_context(state, p),
    }
