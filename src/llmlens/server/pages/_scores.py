"""The score parts of page contexts: score columns (Prompts, Feedback, Latency) and a trace's scores."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from llmlens import query
from llmlens.query import scores

from .._budgets import project_budgets
from .._jsonable import jsonable
from .._params import PageParams
from .._state import AppState
from ._context import plain


def score_columns_context(state: AppState, p: PageParams, *, model: str | None = None) -> dict[str, Any]:
    """Mean, count and 95 % interval of each score on the window's calls, by feature, model, template
    version, user tier (the project's own budget tiers) and latency bucket."""
    policy = project_budgets(state).policy_for(p.project)
    budgets = query.budgets_from_settings(policy.to_config() if policy.enabled else {})
    doc: dict[str, Any] = plain(scores.score_columns(state.store, p.scope, budgets, model=model))
    return doc


def trace_scores_context(
    state: AppState,
    project: str,
    trace_id: str,
    *,
    thumbs: list[dict[str, Any]],
    stored: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The trace's scores, all of them and grouped by the span they are about (for the span panel); `thumbs`:
    its thumbs as `scores` rows, read with its feedback; `stored`: its stored scores, when already read."""
    found = jsonable(scores.trace_scores(state.store, project, trace_id, thumbs=thumbs, stored=stored))
    by_span: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for score in found:
        if score.get("span_id"):
            by_span[str(score["span_id"])].append(score)
    return {"all": found, "by_span": dict(by_span)}
