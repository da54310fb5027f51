"""Which part of the requested window the findings read: all of it, or, when it holds more LLM calls
than the cap, its most recent whole hours that stay under the cap (counted from the hourly rollups)."""

from __future__ import annotations

import datetime as dt

from llmlens.query._rollup import aggregate
from llmlens.store import Store

from ._model import Examined

_HOUR = dt.timedelta(hours=1)


def calls_per_hour(
    store: Store, project: str, start: dt.datetime, end: dt.datetime, *, rollups: bool
) -> list[tuple[dt.datetime, int]]:
    """(hour, LLM calls) over [start, end), oldest first."""
    if rollups:
        found = aggregate(store, project, start, end, measures=("calls",), where="kind = 'llm'", unit="hour")
    else:
        found = store.query(
            "SELECT date_trunc('hour', timestamp) AS bucket, COUNT(*) AS calls FROM spans WHERE project = ? "
            "AND timestamp >= ? AND timestamp < ? AND kind = 'llm' GROUP BY date_trunc('hour', timestamp)",
            [project, start, end],
        ).dicts()
    hours: dict[dt.datetime, int] = {}
    for r in found:
        bucket = r["bucket"].replace(tzinfo=None) if isinstance(r["bucket"], dt.datetime) else r["bucket"]
        hours[bucket] = hours.get(bucket, 0) + int(r["calls"] or 0)
    return sorted(hours.items())


def examined_window(
    store: Store, project: str, start: dt.datetime, end: dt.datetime, *, max_calls: int, rollups: bool
) -> Examined:
    hours = calls_per_hour(store, project, start, end, rollups=rollups)
    total = sum(n for _, n in hours)
    if max_calls <= 0 or total <= max_calls:
        return Examined(start, end, total)
    kept, first = 0, end
    for hour, n in reversed(hours):
        if kept + n > max_calls and kept > 0:
            break
        kept += n
        first = hour
    return Examined(max(first, start), end, kept, sampled=True)
