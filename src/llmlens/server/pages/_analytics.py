"""Context builders of the analytics pages: overview, cost, latency, prompts, tools, feedback."""

from __future__ import annotations

from typing import Any

from llmlens import query

from .._http import HttpError
from .._params import PageParams
from .._state import AppState
from ._context import active_alerts, plain, window_context


def overview_context(state: AppState, p: PageParams, path: dict[str, str]) -> dict[str, Any]:
    return {
        "project": p.project,
        "window": window_context(p.window),
        "overview": plain(query.overview(state.store, p.scope, now=query.utc_now())),
        "alerts": active_alerts(state, p.project),
    }


def cost_context(state: AppState, p: PageParams, path: dict[str, str]) -> dict[str, Any]:
    budgets = query.budgets_from_settings(state.settings.budgets)
    return {
        "project": p.project,
        "window": window_context(p.window),
        "budgets": plain(budgets),
        "cost": plain(query.cost_report(state.store, p.scope, budgets, now=query.utc_now())),
    }


def latency_context(state: AppState, p: PageParams, path: dict[str, str]) -> dict[str, Any]:
    model = p.text("model")
    return {
        "project": p.project,
        "window": window_context(p.window),
        "model": model,
        "latency": plain(query.latency_report(state.store, p.scope, model=model)),
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
    return {
        "project": p.project,
        "window": window_context(p.window),
        "feedback": plain(query.feedback_report(state.store, p.scope)),
    }
