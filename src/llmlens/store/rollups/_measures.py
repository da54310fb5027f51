"""What the rollups keep: their key columns and measures, as SQL over span columns.

A rollup row holds, for one project, one time bucket (hour or day) and one combination of keys, the
partial aggregates of the spans in it; merging rows (over time, or rows appended by different
commits) is a SUM of every measure. The same aggregate expressions run over raw spans for the parts
of a window that do not fill a whole bucket, so merged answers equal raw ones exactly (sums and
counts) or within the sketch's accuracy (quantiles).
"""

from __future__ import annotations

# Span kinds whose counts, costs and latencies the dashboards aggregate.
ROLLUP_KINDS = ("llm", "request")

# Keys of the main rollup (besides project and bucket), all VARCHAR.
ROLLUP_KEYS = ("kind", "model", "provider", "feature", "environment", "template_id", "template_version", "error_type")

# Keys of the quantile sketches of LLM calls (besides project, bucket, metric and bucket index): few, since
# each key holds ~200 bucket rows per hour and metric; the dashboards split percentiles by model only.
SKETCH_KEYS = ("model", "provider", "environment")

# Upper edges (ms) of the latency histogram; the last bin is open-ended.
LATENCY_HISTOGRAM_EDGES_MS: tuple[float, ...] = (100, 250, 500, 1000, 2000, 3000, 5000, 10000, 20000, 30000)

_UNPRICED = "cost_usd IS NULL AND (status IS NULL OR status <> 'error')"


def _histogram_measures() -> list[tuple[str, str, str]]:
    out = []
    lo: float | None = None
    for i, edge in enumerate((*LATENCY_HISTOGRAM_EDGES_MS, None)):
        conds = []
        if lo is not None:
            conds.append(f"NOT (latency_ms < {lo})")  # NaN sorts last, like the raw CASE
        if edge is not None:
            conds.append(f"latency_ms < {edge}")
        cond = " AND ".join(conds) if conds else "TRUE"
        out.append((f"latency_bin_{i}", "BIGINT", f"COUNT(latency_ms) FILTER (WHERE {cond})"))
        lo = edge
    return out


# (column, SQL type, aggregate over raw spans). Merged with SUM.
MEASURES: tuple[tuple[str, str, str], ...] = (
    ("calls", "BIGINT", "COUNT(*)"),
    ("errors", "BIGINT", "COUNT(*) FILTER (WHERE status = 'error')"),
    ("http_4xx", "BIGINT", "COUNT(*) FILTER (WHERE http_status >= 400 AND http_status < 500)"),
    ("http_5xx", "BIGINT", "COUNT(*) FILTER (WHERE http_status >= 500)"),
    ("cost_usd", "DOUBLE", "SUM(cost_usd)"),
    ("priced", "BIGINT", "COUNT(cost_usd)"),
    ("prompt_tokens", "BIGINT", "SUM(prompt_tokens)"),
    ("completion_tokens", "BIGINT", "SUM(completion_tokens)"),
    ("total_tokens", "BIGINT", "SUM(total_tokens)"),
    ("latency_count", "BIGINT", "COUNT(latency_ms)"),
    ("unpriced_calls", "BIGINT", f"COUNT(*) FILTER (WHERE {_UNPRICED})"),
    ("unpriced_prompt_tokens", "BIGINT", f"SUM(prompt_tokens) FILTER (WHERE {_UNPRICED})"),
    ("unpriced_completion_tokens", "BIGINT", f"SUM(completion_tokens) FILTER (WHERE {_UNPRICED})"),
    *_histogram_measures(),
)

# Per-user spend by day (users are too many to key the main rollup by).
USER_MEASURES: tuple[tuple[str, str, str], ...] = (
    ("calls", "BIGINT", "COUNT(*)"),
    ("cost_usd", "DOUBLE", "SUM(cost_usd)"),
    ("priced", "BIGINT", "COUNT(cost_usd)"),
)
USER_TIER_SQL = "MAX(json_extract_string(metadata, '$.tier'))"
