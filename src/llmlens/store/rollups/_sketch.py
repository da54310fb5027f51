"""A mergeable log-bucket quantile sketch (DDSketch's logarithmic mapping) kept as (index, count) rows.

A positive value x falls in bucket i = ceil(log_gamma(x)), which covers (gamma^(i-1), gamma^i]; the
bucket's estimate 2 gamma^i / (gamma + 1) is within ALPHA of every value in it. Values at or below
MIN_VALUE (zero latencies, say) share one bucket whose estimate is 0. Two sketches merge by adding
counts per index, so per-hour sketches sum to a day's or a month's, and a quantile read from the
merged counts is within ALPHA of the exact one. The index is computed in SQL (ingest, rebuild, raw
window edges) so that every part of a merged answer buckets values the same way.
"""

from __future__ import annotations

import math

ALPHA = 0.01
GAMMA = (1 + ALPHA) / (1 - ALPHA)
LOG_GAMMA = math.log(GAMMA)
MIN_VALUE = 1e-6
ZERO_INDEX = -1_000_000  # sorts before every real index

# The metrics that are sketched, by the id stored in the `metric` column.
SKETCHED_METRICS: dict[str, int] = {"latency_ms": 0, "ttft_ms": 1, "tokens_per_second": 2}


def index_sql(column: str) -> str:
    """SQL for the bucket index of `column` (NULL for NULL/NaN)."""
    return (
        f"CASE WHEN {column} IS NULL OR isnan({column}) THEN NULL "
        f"WHEN {column} <= {MIN_VALUE!r} THEN {ZERO_INDEX} "
        f"ELSE CAST(ceil(ln({column}) / {LOG_GAMMA!r}) AS INTEGER) END"
    )


def bucket_value(index: int) -> float:
    """The estimate of every value in bucket `index`."""
    if index <= ZERO_INDEX:
        return 0.0
    return 2.0 * GAMMA**index / (GAMMA + 1.0)


def quantile_from_ranks(total: int, q: float, lower_index: int | None, upper_index: int | None) -> float | None:
    """Interpolate like SQL `quantile_cont` between the estimates of the order statistics around rank
    q * (total - 1), given the buckets holding them (see `quantile_select_sql`)."""
    if not total or lower_index is None:
        return None
    rank = q * (total - 1)
    lo = bucket_value(lower_index)
    hi = bucket_value(upper_index) if upper_index is not None else lo
    return lo + (rank - math.floor(rank)) * (hi - lo)


def quantile_select_sql(q: float, name: str) -> str:
    """Aggregates over `(idx, n, cum, total)` rows of one group: the buckets of the two order statistics
    around rank q * (total - 1) (`cum` is the running count by index)."""
    return (
        f"MIN(idx) FILTER (WHERE cum > floor({q!r} * (total - 1))) AS {name}_lo, "
        f"MIN(idx) FILTER (WHERE cum > ceil({q!r} * (total - 1))) AS {name}_hi"
    )
