"""Which source answers which part of a time window: day rollups, hour rollups or raw spans."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

Source = Literal["raw", "hour", "day"]
_STEPS = {"hour": dt.timedelta(hours=1), "day": dt.timedelta(days=1)}


@dataclass(frozen=True, slots=True)
class Segment:
    """[start, end) answered from `source`."""

    source: Source
    start: dt.datetime
    end: dt.datetime


def floor_to(t: dt.datetime, unit: str) -> dt.datetime:
    t = t.replace(minute=0, second=0, microsecond=0)
    return t.replace(hour=0) if unit == "day" else t


def ceil_to(t: dt.datetime, unit: str) -> dt.datetime:
    f = floor_to(t, unit)
    return f if f == t else f + _STEPS[unit]


def plan_window(
    start: dt.datetime, end: dt.datetime, finest: str, *, sources: tuple[str, ...] = ("hour", "day")
) -> list[Segment]:
    """Cover [start, end) with the coarsest sources allowed. `finest` is the result's time bucket
    ('minute', 'hour', 'day', or 'none' for totals): a source coarser than it cannot be used.
    `sources` lists the rollup grains that exist (user spend has only 'day')."""
    allowed: list[str] = [g for g in ("hour", "day") if g in sources]
    if finest == "minute":
        allowed = []
    elif finest == "hour":
        allowed = [g for g in allowed if g == "hour"]
    return _cover(start, end, allowed)


def _cover(start: dt.datetime, end: dt.datetime, grains: list[str]) -> list[Segment]:
    if start >= end:
        return []
    if not grains:
        return [Segment("raw", start, end)]
    grain = grains[-1]  # coarsest
    lo, hi = ceil_to(start, grain), floor_to(end, grain)
    if lo >= hi:
        return _cover(start, end, grains[:-1])
    return [
        *_cover(start, lo, grains[:-1]),
        Segment(grain, lo, hi),  # type: ignore[arg-type]
        *_cover(hi, end, grains[:-1]),
    ]
