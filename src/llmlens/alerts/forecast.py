"""Month-end spend forecast: month-to-date plus the rest of the month projected from the recent daily
trend with weekday seasonality, with a prediction interval; in total, per feature and per user.

Model: daily spend = a + b x day + weekday effect, fitted by least squares on the last 8 weeks of
complete days (trend only with under 2 weeks, the mean with under a week). The interval combines the
residual noise of each remaining day with the uncertainty of the fitted coefficients.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np

from llmlens.query import aggregate, rollups_enabled, user_spend
from llmlens.store import Store

from ._sql import as_float, first_timestamp, rows, scope_clause
from .rules import Scope

HISTORY_DAYS = 56
_Z = {0.8: 1.2816, 0.9: 1.6449, 0.95: 1.96, 0.99: 2.5758}
_SEASONAL_MIN_DAYS = 14
_TREND_MIN_DAYS = 7


@dataclass(frozen=True, slots=True)
class DailyFit:
    """A fitted daily spend model over days numbered 0..n-1 from `origin`."""

    origin: date
    coef: np.ndarray[Any, Any]
    cov_unscaled: np.ndarray[Any, Any]  # (X'X)^-1
    sigma2: float
    method: str  # trend+weekday | trend | mean
    days: int

    def row(self, day: date) -> np.ndarray[Any, Any]:
        return _design_row((day - self.origin).days, day.weekday(), self.method)

    def predict(self, day: date) -> float:
        return float(self.row(day) @ self.coef)


def _design_row(t: int, weekday: int, method: str) -> np.ndarray[Any, Any]:
    if method == "mean":
        return np.array([1.0])
    if method == "trend":
        return np.array([1.0, float(t)])
    # Monday is the reference day; six weekday offsets.
    dummies = [1.0 if weekday == d else 0.0 for d in range(1, 7)]
    return np.array([1.0, float(t), *dummies])


def fit_daily(origin: date, values: Sequence[float]) -> DailyFit:
    """Least squares on complete days starting at `origin`; the method depends on how many there are."""
    n = len(values)
    method = "trend+weekday" if n >= _SEASONAL_MIN_DAYS else "trend" if n >= _TREND_MIN_DAYS else "mean"
    if n == 0:
        return DailyFit(origin, np.array([0.0]), np.array([[0.0]]), 0.0, "mean", 0)
    x = np.array([_design_row(i, (origin + timedelta(days=i)).weekday(), method) for i in range(n)])
    y = np.array(values, dtype=float)
    cov = np.linalg.pinv(x.T @ x)
    coef = cov @ x.T @ y
    residuals = y - x @ coef
    dof = max(n - x.shape[1], 1)
    sigma2 = float(residuals @ residuals) / dof
    return DailyFit(origin, coef, cov, sigma2, method, n)


@dataclass(frozen=True, slots=True)
class Projection:
    month_to_date: float
    projected: float
    low: float
    high: float
    remaining: list[tuple[date, float, float]]  # (day, predicted spend, weight of the day still to come)


def project_month(fit: DailyFit, month_to_date: float, now: datetime, interval: float = 0.9) -> Projection:
    """Month-to-date + the predicted rest of today and of each remaining day of the month."""
    today = now.date()
    month_end = _next_month(today.replace(day=1))
    elapsed = (now - datetime(today.year, today.month, today.day)) / timedelta(days=1)
    remaining: list[tuple[date, float, float]] = []
    day = today
    while day < month_end:
        weight = 1.0 - elapsed if day == today else 1.0
        remaining.append((day, max(fit.predict(day), 0.0), weight))
        day += timedelta(days=1)
    projected = month_to_date + sum(p * w for _, p, w in remaining)
    if fit.days == 0:
        return Projection(month_to_date, projected, month_to_date, projected, remaining)
    combined = sum((fit.row(d) * w for d, _, w in remaining), np.zeros_like(fit.coef))
    noise_days = sum(w for _, _, w in remaining)
    variance = fit.sigma2 * (noise_days + float(combined @ fit.cov_unscaled @ combined))
    half = _Z.get(interval, 1.6449) * math.sqrt(max(variance, 0.0))
    return Projection(month_to_date, projected, max(month_to_date, projected - half), projected + half, remaining)


def _next_month(first: date) -> date:
    return first.replace(year=first.year + 1, month=1) if first.month == 12 else first.replace(month=first.month + 1)


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
) -> dict[str | None, dict[date, float]]:
    start = datetime.combine(now.date() - timedelta(days=HISTORY_DAYS), datetime.min.time())
    start = min(start, datetime.combine(now.date().replace(day=1), datetime.min.time()))
    scope_sql, scope_params = scope_clause(scope or Scope())
    filter_sql = ""
    filter_params: list[Any] = []
    if dimension and names is not None:
        if not names:
            return {}
        filter_sql = f" AND {dimension} IN ({', '.join('?' for _ in names)})"
        filter_params = list(names)
    params = [*scope_params, *filter_params]
    found: list[dict[str, Any]]
    if _answered_by_rollups(store, scope, dimension):
        if dimension == "user_id":
            found = [
                {"day": r["bucket"], "name": r["user_id"], "spend": r["cost_usd"]}
                for r in user_spend(
                    store, project, start, now, where=f"TRUE{scope_sql}{filter_sql}", params=params, by_day=True
                )
            ]
        else:
            groups = [("name", dimension)] if dimension else []
            found = [
                {"day": r["bucket"], "name": r.get("name"), "spend": r["cost_usd"]}
                for r in aggregate(
                    store,
                    project,
                    start,
                    now,
                    measures=["cost_usd"],
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
            f"SELECT date_trunc('day', timestamp) AS day{group}, sum(cost_usd) AS spend FROM spans "
            f"WHERE kind = 'llm' AND project = ? AND timestamp >= ? AND timestamp < ?{scope_sql}{filter_sql} "
            f"GROUP BY date_trunc('day', timestamp){group_by}",
            [project, start, now, *params],
        )
    series: dict[str | None, dict[date, float]] = {}
    for r in found:
        day = r["day"].date() if isinstance(r["day"], datetime) else r["day"]
        series.setdefault(r["name"], {})[day] = as_float(r["spend"])
    return series


def _forecast_series(
    daily: dict[date, float], first_day: date | None, now: datetime, interval: float
) -> tuple[DailyFit, Projection]:
    today = now.date()
    month_start = today.replace(day=1)
    fit_start = max(first_day or today, today - timedelta(days=HISTORY_DAYS))
    days = [fit_start + timedelta(days=i) for i in range((today - fit_start).days)]
    fit = fit_daily(fit_start, [daily.get(d, 0.0) for d in days])
    mtd = sum(v for d, v in daily.items() if month_start <= d <= today)
    return fit, project_month(fit, mtd, now, interval)


def _first_full_day(store: Store, project: str) -> date | None:
    first = first_timestamp(store, project)
    if first is None:
        return None
    # A first day that starts late is partial: fitting it would drag the level down.
    return first.date() if first.hour == 0 else first.date() + timedelta(days=1)


def forecast_month(
    store: Store,
    project: str,
    now: datetime,
    *,
    scope: Scope | None = None,
    interval: float = 0.9,
    top: int = 10,
) -> dict[str, Any]:
    """Month-to-date and projected month-end spend, in total and for the top features and users."""
    first_day = _first_full_day(store, project)
    total_series = _daily_series(store, project, now, scope, None, None).get(None, {})
    fit, projection = _forecast_series(total_series, first_day, now, interval)
    today = now.date()
    month_start = today.replace(day=1)
    predicted = {d: p for d, p, _ in projection.remaining}
    daily = [
        {"date": d.isoformat(), "actual_usd": total_series.get(d, 0.0), "predicted_usd": None}
        for d in (month_start + timedelta(days=i) for i in range((today - month_start).days))
    ]
    daily += [
        {
            "date": d.isoformat(),
            "actual_usd": total_series.get(d) if d == today else None,
            "predicted_usd": p,
        }
        for d, p in predicted.items()
    ]
    doc: dict[str, Any] = {
        "project": project,
        "month": month_start.strftime("%Y-%m"),
        "generated_at": now,
        "month_to_date_usd": projection.month_to_date,
        "projected_usd": projection.projected,
        "low_usd": projection.low,
        "high_usd": projection.high,
        "interval": interval,
        "method": fit.method,
        "days_of_history": fit.days,
        "trend_usd_per_day": float(fit.coef[1]) if fit.method != "mean" else 0.0,
        "daily": daily,
    }
    for dimension, key in (("feature", "by_feature"), ("user_id", "by_user")):
        doc[key] = _forecast_groups(store, project, now, scope, dimension, first_day, interval, top)
    return doc


def _forecast_groups(
    store: Store,
    project: str,
    now: datetime,
    scope: Scope | None,
    dimension: str,
    first_day: date | None,
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
    series = _daily_series(store, project, now, scope, dimension, names)
    result = []
    for name in names:
        _, projection = _forecast_series(series.get(name, {}), first_day, now, interval)
        result.append(
            {
                "name": name,
                "month_to_date_usd": projection.month_to_date,
                "projected_usd": projection.projected,
                "low_usd": projection.low,
                "high_usd": projection.high,
            }
        )
    result.sort(key=lambda e: -e["projected_usd"])
    return result
