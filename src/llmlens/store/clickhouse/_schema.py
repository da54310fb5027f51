"""ClickHouse schema: MergeTree tables, the article's views, hourly rollups; SQL that 18.16 accepts.

Tables are partitioned by month and ordered by (project, kind, hour, span_id): the dashboards filter
on project, kind and time, and ReplacingMergeTree collapses a re-sent span (same key) on merge.
Timestamps are kept as integer microseconds (`timestamp_us`) plus a `timestamp` column computed from
them: DateTime('UTC') on 18.16 (seconds), DateTime64(6, 'UTC') where the server has it.
"""

from __future__ import annotations

from clickhouse_driver import Client

from .._columns import FEEDBACK_COLUMNS, SPAN_COLUMNS, ColumnType
from ._connection import ServerFeatures

SCHEMA_VERSION = 2

# Views whose body a schema version changed: dropped once, when a database older than it is migrated.
_VIEWS_CHANGED_IN: dict[int, tuple[str, ...]] = {2: ("feedback_events",)}

SPANS_TABLE = "llmlens_spans"
FEEDBACK_TABLE = "llmlens_feedback"
ROLLUP_TABLE = "llmlens_llm_hourly_state"
ROLLUP_MV = "llmlens_llm_hourly_mv"
ROLLUP_VIEW = "llm_hourly"
META_TABLE = "llmlens_meta"

_NULLABLE_TYPES: dict[ColumnType, str] = {
    "str": "Nullable(String)",
    "int": "Nullable(Int64)",
    "float": "Nullable(Float64)",
    "bool": "Nullable(UInt8)",
    "json": "Nullable(String)",
}
# Always present on every record, and part of sort keys: not Nullable (18.16 refuses Nullable keys).
_REQUIRED_SPAN = frozenset({"project", "trace_id", "span_id", "kind", "name", "status"})
_REQUIRED_FEEDBACK = frozenset({"project", "feedback_id", "message_id", "feedback_type"})

# Columns the store adds beside the shared ones.
EXTRA_SPAN_COLUMNS = ("timestamp_us", "documents_count", "ingested_at")
EXTRA_FEEDBACK_COLUMNS = ("timestamp_us", "ingested_at")


def _timestamp_ddl(features: ServerFeatures) -> str:
    if features.datetime64:
        return "DateTime64(6, 'UTC') DEFAULT fromUnixTimestamp64Micro(timestamp_us, 'UTC')"
    return "DateTime('UTC') DEFAULT toDateTime(intDiv(timestamp_us, 1000000), 'UTC')"


def _columns_ddl(
    columns: tuple[tuple[str, ColumnType, str], ...], required: frozenset[str], features: ServerFeatures
) -> list[str]:
    out = []
    for col, kind, _ in columns:
        if kind == "timestamp":
            out.append("timestamp_us Int64")
            out.append(f"`{col}` {_timestamp_ddl(features)}")
        elif col in required:
            out.append(f"`{col}` String")
        else:
            out.append(f"`{col}` {_NULLABLE_TYPES[kind]}")
    return out


def _ttl(features: ServerFeatures, retention_days: int) -> str:
    if retention_days > 0 and features.ttl:
        return f"TTL toDateTime(timestamp) + INTERVAL {int(retention_days)} DAY "
    return ""


def spans_table_ddl(features: ServerFeatures, retention_days: int = 0, *, engine: str | None = None) -> str:
    cols = _columns_ddl(SPAN_COLUMNS, _REQUIRED_SPAN, features)
    cols += ["documents_count Nullable(UInt32)", "ingested_at DateTime DEFAULT now()"]
    body = ",\n  ".join(cols)
    return (
        f"CREATE TABLE IF NOT EXISTS {SPANS_TABLE} (\n  {body}\n) "
        f"ENGINE = {engine or 'ReplacingMergeTree(ingested_at)'} "
        "PARTITION BY toYYYYMM(timestamp) "
        "ORDER BY (project, kind, toStartOfHour(timestamp), span_id) "
        f"{_ttl(features, retention_days)}"
        "SETTINGS index_granularity = 8192"
    )


