"""What every analytics question shares: its scope (project and window), running SQL, time series."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from llmlens.store import Store

from ._window import TimeWindow, truncate


@dataclass(frozen=True, slots=True)
class Scope:
    """One project over one time window. Every query filters `project = ?` itself."""

    project: str
    window: TimeWindow

    def where(self, alias: str = "") -> str:
        """`project = ? AND timestamp >= ? AND timestamp < ?` (bind with `params()`)."""
        p = f"{alias}." if alias else ""
        return f"{p}project = ? AND {p}timestamp >= ? AND {p}timestamp < ?"

    def params(self) -> list[Any]:
        return [self.project, self.window.start, self.window.end]


@dataclass(slots=True)
class Series:
    """One named line of a chart: values aligned with the chart's x."""

    label: str
    values: list[float | None]


@dataclass(slots=True)
class TimeChart:
    """A time-series chart: x is bucket starts as epoch seconds."""

    x: list[float]
    series: list[Series]
    unit: str = ""
    markers: list[dict[str, Any]] = field(default_factory=list)


def rows(store: Store, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    return store.query(sql, list(params)).dicts()


def bucket_expr(window: TimeWindow, column: str = "timestamp") -> str:
    return f"date_trunc('{window.bucket}', {column})"


def epoch_s(t: dt.datetime) -> float:
    return t.replace(tzinfo=dt.UTC).timestamp()


def num(value: Any, default: float = 0.0) -> float:
    """A float from a database value; NULL and NaN become `default`."""
    if value is None:
        return default
    x = float(value)
    return default if math.isnan(x) else x


def opt(value: Any, digits: int | None = None) -> float | None:
    """A float or None from a database value (NULL stays missing, unlike `num`)."""
    if value is None:
        return None
    x = float(value)
    if math.isnan(x):
        return None
    return round(x, digits) if digits is not None else x


def time_chart(
    window: TimeWindow,
    records: Iterable[dict[str, Any]],
    *,
    series_key: str | None,
    value_key: str,
    fill: float | None = 0.0,
    unit: str = "",
    labels: Sequence[str] | None = None,
) -> TimeChart:
    """Pivot `(bucket, [series_key], value)` rows into dense series over the window's buckets."""
    starts = window.bucket_starts()
    index = {t: i for i, t in enumerate(starts)}
    by_series: dict[str, list[float | None]] = {}
    for label in labels or ():
        by_series[label] = [fill] * len(starts)
    for rec in records:
        bucket = rec["bucket"]
        if not isinstance(bucket, dt.datetime):
            continue
        i = index.get(truncate(bucket, window.bucket))
        if i is None:
            continue
        label = str(rec[series_key]) if series_key else value_key
        values = by_series.setdefault(label, [fill] * len(starts))
        values[i] = opt(rec[value_key])
    return TimeChart(
        x=[epoch_s(t) for t in starts],
        series=[Series(label, values) for label, values in by_series.items()],
        unit=unit,
    )
