"""The month-end spend forecast, one method for every page, the API, the alerts and the CLI: month-to-date
plus each remaining day of the month predicted from the recent daily trend with weekday seasonality, with
a prediction interval.

Model: daily spend = a + b x day + weekday effect, fitted by least squares on the complete days of the
history (trend only with under 2 weeks of it, the mean with under a week). The history is the run of days
with LLM calls that leads up to today within the last 8 weeks; a week or more without calls ends it, so one
stray old event cannot stretch it. The projection depends on the stored calls and today's date, not on the
time of day, so the pages, the API and `llmlens report` show the same figure for the same data.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from llmlens.store import Store

from ._common import num, rows
from ._linear import dot, gram, mat_vec, pinv_symmetric, quad_form
from ._rollup import aggregate, rollups_enabled

HISTORY_DAYS = 56  # the longest history fitted, and how far back its start is looked for
HISTORY_GAP_DAYS = 7  # this many days in a row without calls end the history
DEFAULT_INTERVAL = 0.9
_Z = {0.8: 1.2816, 0.9: 1.6449, 0.95: 1.96, 0.99: 2.5758}
_SEASONAL_MIN_DAYS = 14
_TREND_MIN_DAYS = 7


@dataclass(frozen=True, slots=True)
class DailyFit:
    """A fitted daily spend model over days numbered 0..n-1 from `origin`."""

    origin: dt.date
    coef: tuple[float, ...]
    cov_unscaled: tuple[tuple[float, ...], ...]  # the pseudo-inverse of X'X
    sigma2: float
    method: str  # trend+weekday | trend | mean
    days: int

    def row(self, day: dt.date) -> tuple[float, ...]:
        return _design_row((day - self.origin).days, day.weekday(), self.method)

    def predict(self, day: dt.date) -> float:
        return dot(self.row(day), self.coef)


def _design_row(t: int, weekday: int, method: str) -> tuple[float, ...]:
    if method == "mean":
        return (1.0,)
    if method == "trend":
        return (1.0, float(t))
    # Monday is the reference day; six weekday offsets.
    dummies = [1.0 if weekday == d else 0.0 for d in range(1, 7)]
    return (1.0, float(t), *dummies)


def fit_daily(origin: dt.date, values: Sequence[float]) -> DailyFit:
    """Least squares on complete days starting at `origin`; the method depends on how many there are."""
    n = len(values)
    method = "trend+weekday" if n >= _SEASONAL_MIN_DAYS else "trend" if n >= _TREND_MIN_DAYS else "mean"
    if n == 0:
        return DailyFit(origin, (0.0,), ((0.0,),), 0.0, "mean", 0)
    return _fit(origin, values, method)


def _fit(origin: dt.date, values: Sequence[float], method: str) -> DailyFit:
    """Least squares of `values` (days 0..n-1 from `origin`, n >= 1) on the design `method` names.

    The coefficients are pinv(X'X) X'y, the minimum-norm solution, so a design whose columns are not all
    independent (a weekday never seen, too few days for a trend) still gets a finite fit."""
    n = len(values)
    x = [_design_row(i, (origin + dt.timedelta(days=i)).weekday(), method) for i in range(n)]
    y = [float(v) for v in values]
    width = len(x[0])
    cov = pinv_symmetric(gram(x, width))
    x_t_y = [dot([r[j] for r in x], y) for j in range(width)]
    coef = mat_vec(cov, x_t_y)
    residuals = [yi - dot(xi, coef) for xi, yi in zip(x, y, strict=True)]
    dof = max(n - width, 1)
    sigma2 = dot(residuals, residuals) / dof
    return DailyFit(origin, tuple(coef), tuple(tuple(r) for r in cov), sigma2, method, n)


@dataclass(slots=True)
class MonthForecast:
    """Month-to-date and projected month-end spend, with the interval and the history behind it."""

    month: str  # YYYY-MM
    month_start: dt.datetime
    month_end: dt.datetime
    spend_today_usd: float
    month_to_date_usd: float
    projected_usd: float
    low_usd: float
    high_usd: float
    interval: float  # 0.9: a 90 % prediction interval
    method: str  # trend+weekday | trend | mean
    days_of_history: int  # complete days fitted
    history_start: dt.date | None
    trend_usd_per_day: float
    daily: list[dict[str, Any]]  # the month's days: actual spend so far, then predicted


def month_bounds(now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    days = calendar.monthrange(now.year, now.month)[1]
    return start, start + dt.timedelta(days=days)


def history_start(days_with_calls: Iterable[dt.date], today: dt.date) -> dt.date | None:
    """The first day of the run of days with calls that leads up to today, within the lookback.

    Walking back from the latest such day, a gap of HISTORY_GAP_DAYS days or more without calls ends
    the run: a stray event weeks before the traffic does not add weeks of zeros to the history."""
    lookback = today - dt.timedelta(days=HISTORY_DAYS)
    days = sorted({d for d in days_with_calls if lookback <= d < today}, reverse=True)
    if not days:
        return None
    start = days[0]
    for day in days[1:]:
        if (start - day).days > HISTORY_GAP_DAYS:
            break
        start = day
    return start


def history_from(
    store: Store,
    project: str,
    days_with_calls: Iterable[dt.date],
    today: dt.date,
    *,
    where: str = "",
    params: Sequence[Any] = (),
) -> dt.date | None:
    """`history_start`, skipping its first day when that day's calls begin after its first hour: a partial
    day would drag the fitted level down. `where` (` AND ...` over span columns) narrows the calls."""
    start = history_start(days_with_calls, today)
    if start is None:
        return None
    day = dt.datetime.combine(start, dt.time())
    found = rows(
        store,
        f"SELECT min(timestamp) AS first FROM spans WHERE kind = 'llm' AND project = ? "
        f"AND timestamp >= ? AND timestamp < ?{where}",
        [project, day, day + dt.timedelta(days=1), *params],
    )
    first = found[0]["first"] if found else None
    if isinstance(first, dt.datetime) and first.hour != 0:
        start += dt.timedelta(days=1)
    return start if start < today else None


def _next_month(first: dt.date) -> dt.date:
    return first.replace(year=first.year + 1, month=1) if first.month == 12 else first.replace(month=first.month + 1)


def forecast_from_daily(
    daily: Mapping[dt.date, float], start: dt.date | None, now: dt.datetime, interval: float = DEFAULT_INTERVAL
) -> MonthForecast:
    """Fit the complete days [start, today) of `daily` spend and project the month of `now`.

    The projection is the spend of the month's past days, plus today's spend or today's prediction if that
    is higher, plus the prediction of each later day. The interval adds each remaining day's noise (today's
    in proportion to the part of its prediction still to come) to the uncertainty of the fitted coefficients.
    """
    today = now.date()
    month_start = today.replace(day=1)
    month_end = _next_month(month_start)
    fit_origin = start or today
    history = [fit_origin + dt.timedelta(days=i) for i in range((today - fit_origin).days)]
    fit = fit_daily(fit_origin, [daily.get(d, 0.0) for d in history])
    spent_today = daily.get(today, 0.0)
    month_to_date = sum(v for d, v in daily.items() if month_start <= d <= today)
    remaining: list[tuple[dt.date, float, float]] = []  # (day, predicted spend, share of it still to come)
    day = today
    while day < month_end:
        predicted = max(fit.predict(day), 0.0)
        if day == today:
            to_come = max(predicted - spent_today, 0.0)
            remaining.append((day, predicted, to_come / predicted if predicted > 0 else 0.0))
        else:
            remaining.append((day, predicted, 1.0))
        day += dt.timedelta(days=1)
    projected = month_to_date + sum(p * w for _, p, w in remaining)
    low, high = month_to_date, projected
    if fit.days:
        # The remaining days' design rows, weighted by the share of each still to come, summed: the
        # variance of their summed prediction is sigma2 * combined' (X'X)^+ combined.
        rows_left = [(fit.row(d), w) for d, _, w in remaining]
        combined = [math.fsum(r[j] * w for r, w in rows_left) for j in range(len(fit.coef))]
        noise_days = sum(w for _, _, w in remaining)
        variance = fit.sigma2 * (noise_days + quad_form(fit.cov_unscaled, combined))
        half = _Z.get(interval, _Z[DEFAULT_INTERVAL]) * math.sqrt(max(variance, 0.0))
        low, high = max(month_to_date, projected - half), projected + half
    predicted_on = {d: p for d, p, _ in remaining}
    days_of_month = [month_start + dt.timedelta(days=i) for i in range((month_end - month_start).days)]
    return MonthForecast(
        month=month_start.strftime("%Y-%m"),
        month_start=dt.datetime.combine(month_start, dt.time()),
        month_end=dt.datetime.combine(month_end, dt.time()),
        spend_today_usd=spent_today,
        month_to_date_usd=month_to_date,
        projected_usd=projected,
        low_usd=low,
        high_usd=high,
        interval=interval,
        method=fit.method,
        days_of_history=fit.days,
        history_start=start if fit.days else None,
        trend_usd_per_day=float(fit.coef[1]) if fit.method != "mean" else 0.0,
        daily=[
            {
                "date": d.isoformat(),
                "actual_usd": daily.get(d, 0.0) if d <= today else None,
                "predicted_usd": predicted_on.get(d),
            }
            for d in days_of_month
        ],
    )


def series_start(now: dt.datetime) -> dt.datetime:
    """Where the daily series a forecast reads begins: the lookback or the month's start, the earlier."""
    today = now.date()
    return dt.datetime.combine(min(today - dt.timedelta(days=HISTORY_DAYS), today.replace(day=1)), dt.time())