def feedback_table_ddl(features: ServerFeatures, retention_days: int = 0, *, engine: str | None = None) -> str:
    cols = _columns_ddl(FEEDBACK_COLUMNS, _REQUIRED_FEEDBACK, features)
    cols += ["ingested_at DateTime DEFAULT now()"]
    body = ",\n  ".join(cols)
    return (
        f"CREATE TABLE IF NOT EXISTS {FEEDBACK_TABLE} (\n  {body}\n) "
        f"ENGINE = {engine or 'ReplacingMergeTree(ingested_at)'} "
        "PARTITION BY toYYYYMM(timestamp) "
        "ORDER BY (project, feedback_id) "
        f"{_ttl(features, retention_days)}"
        "SETTINGS index_granularity = 8192"
    )


# Hourly LLM rollup: one row of aggregate states per (project, hour, model, feature) and insert block;
# AggregatingMergeTree merges them. Latency quantiles are t-digest states (mergeable across hours).
ROLLUP_QUANTILES = (0.5, 0.95, 0.99)
_QUANTILE_ARGS = ", ".join(str(q) for q in ROLLUP_QUANTILES)


def rollup_table_ddl(*, engine: str | None = None) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {ROLLUP_TABLE} (\n"
        "  project String, hour DateTime('UTC'), model String, feature String,\n"
        "  calls AggregateFunction(count),\n"
        "  errors AggregateFunction(sum, UInt64),\n"
        "  cost_usd AggregateFunction(sum, Float64),\n"
        "  prompt_tokens AggregateFunction(sum, Int64),\n"
        "  completion_tokens AggregateFunction(sum, Int64),\n"
        f"  latency_ms AggregateFunction(quantilesTDigest({_QUANTILE_ARGS}), Float64)\n"
        f") ENGINE = {engine or 'AggregatingMergeTree()'} PARTITION BY toYYYYMM(hour) "
        "ORDER BY (project, hour, model, feature)"
    )


def rollup_select(where: str = "") -> str:
    """The aggregation the materialized view runs on each insert (and a rebuild runs over old rows)."""
    extra = f" AND ({where})" if where else ""
    return (
        "SELECT project, toStartOfHour(toDateTime(timestamp, 'UTC')) AS hour, "
        "ifNull(model, '') AS model, ifNull(feature, '') AS feature, "
        "countState() AS calls, "
        "sumState(toUInt64(status = 'error')) AS errors, "
        "sumState(toFloat64(ifNull(cost_usd, 0))) AS cost_usd, "
        "sumState(toInt64(ifNull(prompt_tokens, 0))) AS prompt_tokens, "
        "sumState(toInt64(ifNull(completion_tokens, 0))) AS completion_tokens, "
        f"quantilesTDigestState({_QUANTILE_ARGS})(toFloat64(ifNull(latency_ms, 0))) AS latency_ms "
        f"FROM {SPANS_TABLE} WHERE kind = 'llm'{extra} "
        "GROUP BY project, hour, model, feature"
    )


def rollup_mv_ddl() -> str:
    return f"CREATE MATERIALIZED VIEW IF NOT EXISTS {ROLLUP_MV} TO {ROLLUP_TABLE} AS {rollup_select()}"


def rollup_view_ddl() -> str:
    return (
        f"CREATE VIEW IF NOT EXISTS {ROLLUP_VIEW} AS SELECT project, hour, model, feature, "
        "countMerge(calls) AS calls, sumMerge(errors) AS errors, sumMerge(cost_usd) AS cost_usd, "
        "sumMerge(prompt_tokens) AS prompt_tokens, sumMerge(completion_tokens) AS completion_tokens, "
        f"quantilesTDigestMerge({_QUANTILE_ARGS})(latency_ms) AS latency_quantiles_ms "
        f"FROM {ROLLUP_TABLE} GROUP BY project, hour, model, feature"
    )


