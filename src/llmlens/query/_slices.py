"""Counting from the newest end of a window: ever wider slices, until the count passes a cap or covers it all."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

FIRST_SLICE = dt.timedelta(hours=1)
_GROWTH = (4, 16)  # each slice this much wider than the last, at least and at most
_AIM = 1.25  # aim this far past the cap when the count so far says how wide that is


def count_newest(
    start: dt.datetime, end: dt.datetime, count: Callable[[dt.datetime], int], cap: int
) -> list[tuple[dt.datetime, int]]:
    """(slice start, `count(slice start)`) for slices [lo, end) of [start, end), narrowest first, until a
    count passes `cap` or the slice is the whole range. Each slice is as wide as the counts so far say it
    must be to pass the cap (4 to 16 times the last): a common match takes two reads, a rare one a few
    more, and no read is much wider than the count needs (a wider read costs more)."""
    counts: list[tuple[dt.datetime, int]] = []
    width = FIRST_SLICE
    while True:
        lo = start if width >= end - start else end - width
        n = count(lo)
        counts.append((lo, n))
        if n > cap or lo <= start:
            return counts
        width = width * min(_GROWTH[1], max(_GROWTH[0], _AIM * (cap + 1) / max(n, 1)))
