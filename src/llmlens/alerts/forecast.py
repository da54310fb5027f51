"""Month-end spend forecast in total, per feature and per user, for `/api/v1/forecast`, the Cost page and
`forecast_budget` rules. The method is `llmlens.query.forecast` (the one every page shows); this module adds
rule scopes and the per-feature and per-user projections, fitted on the total's history.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta
from typing import Any

from llmlens.query import aggregate, rollups_enabled, user_spend
from llmlens.query.forecast import (
    DEFAULT_INTERVAL,
    MonthForecast,
    fit_daily,
    forecast_from_daily,
    history_from,
    month_forecast,
    series_start,
)
from llmlens.store import Store

from ._sql import as_float, rows, scope_clause
from .rules import Scope

__all__ = ["fit_daily", "forecast_month"]  # fit_daily: the model, for its own tests


def _answered_by_rollups(store: Store, scope: Scope | None, dimension: str | None) -> bool:
    """The rollups key model, feature, template and environment but not users; per-user spend has its
    own daily table keyed by user only. A scope on anything else is answered from raw spans."""
    if not rollups_enabled(store):
        return False
    scope = scope or Scope()
    if dimension == "user_id":
        return all(
            getattr(scope, name) is None for name in ("model", "feature", "template", "template_version", "environment")
        )
    return scope.user is None


def _daily_series(
    store: Store, project: str, now: datetime, scope: Scope | None, dimension: str | None, names: list[str] | None
) -> tuple[dict[str | None, dict[date, float]], set[date]]:
    """Spend per day (per `dimension` value when given), and the days that had calls."""
    start = series_start(now)
    scope_sql, scope_params = scope_clause(scope or Scope())
    filter_sql = ""
    filter_params: list[Any] = []
    if dimension and names is not None:
        if not names:
            return {}, set()
        filter_sql = f" AND {dimension} IN ({', '.join('?' for _ in names)})"
        filter_params = list(names)
    params = [*scope_params, *filter_params]
    found: list[dict[str, Any]]
    if _answered_by_rollups(store, scope, dimension):
        if dimension == "user_id":
            found = [
                {"day": r["bucket"], "name": r["user_id"], "spend": r["cost_usd"], "calls": r["calls"]}
                for r in user_spend(
                    store, project, start, now, where=f"TRUE{scope_sql}{filter_sql}", params=params, by_day=True
                )
            ]
        else:
            groups = [("name", dimension)] if dimension else []
            found = [
                {"day": r["bucket"], "name": r.get("name"), "spend": r["cost_usd"], "calls": r["calls"]}
                for r in aggregate(
                    store,
                    project,
                    start,
                    now,
                    measures=["cost_usd", "calls"],
                    groups=groups,
                    where=f"kind = 'llm'{scope_sql}{filter_sql}",
                    params=params,
                    unit="day",
                )
            ]
    else:
        group = f", {dimension} AS name" if dimension else ", NULL AS name"
        group_by = f", {dimension}" if dimension else ""
        found = rows(
            store,
            f"SELECT date_trunc('day', timestamp) AS day{group}, sum(cost_usd) AS spend, count(*) AS calls "
            f"FROM spans WHERE kind = 'llm' AND project = ? AND timestamp >= ? AND timestamp < ?"
            f"{scope_sql}{filter_sql} "
            f"GROUP BY date_trunc('day', timestamp){group_by}",
            [project, start, now, *params],
        )
    series: dict[str | None, dict[date, float]] = {}
    days: set[date] = set()
    for r in found:
        day = r["day"].date() if isinstance(r["day"], datetime) else r["day"]
        spent = series.setdefault(r["name"], {})
        spent[day] = spent.get(day, 0.0) + as_float(r["spend"])
        if r["calls"]:
            days.add(day)
    return series, days


def _scoped_total(store: Store, project: str, now: datetime, scope: Scope, interval: float) -> MonthForecast:
    """The forecast of the calls a rule's scope matches, by the same method as the project's total."""
    series, days = _daily_series(store, project, now, scope, None, None)
    scope_sql, scope_params = scope_clause(scope)
    start = history_from(store, project, days, now.date(), where=scope_sql, params=scope_params)
    return forecast_from_daily(series.get(None, {}), start, now, interval)


def forecast_month(
    store: Store,
    project: str,
    now: datetime,
    *,
    scope: Scope | None = None,
    interval: float = DEFAULT_INTERVAL,
    top: int = 10,
) -> dict[str, Any]:
    """Month-to-date and projected month-end spend, in total and for the top features and users.

    Without a scope the total is `llmlens.query.month_forecast`, the figure every page shows."""
    if scope is None or scope.is_empty():
        total = month_forecast(store, project, now, interval=interval)
    else:
        total = _scoped_total(store, project, now, scope, interval)
    doc: dict[str, Any] = {"project": project, "generated_at": now, **dataclasses.asdict(total)}
    for dimension, key in (("feature", "by_feature"), ("user_id", "by_user")):
        doc[key] = _forecast_groups(store, project, now, scope, dimension, total.history_start, interval, top)
    return doc


def _forecast_groups(
    store: Store,
    project: str,
    now: datetime,
    scope: Scope | None,
    dimension: str,
    history_start: date | None,
    interval: float,
    top: int,
) -> list[dict[str, Any]]:
    scope_sql, scope_params = scope_clause(scope or Scope())
    since = datetime.combine(min(now.date().replace(day=1), now.date() - timedelta(days=28)), datetime.min.time())
    leaders: list[dict[str, Any]]
    rolled = _answered_by_rollups(store, scope, dimension)
    if rolled and dimension == "user_id":
        leaders = [
            {"name": r["user_id"], "spend": r["cost_usd"]}
            for r in user_spend(
                store,
                project,
                since,
                now,
                where=f"TRUE{scope_sql}",
                params=scope_params,
                order_limit=f"ORDER BY cost_usd DESC NULLS LAST, user_id LIMIT {int(top)}",
            )
        ]
    elif rolled:
        found = aggregate(
            store,
            project,
            since,
            now,
            measures=["cost_usd"],
            groups=[("name", dimension)],
            where=f"kind = 'llm' AND {dimension} IS NOT NULL{scope_sql}",
            params=scope_params,
        )
        found.sort(key=lambda r: (-(r["cost_usd"] or 0.0), str(r["name"])))
        leaders = [{"name": r["name"], "spend": r["cost_usd"]} for r in found[: int(top)]]
    else:
        leaders = rows(
            store,
            f"SELECT {dimension} AS name, sum(cost_usd) AS spend FROM spans "
            f"WHERE kind = 'llm' AND project = ? AND timestamp >= ? "
            f"AND timestamp < ? AND {dimension} IS NOT NULL{scope_sql} GROUP BY {dimension} "
            f"ORDER BY spend DESC LIMIT {int(top)}",
            [project, since, now, *scope_params],
        )
    names = [r["name"] for r in leaders if r["spend"]]
    series, _ = _daily_series(store, project, now, scope, dimension, names)
    result = []
    for name in names:
        projection = forecast_from_daily(series.get(name, {}), history_start, now, interval)
        result.append(
            {
                "name": name,
                "month_to_date_usd": projection.month_to_date_usd,
                "projected_usd": projection.projected_usd,
                "low_usd": projection.low_usd,
                "high_usd": projection.high_usd,
            }
        )
    result.sort(key=lambda e: -e["projected_usd"])
    return result