def _daily_spend(store: Store, project: str, now: dt.datetime) -> tuple[dict[dt.date, float], set[dt.date]]:
    """Spend per day of the project's LLM calls, and the days that had calls (priced or not)."""
    start = series_start(now)
    found: list[dict[str, Any]]
    if rollups_enabled(store):
        found = aggregate(store, project, start, now, measures=("cost_usd", "calls"), where="kind = 'llm'", unit="day")
    else:
        found = rows(
            store,
            "SELECT date_trunc('day', timestamp) AS bucket, sum(cost_usd) AS cost_usd, count(*) AS calls FROM spans "
            "WHERE kind = 'llm' AND project = ? AND timestamp >= ? AND timestamp < ? "
            "GROUP BY date_trunc('day', timestamp)",
            [project, start, now],
        )
    spend: dict[dt.date, float] = {}
    days: set[dt.date] = set()
    for r in found:
        day = _as_date(r["bucket"])
        spend[day] = spend.get(day, 0.0) + num(r["cost_usd"])
        if num(r["calls"]):
            days.add(day)
    return spend, days


def _as_date(bucket: dt.date) -> dt.date:
    return bucket.date() if isinstance(bucket, dt.datetime) else bucket


def month_forecast(
    store: Store, project: str, now: dt.datetime, *, interval: float = DEFAULT_INTERVAL
) -> MonthForecast:
    """The project's month-end forecast: what the Overview, the Cost page, `/api/v1/forecast` and
    `llmlens report cost` all show."""
    spend, days = _daily_spend(store, project, now)
    start = history_from(store, project, days, now.date())
    return forecast_from_daily(spend, start, now, interval)
