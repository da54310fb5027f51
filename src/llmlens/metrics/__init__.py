"""Prometheus metrics: the server's own health and LLM traffic by model, provider, feature and environment."""

from ._collector import CONTENT_TYPE_LATEST, ForwarderStatsView, ServerMetrics, store_size_bytes
from ._families import MAX_LABEL_VALUES, MAX_SERIES, NONE_VALUE, OTHER_VALUE, LabelValues
from ._traffic import COMMIT_BUCKETS_S, LATENCY_BUCKETS_S, LLM_LABELS, TTFT_BUCKETS_S, TrafficMetrics

__all__ = [
    "COMMIT_BUCKETS_S",
    "CONTENT_TYPE_LATEST",
    "LATENCY_BUCKETS_S",
    "LLM_LABELS",
    "MAX_LABEL_VALUES",
    "MAX_SERIES",
    "NONE_VALUE",
    "OTHER_VALUE",
    "TTFT_BUCKETS_S",
    "ForwarderStatsView",
    "LabelValues",
    "ServerMetrics",
    "TrafficMetrics",
    "store_size_bytes",
]