# -- the article's views -------------------------------------------------------------------------
# Each body takes a project condition: empty for the database views (every project), `project = '…'`
# when user SQL reads them (18.16 cannot parametrise a view, so the console inlines these bodies).


def _and(condition: str, project_filter: str) -> str:
    return f"{condition} AND {project_filter}" if project_filter else condition


def spans_body(project_filter: str = "") -> str:
    cols = ", ".join(f"`{col}`" for col, _, _ in SPAN_COLUMNS)
    where = f" WHERE {project_filter}" if project_filter else ""
    return f"SELECT {cols} FROM {SPANS_TABLE}{where}"


def llm_logs_body(project_filter: str = "") -> str:
    cols = [
        "timestamp",
        "model",
        "prompt",
        "response",
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "latency_ms",
        "cost_usd",
        "metadata",
        "user_id",
        "session_id",
        "feature",
        "template_id",
        "template_version",
        "variables",
        "message_id",
        "user_satisfaction",
        "trace_id",
        "span_id",
        "parent_span_id",
        "provider",
        "response_model",
        "streamed",
        "ttft_ms",
        "tokens_per_second",
        "status",
        "error_type",
        "error_message",
        "cached_tokens",
        "cache_write_tokens",
        "reasoning_tokens",
        "tool_calls",
        "finish_reason",
        "temperature",
        "max_tokens",
        "environment",
        "service",
        "computed_cost_usd",
        "cost_source",
        "price_version",
        "input_messages",
        "output_messages",
        "cache_hit",
        "cost_saved_usd",
        "blocked",
        "replay_of",
        "project",
    ]
    select = ", ".join(f"f.user_satisfaction AS {c}" if c == "user_satisfaction" else f"s.{c} AS {c}" for c in cols)
    llm_where = _and("kind = 'llm'", project_filter)
    fb_where = f" WHERE {project_filter}" if project_filter else ""
    return (
        f"SELECT {select} FROM (SELECT * FROM {SPANS_TABLE} WHERE {llm_where}) AS s "
        "ANY LEFT JOIN (SELECT project, message_id, "
        "CAST(avg(feedback_type = 'thumbs_up') AS Nullable(Float64)) AS user_satisfaction "
        f"FROM {FEEDBACK_TABLE}{fb_where} GROUP BY project, message_id) AS f "
        "ON f.project = s.project AND f.message_id = s.message_id"
    )


def tool_logs_body(project_filter: str = "") -> str:
    where = _and("kind = 'tool'", project_filter)
    return (
        "SELECT timestamp, tool_name, tool_args AS args, tool_result AS result, latency_ms, "
        "tool_success AS success, error_message AS error, user_id, session_id, feature, environment, "
        f"trace_id, span_id, parent_span_id, project FROM {SPANS_TABLE} "
        f"WHERE {where}"
    )


def retrieval_logs_body(project_filter: str = "") -> str:
    where = _and("kind = 'retrieval'", project_filter)
    return (
        "SELECT timestamp, retrieval_query AS query, documents, documents_count AS num_documents, latency_ms, "
        "user_id, session_id, feature, environment, trace_id, span_id, parent_span_id, project "
        f"FROM {SPANS_TABLE} WHERE {where}"
    )


