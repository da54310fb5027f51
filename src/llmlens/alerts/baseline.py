"""Baselines that learn: the same hour of the week over recent weeks, and a robust deviation score.

A Monday-morning peak is compared with past Monday mornings, not with the weekly average, so it is
not a spike. The score is (value - median) / (1.4826 x MAD): the median and the median absolute
deviation ignore the odd past incident that a mean and a standard deviation would absorb.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from ._sql import Range

WEEK = timedelta(days=7)
DAY = timedelta(days=1)
# MAD x 1.4826 estimates the standard deviation of normally distributed data.
_MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True, slots=True)
class RobustBaseline:
    median: float
    scale: float  # 1.4826 x MAD, floored so a perfectly flat history does not make every blip infinite
    samples: int
    kind: str  # "weekly" (same hour of the week) or "daily" (same hour of the day, too few weeks)

    def score(self, value: float) -> float:
        return (value - self.median) / self.scale

    def boundary(self, z_threshold: float, min_change: float) -> float:
        """The value above which the rule fires: far out in deviations and clearly above the median."""
        return max(self.median + z_threshold * self.scale, self.median * (1.0 + min_change))


def robust_baseline(values: Sequence[float], kind: str) -> RobustBaseline | None:
    if len(values) < 3:
        return None
    median = statistics.median(values)
    mad = statistics.median(abs(v - median) for v in values)
    # Floor: 5% of the median, or a tiny absolute amount when the median itself is ~0.
    scale = max(_MAD_TO_SIGMA * mad, 0.05 * abs(median), 1e-9)
    return RobustBaseline(median=median, scale=scale, samples=len(values), kind=kind)


def seasonal_windows(window: Range, *, weeks: int, first_data: datetime | None) -> tuple[list[Range], str]:
    """Past windows to compare `window` with, and which kind they are.

    The same hour of the week over the last `weeks` weeks when at least three of them have data;
    otherwise the same hour of the day over the last 7 days (a daily pattern is learnt in days, a
    weekly one needs weeks).
    """
    start, end = window

    def available(r: Range) -> bool:
        return first_data is None or r[0] >= first_data

    weekly = [(start - w * WEEK, end - w * WEEK) for w in range(1, weeks + 1)]
    weekly = [r for r in weekly if available(r)]
    if len(weekly) >= 3:
        return weekly, "weekly"
    daily = [(start - d * DAY, end - d * DAY) for d in range(1, 8)]
    return [r for r in daily if available(r)], "daily"
