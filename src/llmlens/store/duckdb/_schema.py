"""DuckDB schema: versioned migrations run at start-up, base tables and the article's views."""

from __future__ import annotations

from collections.abc import Callable

import duckdb

from .._columns import FEEDBACK_COLUMNS, SCORE_COLUMNS, SPAN_COLUMNS, ColumnType
from ._rollups import create_rollup_tables, rebuild_rollups
from ._write_indexes import build_indexes, build_score_rollups

_SQL_TYPES: dict[ColumnType, str] = {
    "str": "VARCHAR",
    "int": "BIGINT",
    "float": "DOUBLE",
    "bool": "BOOLEAN",
    "json": "JSON",
    "timestamp": "TIMESTAMP",
}

SCHEMA_VERSION = 5

# A view reads only the project named by the connection variable, when one is set.
_PROJECT_FILTER = "(getvariable('llmlens_project') IS NULL OR {alias}project = getvariable('llmlens_project'))"


def _create_table(name: str, columns: tuple[tuple[str, ColumnType, str], ...]) -> str:
    cols = ",\n  ".join(
        f'"{col}" {_SQL_TYPES[kind]}' + (" NOT NULL" if col in ("project", "timestamp") else "")
        for col, kind, _ in columns
    )
    return f"CREATE TABLE IF NOT EXISTS store.{name} (\n  {cols},\n  ingested_at TIMESTAMP\n)"