def feedback_events_body(project_filter: str = "") -> str:
    fb_where = f" WHERE {project_filter}" if project_filter else ""
    cols = [
        "user_id",
        "session_id",
        "message_id",
        "feedback_type",
        "feedback_text",
        "timestamp",
        "feature",
        "trace_id",
        "span_id",
        "feedback_id",
        "metadata",
        "project",
    ]
    select = ", ".join(_FEEDBACK_EVENT_EXPRS.get(c, f"fb.{c}") + f" AS {c}" for c in cols)
    llm_where = _and("kind = 'llm' AND message_id IS NOT NULL", project_filter)
    return (
        f"SELECT {select} FROM (SELECT *, trace_id AS own_trace_id FROM {FEEDBACK_TABLE}{fb_where}) AS fb "
        "ANY LEFT JOIN (SELECT project, message_id, any(feature) AS feature, any(user_id) AS call_user_id, "
        "any(session_id) AS call_session_id, min(span_id) AS call_span_id, "
        "argMin(trace_id, span_id) AS call_trace_id "
        f"FROM {SPANS_TABLE} WHERE {llm_where} "
        "GROUP BY project, message_id) AS m ON m.project = fb.project AND m.message_id = fb.message_id"
    )


# As in the DuckDB view: the rated call's feature; its user, session, trace and span when the feedback
# has none of its own. Unmatched rows of an ANY LEFT JOIN get '' for the call's (non-Nullable) ids.
# `own_trace_id`: ClickHouse resolves `fb.trace_id` to the `trace_id` alias of this very SELECT.
_FEEDBACK_EVENT_EXPRS = {
    "feature": "m.feature",
    "user_id": "coalesce(fb.user_id, m.call_user_id)",
    "session_id": "coalesce(fb.session_id, m.call_session_id)",
    "trace_id": "coalesce(fb.trace_id, nullIf(m.call_trace_id, ''))",
    "span_id": "coalesce(fb.span_id, if(isNull(fb.own_trace_id), nullIf(m.call_span_id, ''), NULL))",
}


VIEW_BODIES = {
    "spans": spans_body,
    "llm_logs": llm_logs_body,
    "tool_logs": tool_logs_body,
    "retrieval_logs": retrieval_logs_body,
    "feedback_events": feedback_events_body,
}


def migrate(client: Client, features: ServerFeatures, retention_days: int = 0) -> int:
    """Create what is missing and (re)create the views. Returns the schema version found before."""
    client.execute(
        f"CREATE TABLE IF NOT EXISTS {META_TABLE} (key String, value String, updated DateTime DEFAULT now()) "
        "ENGINE = ReplacingMergeTree(updated) ORDER BY key"
    )
    rows = client.execute(f"SELECT argMax(value, updated) FROM {META_TABLE} WHERE key = 'schema_version'")
    current = int(rows[0][0]) if rows and rows[0][0] else 0
    if current > SCHEMA_VERSION:
        raise RuntimeError(
            f"this ClickHouse database has llmlens schema version {current}, newer than this llmlens "
            f"({SCHEMA_VERSION}); upgrade llmlens"
        )
    client.execute(spans_table_ddl(features, retention_days))
    client.execute(feedback_table_ddl(features, retention_days))
    client.execute(rollup_table_ddl())
    client.execute(rollup_mv_ddl())
    client.execute(rollup_view_ddl())
    for version in range(current + 1, SCHEMA_VERSION + 1):
        for name in _VIEWS_CHANGED_IN.get(version, ()):
            client.execute(f"DROP TABLE IF EXISTS {name}")  # 18.16 has no CREATE OR REPLACE VIEW
    for name, body in VIEW_BODIES.items():
        # Several llmlens servers may start at once: CREATE ... IF NOT EXISTS keeps that race harmless.
        client.execute(f"CREATE VIEW IF NOT EXISTS {name} AS {body()}")
    if retention_days > 0 and features.ttl:
        for table in (SPANS_TABLE, FEEDBACK_TABLE):
            client.execute(f"ALTER TABLE {table} MODIFY TTL toDateTime(timestamp) + INTERVAL {int(retention_days)} DAY")
    if current < SCHEMA_VERSION:
        client.execute(f"INSERT INTO {META_TABLE} (key, value) VALUES", [("schema_version", str(SCHEMA_VERSION))])
    return current
