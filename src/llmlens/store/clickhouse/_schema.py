"""ClickHouse schema: MergeTree tables, the article's views, the dashboards' rollups; SQL that 18.16 accepts.

Tables are partitioned by month and ordered by (project, kind, hour, span_id): the dashboards filter
on project, kind and time, and ReplacingMergeTree collapses a re-sent span (same key) on merge.
Timestamps are kept as integer microseconds (`timestamp_us`) plus a `timestamp` column computed from
them: DateTime('UTC') on 18.16 (seconds), DateTime64(6, 'UTC') where the server has it.
"""

from __future__ import annotations

from .._columns import FEEDBACK_COLUMNS, SCORE_COLUMNS, SPAN_COLUMNS, ColumnType
from . import _id_index, _rollups
from ._cluster import Layout
from ._connection import GuardedClient, ServerFeatures

SCHEMA_VERSION = 5
# The version that brought the dashboards' rollups: an older database has its spans rolled up once.
ROLLUPS_SINCE = 4
# The version that brought the id map (`_id_index.py`): an older database has its ids mapped once.
ID_MAP_SINCE = 5

# Views whose body a schema version changed: dropped once, when a database older than it is migrated.
_VIEWS_CHANGED_IN: dict[int, tuple[str, ...]] = {2: ("feedback_events",), 4: ("llm_hourly",)}
# What a schema version retired: dropped once, when a database older than it is migrated.
_RETIRED_IN: dict[int, tuple[str, ...]] = {4: ("llmlens_llm_hourly_mv", "llmlens_llm_hourly_state")}

SPANS_TABLE = "llmlens_spans"
FEEDBACK_TABLE = "llmlens_feedback"
SCORES_TABLE = "llmlens_scores"
SCORE_NAMES_TABLE = "llmlens_score_names"
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
_REQUIRED_SCORE = frozenset({"project", "score_id", "name", "data_type", "source"})

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


def scores_table_ddl(features: ServerFeatures, retention_days: int = 0, *, engine: str | None = None) -> str:
    cols = _columns_ddl(SCORE_COLUMNS, _REQUIRED_SCORE, features)
    cols += ["ingested_at DateTime DEFAULT now()"]
    body = ",\n  ".join(cols)
    return (
        f"CREATE TABLE IF NOT EXISTS {SCORES_TABLE} (\n  {body}\n) "
        f"ENGINE = {engine or 'ReplacingMergeTree(ingested_at)'} "
        "PARTITION BY toYYYYMM(timestamp) "
        "ORDER BY (project, score_id) "
        f"{_ttl(features, retention_days)}"
        "SETTINGS index_granularity = 8192"
    )


def score_names_table_ddl(*, engine: str | None = None) -> str:
    """Each project's score names; the earliest registration of a name fixes its data type (see `_scores.py`)."""
    return (
        f"CREATE TABLE IF NOT EXISTS {SCORE_NAMES_TABLE} (project String, name String, data_type String, "
        f"created_us Int64) ENGINE = {engine or 'MergeTree()'} ORDER BY (project, name)"
    )


def rollup_view_ddl() -> str:
    """`llm_hourly`, kept for SQL written against earlier versions: LLM calls per hour, model and feature."""
    return f"CREATE VIEW IF NOT EXISTS {ROLLUP_VIEW} AS {rollup_view_body()}"


def rollup_view_body() -> str:
    null = _rollups.NULL_KEY
    return (
        "SELECT project, bucket AS hour, "
        f"if(model_k = '{null}', '', model_k) AS model, if(feature_k = '{null}', '', feature_k) AS feature, "
        "sum(calls) AS calls, sum(errors) AS errors, sum(cost_usd_sum) AS cost_usd, "
        "sum(prompt_tokens_sum) AS prompt_tokens, sum(completion_tokens_sum) AS completion_tokens "
        "FROM llmlens_rollup_hour WHERE kind_k = 'llm' GROUP BY project, hour, model, feature"
    )


# -- the article's views -------------------------------------------------------------------------
# Each body takes a project condition: empty for the database views (every project), `project = '…'`
# when user SQL reads them (18.16 cannot parametrise a view, so the console inlines these bodies).


