"""Pre-aggregated dashboards: hourly and daily rollups of counts, sums and quantile sketches."""

from ._measures import (
    LATENCY_HISTOGRAM_EDGES_MS,
    MEASURES,
    ROLLUP_KEYS,
    ROLLUP_KINDS,
    SKETCH_KEYS,
    USER_MEASURES,
    USER_TIER_SQL,
)
from ._plan import Segment, ceil_to, floor_to, plan_window
from ._sketch import (
    ALPHA,
    GAMMA,
    SKETCHED_METRICS,
    ZERO_INDEX,
    bucket_value,
    index_sql,
    quantile_from_ranks,
    quantile_select_sql,
)

__all__ = [
    "ALPHA",
    "GAMMA",
    "LATENCY_HISTOGRAM_EDGES_MS",
    "MEASURES",
    "ROLLUP_KEYS",
    "ROLLUP_KINDS",
    "SKETCHED_METRICS",
    "SKETCH_KEYS",
    "USER_MEASURES",
    "USER_TIER_SQL",
    "ZERO_INDEX",
    "Segment",
    "bucket_value",
    "ceil_to",
    "floor_to",
    "index_sql",
    "plan_window",
    "quantile_from_ranks",
    "quantile_select_sql",
]
