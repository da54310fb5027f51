"""Models and users seen in a window: suggestions for the trace filters, and what a filter matches exactly."""

from __future__ import annotations

from typing import Any

from llmlens.store import Store

from ._common import Scope, rows
from ._rollup import rollups_enabled
from ._trace_filters import KnownValues
from ._window import truncate

MAX_SUGGESTIONS = 500


def known_values(store: Store, scope: Scope, *, model: str | None = None, user_id: str | None = None) -> KnownValues:
    """The window's models and users, at most MAX_SUGGESTIONS of each; `model` and `user_id` (a filter's
    text) are looked up on their own when the lists were cut, so an exact name always counts as known."""
    models = _distinct(store, scope, "model", None)
    users = _distinct(store, scope, "user_id", None)
    if model and model not in models and len(models) >= MAX_SUGGESTIONS:
        models += _distinct(store, scope, "model", model)
    if user_id and user_id not in users and len(users) >= MAX_SUGGESTIONS:
        users += _distinct(store, scope, "user_id", user_id)
    return KnownValues(models=models, users=users)


def _distinct(store: Store, scope: Scope, column: str, only: str | None) -> list[str]:
    """Distinct values of `column` (model or user_id) of the window's LLM calls, or whether `only` is one.

    From the daily rollups where the store keeps them (the window's days: a few rows per day and value),
    else from the calls themselves."""
    params: list[Any]
    if rollups_enabled(store):
        table = "store.rollup_day" if column == "model" else "store.user_day"
        kind = " AND kind = 'llm'" if column == "model" else ""
        where = f"project = ? AND bucket >= ? AND bucket < ?{kind}"
        params = [scope.project, truncate(scope.window.start, "day"), scope.window.end]
    else:
        table, where, params = "spans", f"{scope.where()} AND kind = 'llm'", scope.params()
    if only is not None:
        where += f" AND {column} = ?"
        params.append(only)
    found = rows(
        store,
        f"SELECT {column} AS value FROM {table} WHERE {where} AND {column} IS NOT NULL "
        f"GROUP BY {column} ORDER BY {column} LIMIT {MAX_SUGGESTIONS}",
        params,
    )
    return [str(r["value"]) for r in found if r["value"]]