def _migration_1(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS store")
    con.execute(_create_table("spans", SPAN_COLUMNS))
    con.execute(_create_table("feedback", FEEDBACK_COLUMNS))


def _migration_2(con: duckdb.DuckDBPyConnection) -> None:
    """Hourly and daily rollups with quantile sketches, filled from the spans already stored."""
    create_rollup_tables(con)
    rebuild_rollups(con)


def _migration_3(con: duckdb.DuckDBPyConnection) -> None:
    """Scores (quality/), and each project's score names with the data type their first score gave them."""
    con.execute(_create_table("scores", SCORE_COLUMNS))
    con.execute(
        "CREATE TABLE IF NOT EXISTS store.score_names (project VARCHAR NOT NULL, name VARCHAR NOT NULL, "
        "data_type VARCHAR NOT NULL, created_at TIMESTAMP, PRIMARY KEY (project, name))"
    )


def _migration_4(con: duckdb.DuckDBPyConnection) -> None:
    """Id maps (a lookup by trace, session, message or span id reads a few hours, not the table), feedback
    joined to its calls, and the page rollups (`_write_indexes.py`), filled from what is stored."""
    build_indexes(con)


def _migration_5(con: duckdb.DuckDBPyConnection) -> None:
    """Stored scores by the calls they name (the score columns read them instead of joining every call of
    the window to the scores), filled from what is stored."""
    build_score_rollups(con)


MIGRATIONS: tuple[Callable[[duckdb.DuckDBPyConnection], None], ...] = (
    _migration_1,
    _migration_2,
    _migration_3,
    _migration_4,
    _migration_5,
)

_SPANS_VIEW = f"""
CREATE OR REPLACE VIEW main.spans AS
SELECT * EXCLUDE (ingested_at) FROM store.spans WHERE {_PROJECT_FILTER.format(alias="")}
"""

# The join adds one column to each call (at most one row per project and message): a query that does not
# read `user_satisfaction` lets DuckDB drop it, but not once the project filter names the join key
# itself (1.7 s instead of 70 ms at 10M calls), hence the project test written as `list_contains`.
_LLM_LOGS_PROJECT = (
    "(getvariable('llmlens_project') IS NULL OR list_contains([getvariable('llmlens_project')], s.project))"
)
_LLM_LOGS = f"""
CREATE OR REPLACE VIEW main.llm_logs AS
SELECT
  s.timestamp, s.model, s.prompt, s.response, s.prompt_tokens, s.completion_tokens, s.total_tokens,
  s.latency_ms, s.cost_usd, s.metadata, s.user_id, s.session_id, s.feature, s.template_id,
  s.template_version, s.variables, s.message_id, f.user_satisfaction,
  s.trace_id, s.span_id, s.parent_span_id, s.provider, s.response_model, s.streamed, s.ttft_ms,
  s.tokens_per_second, s.status, s.error_type, s.error_message, s.cached_tokens, s.cache_write_tokens,
  s.reasoning_tokens, s.tool_calls, s.finish_reason, s.temperature, s.max_tokens, s.environment,
  s.service, s.computed_cost_usd, s.cost_source, s.price_version, s.input_messages, s.output_messages,
  s.cache_hit, s.cost_saved_usd, s.blocked, s.replay_of, s.project
FROM store.spans s
LEFT JOIN (
  SELECT project, message_id,
         AVG(CASE WHEN feedback_type = 'thumbs_up' THEN 1.0 ELSE 0.0 END) AS user_satisfaction
  FROM store.feedback GROUP BY project, message_id
) f ON f.project = s.project AND f.message_id = s.message_id
WHERE s.kind = 'llm' AND {_LLM_LOGS_PROJECT}
"""

_TOOL_LOGS = f"""
CREATE OR REPLACE VIEW main.tool_logs AS
SELECT
  timestamp, tool_name, tool_args AS args, tool_result AS result, latency_ms, tool_success AS success,
  error_message AS error, user_id, session_id, feature, environment, trace_id, span_id, parent_span_id,
  project
FROM store.spans
WHERE kind = 'tool' AND {_PROJECT_FILTER.format(alias="")}
"""

_RETRIEVAL_LOGS = f"""
CREATE OR REPLACE VIEW main.retrieval_logs AS
SELECT
  timestamp, retrieval_query AS query, documents, json_array_length(documents) AS num_documents,
  latency_ms, user_id, session_id, feature, environment, trace_id, span_id, parent_span_id, project
FROM store.spans
WHERE kind = 'retrieval' AND {_PROJECT_FILTER.format(alias="")}
"""

# `feature` is the feature of the message being rated; user, session, trace and span are the
# feedback's own when it has them, else the rated call's (feedback given outside `context()` knows
# only the message id; trace and span come as a pair from one span of the call). Joined at read
# time, so it holds whichever of the two arrived first.
# Only calls that have feedback are grouped by message id (grouping every call made each read
# aggregate the whole table: 400 ms at 1M calls).
# No `latency_ms` or `model` here, so the article's JOIN with llm_logs stays unambiguous.
_FEEDBACK_EVENTS = f"""
CREATE OR REPLACE VIEW main.feedback_events AS
SELECT
  COALESCE(fb.user_id, m.call_user_id) AS user_id, COALESCE(fb.session_id, m.call_session_id) AS session_id,
  fb.message_id, fb.feedback_type, fb.feedback_text, fb.timestamp, m.feature,
  COALESCE(fb.trace_id, m.call_trace_id) AS trace_id,
  COALESCE(fb.span_id, CASE WHEN fb.trace_id IS NULL THEN m.call_span_id END) AS span_id,
  fb.feedback_id, fb.metadata, fb.project
FROM store.feedback fb
LEFT JOIN (
  SELECT s.project, s.message_id, any_value(s.feature) AS feature, any_value(s.user_id) AS call_user_id,
         any_value(s.session_id) AS call_session_id, min(s.span_id) AS call_span_id,
         arg_min(s.trace_id, s.span_id) AS call_trace_id
  FROM store.spans s
  WHERE s.kind = 'llm' AND (s.project, s.message_id) IN (SELECT project, message_id FROM store.feedback)
  GROUP BY s.project, s.message_id
) m ON m.project = fb.project AND m.message_id = fb.message_id
WHERE {_PROJECT_FILTER.format(alias="fb.")}
"""

# Every judgement in one place: the stored scores, plus thumbs from the feedback table as `user_feedback`
# (1 up, 0 down; source `feedback`; on the rated call, whatever span the feedback was given in), so one
# query relates all of them to latency and cost. A score sent
# with only a message id gets the trace and span of that call, and one sent with a span id the span's
# trace and message id, at read time: it joins a call that arrived after it.
_CALL_OF_MESSAGE = """
  SELECT s.project, s.message_id, min(s.span_id) AS call_span_id, arg_min(s.trace_id, s.span_id) AS call_trace_id
  FROM store.spans s
  WHERE s.kind = 'llm' AND {project} AND (s.project, s.message_id) IN ({wanted})
  GROUP BY s.project, s.message_id
"""
_SCORES = f"""
CREATE OR REPLACE VIEW main.scores AS
SELECT
  sc.score_id, COALESCE(sc.trace_id, sp.trace_id, m.call_trace_id) AS trace_id,
  COALESCE(sc.span_id, m.call_span_id) AS span_id, COALESCE(sc.message_id, sp.message_id) AS message_id,
  sc.name, sc.data_type, sc.value, sc.label, sc.source, sc.evaluator, sc.evaluator_version, sc.comment,
  sc.reasoning, sc.judge_cost_usd, sc.timestamp, sc.metadata, sc.project
FROM store.scores sc
LEFT JOIN (
  SELECT s.project, s.span_id, any_value(s.trace_id) AS trace_id, any_value(s.message_id) AS message_id
  FROM store.spans s
  WHERE {_PROJECT_FILTER.format(alias="s.")}
    AND (s.project, s.span_id) IN (SELECT project, span_id FROM store.scores WHERE span_id IS NOT NULL)
  GROUP BY s.project, s.span_id
) sp ON sp.project = sc.project AND sp.span_id = sc.span_id
LEFT JOIN ({
    _CALL_OF_MESSAGE.format(
        project=_PROJECT_FILTER.format(alias="s."),
        wanted="SELECT project, message_id FROM store.scores WHERE span_id IS NULL AND message_id IS NOT NULL",
    )
}) m ON m.project = sc.project AND m.message_id = sc.message_id AND sc.span_id IS NULL
WHERE {_PROJECT_FILTER.format(alias="sc.")}
UNION ALL
SELECT
  'feedback:' || fb.feedback_id, m.call_trace_id, m.call_span_id,
  fb.message_id, 'user_feedback', 'boolean', CASE WHEN fb.feedback_type = 'thumbs_up' THEN 1.0 ELSE 0.0 END,
  NULL, 'feedback', NULL, NULL, fb.feedback_text, NULL, NULL, fb.timestamp, fb.metadata, fb.project
FROM store.feedback fb
LEFT JOIN ({
    _CALL_OF_MESSAGE.format(
        project=_PROJECT_FILTER.format(alias="s."),
        wanted="SELECT project, message_id FROM store.feedback WHERE feedback_type IN ('thumbs_up', 'thumbs_down')",
    )
}) m ON m.project = fb.project AND m.message_id = fb.message_id
WHERE fb.feedback_type IN ('thumbs_up', 'thumbs_down') AND {_PROJECT_FILTER.format(alias="fb.")}
"""

VIEWS = (_SPANS_VIEW, _LLM_LOGS, _TOOL_LOGS, _RETRIEVAL_LOGS, _FEEDBACK_EVENTS, _SCORES)


def migrate(con: duckdb.DuckDBPyConnection) -> int:
    """Bring the database to SCHEMA_VERSION, one migration per transaction. Returns the old version."""
    con.execute("CREATE TABLE IF NOT EXISTS llmlens_meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
    row = con.execute("SELECT value FROM llmlens_meta WHERE key = 'schema_version'").fetchone()
    current = int(row[0]) if row else 0
    if current > SCHEMA_VERSION:
        raise RuntimeError(
            f"this data directory has schema version {current}, newer than this llmlens ({SCHEMA_VERSION}); "
            "upgrade llmlens"
        )
    for version in range(current + 1, SCHEMA_VERSION + 1):
        con.execute("BEGIN")
        try:
            MIGRATIONS[version - 1](con)
            con.execute("INSERT OR REPLACE INTO llmlens_meta VALUES ('schema_version', ?)", [str(version)])
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
    for view in VIEWS:
        con.execute(view)
    return current
