"""Rollups of what the main rollup cannot answer: prompt templates, tools, each user's calls by model,
feedback and stored scores on the calls they rate; as SQL over the rows they summarise.

Each is kept per project and hour (and day) like the main rollup. A measure merges with SUM, MIN or MAX;
a sketch keeps (metric, bucket index, count) rows merged with SUM, as `_sketch.py` describes. Answers for
whole hours and days come from the rollups, the ragged edges of a window from the rows themselves with
the same expressions, so merged sums and counts equal raw ones and quantiles are within the sketch's 1 %.

The feedback rollup summarises `feedback_calls`: one row per feedback event and LLM call of the message
it rates (kept by the store as either of them arrives), so the Feedback page counts what a join of
feedback and calls counts, whichever came first. The score rollups summarise `score_calls` likewise: stored
scores beside the calls they name.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._sketch import index_sql

GRAINS = ("hour", "day")
SPEED_SQL = "CASE WHEN latency_ms < 1000 THEN 'fast' WHEN latency_ms < 3000 THEN 'medium' ELSE 'slow' END"
TIER_SQL = "json_extract_string(metadata, '$.tier')"


@dataclass(frozen=True, slots=True)
class Measure:
    name: str
    sql_type: str
    expr: str  # aggregate over the summarised rows
    merge: str  # how stored rows combine: SUM, MIN or MAX


@dataclass(frozen=True, slots=True)
class PageRollup:
    """`store.<name>_hour` and `store.<name>_day`: per project, bucket and keys, the measures of `source`
    rows matching `where` (time column `time`)."""

    name: str
    source: str
    time: str
    where: str
    keys: tuple[tuple[str, str], ...]  # (column, SQL over a source row)
    measures: tuple[Measure, ...] = ()
    # A sketch: (metric, id, value SQL) rows kept as (metric, idx, n) instead of measures.
    metrics: tuple[tuple[str, int, str], ...] = ()

    def table(self, grain: str) -> str:
        return f"store.{self.name}_{grain}"

    @property
    def is_sketch(self) -> bool:
        return bool(self.metrics)

    def metric_id(self, metric: str) -> int:
        return next(i for name, i, _ in self.metrics if name == metric)

    def metric_value(self, metric: str) -> str:
        return next(sql for name, _, sql in self.metrics if name == metric)

    def columns(self) -> list[tuple[str, str]]:
        """(column, SQL type) after project and bucket."""
        keys = [(k, "VARCHAR") for k, _ in self.keys]
        if self.is_sketch:
            return [*keys, ("metric", "TINYINT"), ("idx", "INTEGER"), ("n", "BIGINT")]
        return [*keys, *((m.name, m.sql_type) for m in self.measures)]

    def merges(self) -> list[str]:
        """Per stored value column, its merge aggregate."""
        if self.is_sketch:
            return ["SUM(n)"]
        return [f'{m.merge}("{m.name}")' for m in self.measures]

    def value_columns(self) -> list[str]:
        return ["n"] if self.is_sketch else [m.name for m in self.measures]

    def key_columns(self) -> list[str]:
        keys = [k for k, _ in self.keys]
        return [*keys, "metric", "idx"] if self.is_sketch else keys

    def aggregate_sql(self, relation: str, bucket: str) -> str:
        """SELECT project, bucket, keys..., values... of `relation` (source rows) grouped by `bucket` SQL."""
        keys = ", ".join(f'{sql} AS "{k}"' for k, sql in self.keys)
        if self.is_sketch:
            ids = ", ".join(str(i) for _, i, _ in self.metrics)
            indexes = ", ".join(index_sql(f"({sql})::DOUBLE") for _, _, sql in self.metrics)
            names = ", ".join(f'"{k}"' for k, _ in self.keys)
            return (
                f"SELECT project, bucket, {names}, metric, idx, COUNT(*) AS n FROM ("
                f"SELECT project, {bucket} AS bucket, {keys}, UNNEST([{ids}]) AS metric, "
                f"UNNEST([{indexes}]) AS idx FROM {relation} WHERE {self.where}) WHERE idx IS NOT NULL GROUP BY ALL"
            )
        measures = ", ".join(f'{m.expr} AS "{m.name}"' for m in self.measures)
        return f"SELECT project, {bucket} AS bucket, {keys}, {measures} FROM {relation} WHERE {self.where} GROUP BY ALL"


_SPANS = "store.spans"
_FAILED_TOOL = "tool_success = false OR status = 'error'"

TEMPLATES = PageRollup(
    "template_rollup",
    _SPANS,
    "timestamp",
    "kind = 'llm'",
    keys=(("template_id", "template_id"), ("template_version", "template_version")),
    measures=(
        Measure("calls", "BIGINT", "COUNT(*)", "SUM"),
        Measure("errors", "BIGINT", "COUNT(*) FILTER (WHERE status = 'error')", "SUM"),
        Measure("cost_usd", "DOUBLE", "SUM(cost_usd)", "SUM"),
        Measure("priced", "BIGINT", "COUNT(cost_usd)", "SUM"),
        Measure("prompt_tokens", "BIGINT", "SUM(prompt_tokens)", "SUM"),
        Measure("prompt_tokens_n", "BIGINT", "COUNT(prompt_tokens)", "SUM"),
        Measure("completion_tokens", "BIGINT", "SUM(completion_tokens)", "SUM"),
        Measure("completion_tokens_n", "BIGINT", "COUNT(completion_tokens)", "SUM"),
        Measure("positive_prompt_tokens", "BIGINT", "SUM(prompt_tokens) FILTER (WHERE prompt_tokens > 0)", "SUM"),
        Measure("positive_prompts", "BIGINT", "COUNT(*) FILTER (WHERE prompt_tokens > 0)", "SUM"),
        Measure("first_at", "TIMESTAMP", "MIN(timestamp)", "MIN"),
        Measure("last_at", "TIMESTAMP", "MAX(timestamp)", "MAX"),
        Measure("max_prompt_tokens", "BIGINT", "MAX(prompt_tokens)", "MAX"),
        Measure("max_cost_usd", "DOUBLE", "MAX(cost_usd)", "MAX"),
    ),
)
# Quantiles of one template version: latency of its calls, and prompt tokens of those that had a prompt.
TEMPLATE_SKETCH = PageRollup(
    "template_sketch",
    _SPANS,
    "timestamp",
    "kind = 'llm' AND template_id IS NOT NULL",
    keys=(("template_id", "template_id"), ("template_version", "template_version")),
    metrics=(
        ("latency_ms", 0, "latency_ms"),
        ("prompt_tokens", 1, "CASE WHEN prompt_tokens > 0 THEN prompt_tokens END"),
    ),
)
TOOL_NAME_SQL = "COALESCE(tool_name, name, '(unnamed)')"
TOOLS = PageRollup(
    "tool_rollup",
    _SPANS,
    "timestamp",
    "kind = 'tool'",
    keys=(("tool_name", TOOL_NAME_SQL),),
    measures=(
        Measure("calls", "BIGINT", "COUNT(*)", "SUM"),
        Measure("failures", "BIGINT", f"COUNT(*) FILTER (WHERE {_FAILED_TOOL})", "SUM"),
        Measure("latency_ms", "DOUBLE", "SUM(latency_ms)", "SUM"),
        Measure("latency_n", "BIGINT", "COUNT(latency_ms)", "SUM"),
    ),
)
TOOL_SKETCH = PageRollup(
    "tool_sketch",
    _SPANS,
    "timestamp",
    "kind = 'tool'",
    keys=(("tool_name", TOOL_NAME_SQL),),
    metrics=(("latency_ms", 0, "latency_ms"),),
)
# Each user's LLM calls by model (the main rollup has no user key; `user_day` no model): calls per budget
# tier on the score columns, and the slowest call's latency per hour on the Latency page.
USER_MODELS = PageRollup(
    "user_model_rollup",
    _SPANS,
    "timestamp",
    "kind = 'llm'",
    keys=(("user_id", "user_id"), ("model", "model")),
    measures=(
        Measure("calls", "BIGINT", "COUNT(*)", "SUM"),
        Measure("tier", "VARCHAR", f"MAX({TIER_SQL})", "MAX"),
        Measure("max_latency_ms", "DOUBLE", "MAX(latency_ms)", "MAX"),
    ),
)
# What a rated call gives the rows that join feedback or scores to it.
_RATED_CALL_COLUMNS: tuple[tuple[str, str], ...] = (
    ("called_at", "TIMESTAMP NOT NULL"),
    ("model", "VARCHAR"),
    ("feature", "VARCHAR"),
    ("template_id", "VARCHAR"),
    ("template_version", "VARCHAR"),
    ("user_id", "VARCHAR"),
    ("latency_ms", "DOUBLE"),
    ("tier", "VARCHAR"),
)
FEEDBACK_CALLS = "store.feedback_calls"
# Its columns: the feedback event's, then those of the call it rates.
FEEDBACK_CALL_COLUMNS: tuple[tuple[str, str], ...] = (
    ("project", "VARCHAR NOT NULL"),
    ("feedback_id", "VARCHAR NOT NULL"),
    ("message_id", "VARCHAR NOT NULL"),
    ("feedback_type", "VARCHAR"),
    ("feedback_text", "VARCHAR"),
    ("rated_at", "TIMESTAMP"),
    ("span_id", "VARCHAR NOT NULL"),
    ("trace_id", "VARCHAR"),
    *_RATED_CALL_COLUMNS,
    ("first_call", "BOOLEAN"),  # the call is the message's LLM span with the smallest span id
)
FEEDBACK = PageRollup(
    "feedback_rollup",
    FEEDBACK_CALLS,
    "called_at",
    "TRUE",
    keys=(
        ("feature", "feature"),
        ("template_id", "template_id"),
        ("template_version", "template_version"),
        ("model", "model"),
        ("speed", SPEED_SQL),
        ("feedback_type", "feedback_type"),
        ("first_call", "CASE WHEN first_call THEN 'yes' ELSE 'no' END"),
    ),
    measures=(Measure("n", "BIGINT", "COUNT(*)", "SUM"),),
)

# Thumbs per user of the rated call (the score columns' budget tiers): on the call the `scores` view names.
FEEDBACK_USERS = PageRollup(
    "feedback_user_rollup",
    FEEDBACK_CALLS,
    "called_at",
    "first_call AND feedback_type IN ('thumbs_up', 'thumbs_down')",
    keys=(("user_id", "user_id"), ("model", "model")),
    measures=(
        Measure("n", "BIGINT", "COUNT(*)", "SUM"),
        Measure("ups", "BIGINT", "COUNT(*) FILTER (WHERE feedback_type = 'thumbs_up')", "SUM"),
        Measure("tier", "VARCHAR", "MAX(tier)", "MAX"),
    ),
)

# Stored scores beside the LLM call their span id names: one row per such score, with what the score
# columns group by (the call's time, keys, latency, user and budget tier). Scores sent with only a message
# id are not kept here: their call (the message's first) is resolved when read. Kept by hour of the call
# (`store/duckdb/_score_calls.py`).
SCORE_CALLS = "store.score_calls"
SCORE_CALL_COLUMNS: tuple[tuple[str, str], ...] = (
    ("project", "VARCHAR NOT NULL"),
    ("score_id", "VARCHAR NOT NULL"),
    ("name", "VARCHAR"),
    ("data_type", "VARCHAR"),
    ("value", "DOUBLE"),
    ("span_id", "VARCHAR NOT NULL"),
    *_RATED_CALL_COLUMNS,
)
# The span columns those rows take from their call: a change to one of them remakes the call's hour.
SCORED_CALL_COLUMNS = (
    "kind", "span_id", "timestamp", "feature", "model", "template_id", "template_version", "latency_ms", "user_id",
    "metadata",
)  # fmt: skip
_SCORE_SUMS = (
    Measure("n", "BIGINT", "COUNT(*)", "SUM"),
    Measure("total", "DOUBLE", "SUM(value)", "SUM"),
    Measure("squares", "DOUBLE", "SUM(value * value)", "SUM"),
)
SCORES = PageRollup(
    "score_rollup",
    SCORE_CALLS,
    "called_at",
    "TRUE",
    keys=(
        ("name", "name"),
        ("data_type", "data_type"),
        ("feature", "feature"),
        ("model", "model"),
        ("template_id", "template_id"),
        ("template_version", "template_version"),
        ("speed", SPEED_SQL),
    ),
    measures=_SCORE_SUMS,
)
# Per user (and model) of the scored call: the score columns' budget tiers.
SCORE_USERS = PageRollup(
    "score_user_rollup",
    SCORE_CALLS,
    "called_at",
    "TRUE",
    keys=(("name", "name"), ("user_id", "user_id"), ("model", "model")),
    measures=(*_SCORE_SUMS, Measure("tier", "VARCHAR", "MAX(tier)", "MAX")),
)

# The slowest LLM calls of each hour and model, with what the Latency page lists of them: the slowest
# calls of any window are among them (a window's top N are each in the top N of their own hour and model).
SLOW_CALLS = "store.slow_call_hour"
SLOW_CALLS_KEPT = 20
SLOW_CALL_COLUMNS: tuple[tuple[str, str], ...] = (
    ("trace_id", "VARCHAR"),
    ("span_id", "VARCHAR"),
    ("timestamp", "TIMESTAMP"),
    ("model", "VARCHAR"),
    ("feature", "VARCHAR"),
    ("user_id", "VARCHAR"),
    ("latency_ms", "DOUBLE"),
    ("ttft_ms", "DOUBLE"),
    ("prompt_tokens", "BIGINT"),
    ("completion_tokens", "BIGINT"),
    ("status", "VARCHAR"),
)

SPAN_ROLLUPS = (TEMPLATES, TEMPLATE_SKETCH, TOOLS, TOOL_SKETCH, USER_MODELS)
FEEDBACK_ROLLUPS = (FEEDBACK, FEEDBACK_USERS)
SCORE_ROLLUPS = (SCORES, SCORE_USERS)
PAGE_ROLLUPS = (*SPAN_ROLLUPS, *FEEDBACK_ROLLUPS, *SCORE_ROLLUPS)