def _and(condition: str, project_filter: str) -> str:
    return f"{condition} AND {project_filter}" if project_filter else condition


def spans_body(project_filter: str = "", inner: str = "") -> str:
    cols = ", ".join(f"`{col}`" for col, _, _ in SPAN_COLUMNS)
    condition = _and(project_filter, inner) if project_filter else inner
    where = f" WHERE {condition}" if condition else ""
    return f"SELECT {cols} FROM {SPANS_TABLE}{where}"


_LLM_LOG_COLUMNS = [
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


def llm_logs_body(project_filter: str = "", inner: str = "", columns: frozenset[str] | None = None) -> str:
    """`columns`: the view's columns the query reads (None: all). Only those are read from the spans, and the
    feedback is grouped per message only for `user_satisfaction` (18.16 reads every column of a `SELECT *`
    subquery, the prompts and responses too)."""
    cols = [c for c in _LLM_LOG_COLUMNS if columns is None or c in columns] or ["project"]
    llm_where = _and(_and("kind = 'llm'", project_filter), inner)
    if "user_satisfaction" not in cols:
        return f"SELECT {', '.join(cols)} FROM {SPANS_TABLE} WHERE {llm_where}"
    spans = dict.fromkeys([*(c for c in cols if c != "user_satisfaction"), "project", "message_id"])
    read = "*" if columns is None else ", ".join(spans)
    select = ", ".join(f"f.user_satisfaction AS {c}" if c == "user_satisfaction" else f"s.{c} AS {c}" for c in cols)
    fb_where = f" WHERE {project_filter}" if project_filter else ""
    return (
        f"SELECT {select} FROM (SELECT {read} FROM {SPANS_TABLE} WHERE {llm_where}) AS s "
        "ANY LEFT JOIN (SELECT project, message_id, "
        "CAST(avg(feedback_type = 'thumbs_up') AS Nullable(Float64)) AS user_satisfaction "
        f"FROM {FEEDBACK_TABLE}{fb_where} GROUP BY project, message_id) AS f "
        "ON f.project = s.project AND f.message_id = s.message_id"
    )


def tool_logs_body(project_filter: str = "", inner: str = "") -> str:
    where = _and(_and("kind = 'tool'", project_filter), inner)
    return (
        "SELECT timestamp, tool_name, tool_args AS args, tool_result AS result, latency_ms, "
        "tool_success AS success, error_message AS error, user_id, session_id, feature, environment, "
        f"trace_id, span_id, parent_span_id, project FROM {SPANS_TABLE} "
        f"WHERE {where}"
    )


def retrieval_logs_body(project_filter: str = "", inner: str = "") -> str:
    where = _and(_and("kind = 'retrieval'", project_filter), inner)
    return (
        "SELECT timestamp, retrieval_query AS query, documents, documents_count AS num_documents, latency_ms, "
        "user_id, session_id, feature, environment, trace_id, span_id, parent_span_id, project "
        f"FROM {SPANS_TABLE} WHERE {where}"
    )


_FEEDBACK_EVENT_COLUMNS = [
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


def feedback_events_body(
    project_filter: str = "", inner: str = "", calls: str = "", columns: frozenset[str] | None = None
) -> str:
    """`columns`: the view's columns the query reads (None: all); the rated calls are joined only for the
    columns that come from them."""
    fb_condition = _and(project_filter, inner) if project_filter else inner
    fb_where = f" WHERE {fb_condition}" if fb_condition else ""
    if columns is not None and not columns & _FEEDBACK_EVENT_EXPRS.keys():
        own = [c for c in _FEEDBACK_EVENT_COLUMNS if c in columns] or ["project"]
        return f"SELECT {', '.join(own)} FROM {FEEDBACK_TABLE}{fb_where}"
    select = ", ".join(_FEEDBACK_EVENT_EXPRS.get(c, f"fb.{c}") + f" AS {c}" for c in _FEEDBACK_EVENT_COLUMNS)
    llm_where = _and(_and("kind = 'llm' AND message_id IS NOT NULL", project_filter), calls)
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


def _call_of_message(message_ids: str, project_filter: str) -> str:
    """The LLM call each message id names: its first span (the DuckDB view's `_CALL_OF_MESSAGE`)."""
    where = _and(f"kind = 'llm' AND isNotNull(message_id) AND message_id IN ({message_ids})", project_filter)
    return (
        "SELECT project, message_id, min(span_id) AS call_span_id, argMin(trace_id, span_id) AS call_trace_id "
        f"FROM {SPANS_TABLE} WHERE {where} GROUP BY project, message_id"
    )


_NULL_STRING = "CAST(NULL AS Nullable(String))"
_NULL_FLOAT = "CAST(NULL AS Nullable(Float64))"


def scores_body(project_filter: str = "") -> str:
    """As the DuckDB view: stored scores with trace, span and message resolved, then thumbs as `user_feedback`.

    18.16 joins one table per SELECT, so the span and message lookups are nested; the stored ids are
    renamed `own_*` because ClickHouse would resolve `sc.trace_id` to the alias of the outer SELECT."""
    where = f" WHERE {project_filter}" if project_filter else ""
    wanted_spans = f"SELECT assumeNotNull(span_id) FROM {SCORES_TABLE} WHERE " + _and(
        "isNotNull(span_id)", project_filter
    )
    wanted_messages = f"SELECT assumeNotNull(message_id) FROM {SCORES_TABLE} WHERE " + _and(
        "isNull(span_id) AND isNotNull(message_id)", project_filter
    )
    by_span = (
        "SELECT project, span_id, any(trace_id) AS span_trace_id, ifNull(any(message_id), '') AS span_message_id "
        f"FROM {SPANS_TABLE} WHERE {_and(f'span_id IN ({wanted_spans})', project_filter)} GROUP BY project, span_id"
    )
    with_span = (
        "SELECT s0.score_id AS score_id, s0.project AS project, s0.name AS name, s0.data_type AS data_type, "
        "s0.value AS value, s0.label AS label, s0.source AS source, s0.evaluator AS evaluator, "
        "s0.evaluator_version AS evaluator_version, s0.comment AS comment, s0.reasoning AS reasoning, "
        "s0.judge_cost_usd AS judge_cost_usd, s0.timestamp AS timestamp, s0.metadata AS metadata, "
        "s0.trace_id AS own_trace_id, s0.span_id AS own_span_id, s0.message_id AS own_message_id, "
        "sp.span_trace_id AS span_trace_id, sp.span_message_id AS span_message_id "
        f"FROM (SELECT * FROM {SCORES_TABLE}{where}) AS s0 "
        f"ANY LEFT JOIN ({by_span}) AS sp ON sp.project = s0.project AND sp.span_id = s0.span_id"
    )
    stored = (
        "SELECT sc.score_id AS score_id, "
        "coalesce(sc.own_trace_id, nullIf(sc.span_trace_id, ''), "
        "if(isNull(sc.own_span_id), nullIf(m.call_trace_id, ''), NULL)) AS trace_id, "
        "coalesce(sc.own_span_id, nullIf(m.call_span_id, '')) AS span_id, "
        "coalesce(sc.own_message_id, nullIf(sc.span_message_id, '')) AS message_id, "
        "sc.name AS name, sc.data_type AS data_type, sc.value AS value, sc.label AS label, sc.source AS source, "
        "sc.evaluator AS evaluator, sc.evaluator_version AS evaluator_version, sc.comment AS comment, "
        "sc.reasoning AS reasoning, sc.judge_cost_usd AS judge_cost_usd, sc.timestamp AS timestamp, "
        "sc.metadata AS metadata, sc.project AS project "
        f"FROM ({with_span}) AS sc "
        f"ANY LEFT JOIN ({_call_of_message(wanted_messages, project_filter)}) AS m "
        "ON m.project = sc.project AND m.message_id = sc.own_message_id"
    )
    thumbs = _and("feedback_type IN ('thumbs_up', 'thumbs_down')", project_filter)
    rated = f"SELECT message_id FROM {FEEDBACK_TABLE} WHERE {thumbs}"
    feedback = (
        "SELECT concat('feedback:', fb.feedback_id) AS score_id, nullIf(m.call_trace_id, '') AS trace_id, "
        "nullIf(m.call_span_id, '') AS span_id, toNullable(fb.message_id) AS message_id, "
        "'user_feedback' AS name, 'boolean' AS data_type, "
        "toNullable(toFloat64(fb.feedback_type = 'thumbs_up')) AS value, "
        f"{_NULL_STRING} AS label, 'feedback' AS source, {_NULL_STRING} AS evaluator, "
        f"{_NULL_STRING} AS evaluator_version, fb.feedback_text AS comment, {_NULL_STRING} AS reasoning, "
        f"{_NULL_FLOAT} AS judge_cost_usd, fb.timestamp AS timestamp, fb.metadata AS metadata, "
        "fb.project AS project "
        f"FROM (SELECT * FROM {FEEDBACK_TABLE} WHERE {thumbs}) AS fb "
        f"ANY LEFT JOIN ({_call_of_message(rated, project_filter)}) AS m "
        "ON m.project = fb.project AND m.message_id = fb.message_id"
    )
    return f"{stored} UNION ALL {feedback}"


# Conditions of a query on a view that can be applied to the rows the view reads first (18.16 does not
# push a query's WHERE into a view's subqueries): view -> body keyword -> the view columns such a
# condition may name, which there have the same values as in the table read.
_SPAN_VIEW_COLUMNS = frozenset({"timestamp", "latency_ms", "user_id", "session_id", "feature", "environment"})
_SPAN_VIEW_COLUMNS |= {"trace_id", "span_id", "parent_span_id", "project"}
PUSHABLE: dict[str, dict[str, frozenset[str]]] = {
    "spans": {"inner": frozenset(c for c, _, _ in SPAN_COLUMNS)},
    "llm_logs": {"inner": frozenset(c for c, _, _ in SPAN_COLUMNS)},
    "tool_logs": {"inner": _SPAN_VIEW_COLUMNS | {"tool_name"}},
    "retrieval_logs": {"inner": _SPAN_VIEW_COLUMNS},
    # The calls are joined on message_id: a condition on it narrows both sides.
    "feedback_events": {
        "inner": frozenset({"message_id", "feedback_type", "feedback_text", "feedback_id", "timestamp"}),
        "calls": frozenset({"message_id"}),
    },
}

VIEW_BODIES = {
    "spans": spans_body,
    "llm_logs": llm_logs_body,
    "tool_logs": tool_logs_body,
    "retrieval_logs": retrieval_logs_body,
    "feedback_events": feedback_events_body,
    "scores": scores_body,
}


class SchemaOutdated(RuntimeError):
    """The database was made by an older llmlens (or, on a cluster, not yet made): `llmlens migrate --store URL`."""


class WrongPlacement(ValueError):
    """The database was made on one server and is opened as a cluster's, or the other way round."""


_DATA_ENGINE = "ReplacingMergeTree(ingested_at)"
_ROLLUP_ENGINE = "SummingMergeTree()"
# Each record's shard on a cluster: a re-sent record goes where its first copy is (rollups: anywhere).
SHARDING_KEYS = {
    SPANS_TABLE: "cityHash64(project, span_id)",
    FEEDBACK_TABLE: "cityHash64(project, feedback_id)",
    SCORES_TABLE: "cityHash64(project, score_id)",
}
_SINGLE = Layout("")


def _has_table(client: GuardedClient, name: str) -> bool:
    rows = client.execute(
        "SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = %(name)s", {"name": name}
    )
    return bool(rows[0][0])


def _meta_ddl(layout: Layout) -> str:
    ddl = (
        f"CREATE TABLE IF NOT EXISTS {META_TABLE} (key String, value String, updated DateTime DEFAULT now()) "
        "ENGINE = ReplacingMergeTree(updated) ORDER BY key"
    )
    return layout.every_node_ddl(ddl, META_TABLE, "ReplacingMergeTree(updated)")


def _read_meta(client: GuardedClient) -> dict[str, str]:
    # `updated` has whole seconds: of two schema versions written in the same second, the higher one (a
    # migration only moves it forward; a tie read as the older one refused a store just migrated).
    newest = "(updated, if(key = 'schema_version', toUInt64OrZero(value), toUInt64(0)))"
    rows = client.execute(f"SELECT key, argMax(value, {newest}) FROM {META_TABLE} GROUP BY key")
    return {str(k): str(v) for k, v in rows}


def _check_placement(found: str | None, has_spans: bool, layout: Layout, store_url: str) -> None:
    if layout.cluster is None and found:
        raise WrongPlacement(
            f"this ClickHouse database holds llmlens' tables spread over the cluster {found!r}: "
            f"add ?cluster={found} to the store URL"
        )
    if layout.cluster is not None and has_spans and found != layout.cluster:
        where = f"the cluster {found!r}" if found else "one server"
        raise WrongPlacement(
            f"this ClickHouse database holds llmlens' tables made for {where}, not for the cluster "
            f"{layout.cluster!r}: name another database in {store_url or 'the store URL'} for the cluster"
        )


def migrate(
    client: GuardedClient,
    features: ServerFeatures,
    retention_days: int = 0,
    *,
    upgrade: bool = False,
    store_url: str = "",
    layout: Layout = _SINGLE,
) -> int:
    """Create what is missing and (re)create the views. Returns the schema version found before.

    On one server, a new database is created at once; one made by an older llmlens is changed only with
    `upgrade` (what `llmlens migrate --store URL` passes): rolling up its spans can take minutes, and servers
    still ingesting while the rollups are filled would be counted twice or not at all. On a cluster the
    schema is made only with `upgrade`: its statements run on every node (ON CLUSTER), which waits for
    every node; a server starting while a node is down must not wait for it."""
    if not layout.clustered:
        client.execute(_meta_ddl(layout))
    meta = _read_meta(client) if not layout.clustered or _has_table(client, META_TABLE) else {}
    current = int(meta.get("schema_version") or 0)
    if current > SCHEMA_VERSION:
        raise RuntimeError(
            f"this ClickHouse database has llmlens schema version {current}, newer than this llmlens "
            f"({SCHEMA_VERSION}); upgrade llmlens"
        )
    has_spans = _has_table(client, SPANS_TABLE)
    _check_placement(meta.get("cluster"), has_spans, layout, store_url)
    command = f"`llmlens migrate --store {store_url or 'clickhouse://...'}`"
    if has_spans and current < SCHEMA_VERSION and not upgrade:
        raise SchemaOutdated(
            f"this ClickHouse database holds llmlens schema version {current}, older than this llmlens "
            f"({SCHEMA_VERSION}): stop the llmlens servers that use it, run {command}, then start them again"
        )
    if layout.clustered and not upgrade:
        if current == SCHEMA_VERSION:
            return current  # made by `llmlens migrate`: a server changes nothing on a cluster
        raise SchemaOutdated(
            f"this ClickHouse database has no llmlens tables on the cluster {layout.cluster!r} yet: "
            f"run {command} once (with every node up), then start the servers"
        )
    if layout.clustered:
        client.execute(f"CREATE DATABASE IF NOT EXISTS `{layout.database}`{layout.on_cluster}")
        client.execute(_meta_ddl(layout))
    _create_tables(client, features, retention_days, layout)
    for version in range(current + 1, SCHEMA_VERSION + 1):
        for name in _RETIRED_IN.get(version, ()):
            client.execute(layout.drop(name))
    create_rollups(client, features, backfill=has_spans and current < ROLLUPS_SINCE, layout=layout)
    if layout.clustered:
        _create_id_map_on_cluster(client, layout)
    else:
        _id_index.create_id_map(client, SPANS_TABLE, FEEDBACK_TABLE, backfill=has_spans and current < ID_MAP_SINCE)
    for version in range(current + 1, SCHEMA_VERSION + 1):
        for name in _VIEWS_CHANGED_IN.get(version, ()):
            client.execute(layout.drop(name))  # 18.16 has no CREATE OR REPLACE VIEW
    client.execute(layout.view_ddl(ROLLUP_VIEW, rollup_view_body()))
    for name, body in VIEW_BODIES.items():
        # Several llmlens servers may start at once: CREATE ... IF NOT EXISTS keeps that race harmless.
        client.execute(layout.view_ddl(name, body()))
    if retention_days > 0 and features.ttl:
        days = int(retention_days)
        for table in (SPANS_TABLE, FEEDBACK_TABLE, SCORES_TABLE):
            client.execute(f"ALTER TABLE {layout.target(table)} MODIFY TTL toDateTime(timestamp) + INTERVAL {days} DAY")
        # A bucket goes once every span in it is past the limit (ClickHouse applies TTLs on merges).
        for rollup in _rollups.rollup_tables(features):
            grain = rollup.grain.upper()
            limit = f"bucket + INTERVAL 1 {grain} + INTERVAL {days} DAY"
            client.execute(f"ALTER TABLE {layout.target(rollup.table)} MODIFY TTL {limit}")
        ttl = _id_index.ttl_statement(days)
        client.execute(ttl.replace(f" {_id_index.TABLE} ", f" {layout.target(_id_index.TABLE)} ", 1))
    if current < SCHEMA_VERSION or (layout.clustered and meta.get("cluster") != layout.cluster):
        rows: list[tuple[str, str]] = [("schema_version", str(SCHEMA_VERSION))]
        settings: dict[str, int] = {}
        if layout.cluster:
            rows.append(("cluster", layout.cluster))
            # Every node reads the version locally: the insert returns once every replica has it.
            settings["insert_quorum"] = _node_count(client, layout)
        client.execute(f"INSERT INTO {META_TABLE} (key, value) VALUES", rows, settings=settings)
    return current


def _node_count(client: GuardedClient, layout: Layout) -> int:
    rows = client.execute("SELECT count() FROM system.clusters WHERE cluster = %(c)s", {"c": layout.cluster})
    return int(rows[0][0])


def _create_tables(client: GuardedClient, features: ServerFeatures, retention_days: int, layout: Layout) -> None:
    for table, ddl in (
        (SPANS_TABLE, spans_table_ddl(features, retention_days)),
        (FEEDBACK_TABLE, feedback_table_ddl(features, retention_days)),
        (SCORES_TABLE, scores_table_ddl(features, retention_days)),
    ):
        for statement in layout.sharded_ddl(ddl, table, _DATA_ENGINE, SHARDING_KEYS[table]):
            client.execute(statement)
    client.execute(layout.every_node_ddl(score_names_table_ddl(), SCORE_NAMES_TABLE, "MergeTree()"))
    if layout.clustered:
        from . import _alerts

        _alerts.create_alert_tables(client, layout)


def create_rollups(
    client: GuardedClient, features: ServerFeatures, *, backfill: bool, layout: Layout = _SINGLE
) -> None:
    """The rollup tables and their materialized views; with `backfill`, filled from the stored spans first
    (a table left half-filled by an interrupted run is dropped and filled again)."""
    for table in _rollups.rollup_tables(features):
        if backfill:
            client.execute(layout.drop(table.view))
            client.execute(layout.drop(layout.local(table.table)))
            if layout.clustered:
                client.execute(layout.drop(table.table))
        for statement in layout.sharded_ddl(_rollups.table_ddl(table), table.table, _ROLLUP_ENGINE, "rand()"):
            client.execute(statement)
        if backfill:
            client.execute(_rollups.signed_insert(table, SPANS_TABLE, "", 1))
        client.execute(layout.materialized_view_ddl(table.view, table.table, _rollups.delta_select(table, SPANS_TABLE)))


def _create_id_map_on_cluster(client: GuardedClient, layout: Layout) -> None:
    """The id map (`_id_index.py`) sharded like the rollups, each node's views reading its local rows."""
    for statement in layout.sharded_ddl(_id_index.table_ddl(), _id_index.TABLE, "ReplacingMergeTree()", "rand()"):
        client.execute(statement)
    for view, select in _id_index._views(SPANS_TABLE, FEEDBACK_TABLE).items():
        client.execute(layout.materialized_view_ddl(view, _id_index.TABLE, select))
