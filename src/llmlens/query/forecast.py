"""Month-to-date spend and a simple projection to month end (replaceable by llmlens.alerts.forecast)."""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from typing import Any

from llmlens.store import Store

from ._common import num, rows
from ._rollup import aggregate, rollups_enabled

# Recent days whose average daily spend is carried to the month's end.
TRAILING_DAYS = 7


@dataclass(slots=True)
class MonthForecast:
    month_start: dt.datetime
    month_end: dt.datetime
    spend_today_usd: float
    month_to_date_usd: float
    daily_rate_usd: float  # average daily spend over the trailing days
    forecast_usd: float  # month-to-date + daily rate x days left
    method: str = f"month-to-date + {TRAILING_DAYS}-day average daily spend x days left"


def month_bounds(now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    days = calendar.monthrange(now.year, now.month)[1]
    return start, start + dt.timedelta(days=days)


def _raw_spend(
    store: Store,
    project: str,
    now: dt.datetime,
    month_start: dt.datetime,
    today: dt.datetime,
    trailing_start: dt.datetime,
) -> dict[str, Any]:
    lo = min(month_start, trailing_start)
    return rows(
        store,
        "SELECT "
        "SUM(CASE WHEN timestamp >= ? THEN cost_usd ELSE 0 END) AS mtd, "
        "SUM(CASE WHEN timestamp >= ? THEN cost_usd ELSE 0 END) AS today, "
        "SUM(CASE WHEN timestamp >= ? THEN cost_usd ELSE 0 END) AS trailing "
        "FROM spans WHERE kind = 'llm' AND project = ? AND timestamp >= ? AND timestamp < ?",
        [month_start, today, trailing_start, project, lo, now],
    )[0]


def month_forecast(store: Store, project: str, now: dt.datetime) -> MonthForecast:
    month_start, month_end = month_bounds(now)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    trailing_start = now - dt.timedelta(days=TRAILING_DAYS)
    if rollups_enabled(store):
        # Three totals, each from whole days/hours of the rollups plus raw edges.
        def spent(since: dt.datetime) -> float:
            got = aggregate(store, project, since, now, measures=("cost_usd",), where="kind = 'llm'")
            return num(got[0]["cost_usd"]) if got else 0.0

        rec = {"mtd": spent(month_start), "today": spent(today), "trailing": spent(trailing_start)}
    else:
        rec = _raw_spend(store, project, now, month_start, today, trailing_start)
    mtd, spent_today, trailing = num(rec["mtd"]), num(rec["today"]), num(rec["trailing"])
    daily = trailing / TRAILING_DAYS
    days_left = max((month_end - now).total_seconds() / 86400, 0.0)
    return MonthForecast(
        month_start=month_start,
        month_end=month_end,
        spend_today_usd=spent_today,
        month_to_date_usd=mtd,
        daily_rate_usd=daily,
        forecast_usd=mtd + daily * days_left,
    )
