"""Time windows of the dashboards: `range=1h|24h|7d|30d|90d` (or any duration) or `from`/`to` times, all UTC."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

from ._times import DURATION_FORMS, WindowError, is_duration, parse_duration, parse_time

RANGES: dict[str, dt.timedelta] = {
    "1h": dt.timedelta(hours=1),
    "24h": dt.timedelta(hours=24),
    "7d": dt.timedelta(days=7),
    "30d": dt.timedelta(days=30),
    "90d": dt.timedelta(days=90),
}
DEFAULT_RANGE = "7d"

# Chart bucket per window length: at most a few hundred points per series.
_BUCKETS: tuple[tuple[dt.timedelta, str, dt.timedelta], ...] = (
    (dt.timedelta(hours=3), "minute", dt.timedelta(minutes=1)),
    (dt.timedelta(days=8), "hour", dt.timedelta(hours=1)),
    (dt.timedelta.max, "day", dt.timedelta(days=1)),
)


_FIRST_RECENT_SLICE = dt.timedelta(hours=1)


def utc_now() -> dt.datetime:
    """Naive UTC, like the stored timestamps."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """[start, end) in naive UTC, with the chart bucket that suits its length."""

    start: dt.datetime
    end: dt.datetime
    range: str | None = DEFAULT_RANGE  # None for a custom from/to window

    @property
    def length(self) -> dt.timedelta:
        return self.end - self.start

    @property
    def bucket(self) -> str:
        """The `date_trunc` unit of time series over this window."""
        return next(unit for limit, unit, _ in _BUCKETS if self.length <= limit)

    @property
    def bucket_step(self) -> dt.timedelta:
        return next(step for limit, _, step in _BUCKETS if self.length <= limit)

    @property
    def seconds(self) -> float:
        return max(self.length.total_seconds(), 1.0)

    def bucket_starts(self) -> list[dt.datetime]:
        """Every bucket start from the window's start to its end, for dense series."""
        step = self.bucket_step
        first = truncate(self.start, self.bucket)
        out: list[dt.datetime] = []
        t = first
        while t < self.end:
            out.append(t)
            t += step
        return out

    def recent_slice_starts(self) -> Iterator[dt.datetime]:
        """Starts of ever wider slices [start, end) of the window that end at its end: the last hour, then
        4x wider, ..., then the whole window. For questions about the most recent rows ("the 50 sessions
        last active") that a recent slice answers exactly once it holds enough of them."""
        width = _FIRST_RECENT_SLICE
        while self.end - width > self.start:
            yield self.end - width
            width *= 4
        yield self.start


def truncate(t: dt.datetime, unit: str) -> dt.datetime:
    if unit == "minute":
        return t.replace(second=0, microsecond=0)
    if unit == "hour":
        return t.replace(minute=0, second=0, microsecond=0)
    return t.replace(hour=0, minute=0, second=0, microsecond=0)


def parse_window(
    range_: str | None = None,
    from_: str | None = None,
    to: str | None = None,
    *,
    now: dt.datetime | None = None,
    default: str = DEFAULT_RANGE,
) -> TimeWindow:
    """`from`/`to` win over `range`; `to` defaults to now, `from` to `to` minus the range.

    `range` is one of RANGES or any duration (`14d`, `12h`: a custom window); `from` and `to` are
    times in any form `parse_time` reads (`7d` ago, ISO 8601, epoch seconds).
    """
    now = now or utc_now()
    if range_ and range_ not in RANGES and not is_duration(range_):
        raise WindowError(f"range must be one of {', '.join(RANGES)} or {DURATION_FORMS}, got {range_!r}")
    length = RANGES.get(range_ or default) or parse_duration(range_ or default, "range")
    if from_ or to:
        end = parse_time(to, "to", now=now) if to else now
        start = parse_time(from_, "from", now=now) if from_ else _before(end, length)
        if start >= end:
            raise WindowError("from must be before to")
        return TimeWindow(start=start, end=end, range=None)
    # End on the next minute so repeated loads within a minute see the same window.
    end = truncate(now, "minute") + dt.timedelta(minutes=1)
    preset = (range_ or default) if (range_ or default) in RANGES else None  # the page's range picker shows presets
    return TimeWindow(start=_before(end, length), end=end, range=preset)


def _before(end: dt.datetime, length: dt.timedelta) -> dt.datetime:
    try:
        return end - length
    except OverflowError:
        raise WindowError(f"range of {length.days} days reaches before the year 1") from None
