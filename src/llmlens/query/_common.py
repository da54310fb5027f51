"""What every analytics question shares: its scope (project and window), running SQL, time series."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable, Sequence
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
    """A time-series chart: x is bucket starts as epoch seconds (UTC), each bucket `step_s` long; the first
    and last buckets hold only what falls inside the window [start, end).

    `empty` lists the buckets without a single row (no calls): in an `additive` chart (sums and counts)
    their value is a true 0, elsewhere (rates, averages, percentiles) they have no value. A None in a
    bucket that is not empty is a value the data does not give (a sum of unpriced calls' costs)."""

    x: list[float]
    series: list[Series]
    unit: str = ""
    markers: list[dict[str, Any]] = field(default_factory=list)
    step_s: float = 0.0
    start: float = 0.0
    end: float = 0.0
    empty: list[int] = field(default_factory=list)
    additive: bool = True

    def add_series(self, other: TimeChart) -> None:
        """Take the series of `other` (a chart over the same buckets): a bucket stays empty only when it
        is empty in both."""
        self.series += other.series
        self.empty = sorted(set(self.empty) & set(other.empty))


def together(store: Store, *reads: Callable[[], Any]) -> list[Any]:
    """The results of independent reads, run at once where the store answers several at a time (ClickHouse:
    a small statement there waits mostly on its round trip and planning), one after another elsewhere."""
    run: Callable[[Sequence[Callable[[], Any]]], list[Any]] | None = getattr(store, "read_together", None)
    return run(reads) if run is not None else [read() for read in reads]


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


# (seconds in the unit, its name): a rate reads in the first unit in which it reaches 1.
_RATE_UNITS = ((1.0, "s"), (60.0, "min"), (3600.0, "h"), (86400.0, "day"))


def rate_unit(per_second: float) -> tuple[float, str]:
    """The unit a rate reads best in: per second from 1/s, else per minute, hour or day (0 reads per minute)."""
    x = abs(per_second)
    if x == 0:
        return _RATE_UNITS[1]
    return next(((s, n) for s, n in _RATE_UNITS if x * s >= 1), _RATE_UNITS[-1])


def time_chart(
    window: TimeWindow,
    records: Iterable[dict[str, Any]],
    *,
    series_key: str | None,
    value_key: str,
    fill: float | None = 0.0,
    unit: str = "",
    labels: Sequence[str] | None = None,
    name: str | None = None,
) -> TimeChart:
    """Pivot `(bucket, [series_key], value)` rows into dense series over the window's buckets. Without a
    `series_key` the one series is called `name` (its legend), or `value_key` when none is given.

    `fill` is the value of a bucket without a row: 0 for sums and counts (the chart is additive), None for
    rates, averages and percentiles, which have no value where nothing happened. Buckets without any row
    are listed in `empty`, so that the page can tell "no calls" from a true zero."""
    starts = window.bucket_starts()
    index = {t: i for i, t in enumerate(starts)}
    by_series: dict[str, list[float | None]] = {}
    for label in labels or ():
        by_series[label] = [fill] * len(starts)
    seen: set[int] = set()
    for rec in records:
        bucket = rec["bucket"]
        if not isinstance(bucket, dt.datetime):
            continue
        i = index.get(truncate(bucket, window.bucket))
        if i is None:
            continue
        seen.add(i)
        label = str(rec[series_key]) if series_key else (name or value_key)
        values = by_series.setdefault(label, [fill] * len(starts))
        values[i] = opt(rec[value_key])
    return TimeChart(
        x=[epoch_s(t) for t in starts],
        series=[Series(label, values) for label, values in by_series.items()],
        unit=unit,
        step_s=window.bucket_step.total_seconds(),
        start=epoch_s(window.start),
        end=epoch_s(window.end),
        empty=[i for i in range(len(starts)) if i not in seen],
        additive=fill is not None,
    )


def grouped_two_ways(
    rows_sql: str,
    *,
    shared: Sequence[str],
    first: Sequence[str],
    second: Sequence[str],
    flag: str,
    values: Sequence[str],
    aggregates: str,
) -> str:
    """SELECT of `rows_sql`'s rows grouped by `shared` + `first` (`flag` 0) and by `shared` + `second`
    (`flag` 1) in one pass: a two-row CROSS JOIN reads each row twice, with the other grouping's columns
    NULL (the GROUPING SETS ClickHouse 18.16 lacks). `values`: the columns `aggregates` read."""
    cases = [f"CASE WHEN g.{flag} = 0 THEN j.{c} ELSE NULL END AS {c}" for c in first]
    cases += [f"CASE WHEN g.{flag} = 1 THEN j.{c} ELSE NULL END AS {c}" for c in second]
    inner = [*(f"j.{c} AS {c}" for c in [*shared, *values]), *cases, f"g.{flag} AS {flag}"]
    keys = ", ".join([*shared, *first, *second, flag])
    return (
        f"SELECT {keys}, {aggregates} FROM (SELECT {', '.join(inner)} FROM ({rows_sql}) j "
        f"CROSS JOIN (SELECT 0 AS {flag} UNION ALL SELECT 1 AS {flag}) g) t GROUP BY {keys}"
    )
