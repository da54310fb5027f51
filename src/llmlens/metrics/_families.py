"""In-memory counters and histograms keyed by label values, with bounded label cardinality.

Label values come from traffic (model names, features), so each label keeps at most `max_values`
distinct values and each family at most `max_series` series; anything beyond becomes "other".
User ids, session ids and trace ids are never labels.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

NONE_VALUE = "none"
OTHER_VALUE = "other"
MAX_LABEL_VALUES = 200
MAX_SERIES = 10_000
_MAX_VALUE_CHARS = 120


class LabelValues:
    """The distinct values seen per label name, capped: the first `max_values` keep their name."""

    def __init__(self, max_values: int = MAX_LABEL_VALUES) -> None:
        self.max_values = max_values
        self._seen: dict[str, set[str]] = {}
        self.overflowed = 0  # values replaced by "other"

    def value(self, label: str, raw: object) -> str:
        if raw is None or raw == "":
            return NONE_VALUE
        text = str(raw)[:_MAX_VALUE_CHARS]
        seen = self._seen.setdefault(label, set())
        if text in seen:
            return text
        if len(seen) < self.max_values:
            seen.add(text)
            return text
        self.overflowed += 1
        return OTHER_VALUE


@dataclass(slots=True)
class CounterFamily:
    name: str
    documentation: str
    labels: tuple[str, ...]
    max_series: int = MAX_SERIES
    values: dict[tuple[str, ...], float] = field(default_factory=dict)

    def inc(self, key: tuple[str, ...], amount: float = 1.0) -> None:
        if key not in self.values and len(self.values) >= self.max_series:
            key = (OTHER_VALUE,) * len(self.labels)
        self.values[key] = self.values.get(key, 0.0) + amount


@dataclass(slots=True)
class HistogramFamily:
    """Cumulative bucket counts per series; `edges` are the upper bounds (seconds), +Inf implied."""

    name: str
    documentation: str
    labels: tuple[str, ...]
    edges: tuple[float, ...]
    max_series: int = MAX_SERIES
    # key -> [count per bucket (non-cumulative, last is +Inf)..., sum]
    values: dict[tuple[str, ...], list[float]] = field(default_factory=dict)

    def observe(self, key: tuple[str, ...], value: float) -> None:
        if math.isnan(value) or value < 0:
            return
        if key not in self.values and len(self.values) >= self.max_series:
            key = (OTHER_VALUE,) * len(self.labels)
        counts = self.values.get(key)
        if counts is None:
            counts = self.values[key] = [0.0] * (len(self.edges) + 2)
        counts[bisect.bisect_left(self.edges, value)] += 1
        counts[-1] += value

    def series(self) -> Iterator[tuple[tuple[str, ...], list[tuple[str, float]], float]]:
        """(label values, cumulative buckets as (le, count), sum) for each series."""
        bounds = [_le(e) for e in self.edges] + ["+Inf"]
        for key, counts in self.values.items():
            running = 0.0
            buckets = []
            for le, count in zip(bounds, counts[:-1], strict=True):
                running += count
                buckets.append((le, running))
            yield key, buckets, counts[-1]


def _le(edge: float) -> str:
    return repr(float(edge))


def copy_counter(family: CounterFamily) -> CounterFamily:
    return CounterFamily(family.name, family.documentation, family.labels, family.max_series, dict(family.values))


def copy_histogram(family: HistogramFamily) -> HistogramFamily:
    return HistogramFamily(
        family.name,
        family.documentation,
        family.labels,
        family.edges,
        family.max_series,
        {k: list(v) for k, v in family.values.items()},
    )


def seconds(ms: float | None) -> float | None:
    return None if ms is None else ms / 1000.0


def label_key(values: LabelValues, names: Sequence[str], raw: Sequence[object]) -> tuple[str, ...]:
    return tuple(values.value(n, r) for n, r in zip(names, raw, strict=True))
