"""What an export contains: one of the article's views per kind, its columns and their exported types.

The column names are the views' (llm_logs, tool_logs, retrieval_logs, feedback_events), so exported
files load into BigQuery or Snowflake tables with the same names the article's SQL uses. Timestamps
are UTC; JSON values (metadata, messages, documents, ...) are exported as JSON text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from llmlens.store import FEEDBACK_COLUMNS, SPAN_COLUMNS

ExportType = Literal["string", "int64", "float64", "bool", "timestamp", "json"]
FORMATS = ("parquet", "jsonl", "csv")

_LOGICAL: dict[str, ExportType] = {
    "str": "string",
    "int": "int64",
    "float": "float64",
    "bool": "bool",
    "json": "json",
    "timestamp": "timestamp",
}
_SPAN_TYPES: dict[str, ExportType] = {col: _LOGICAL[kind] for col, kind, _ in SPAN_COLUMNS}
_FEEDBACK_TYPES: dict[str, ExportType] = {col: _LOGICAL[kind] for col, kind, _ in FEEDBACK_COLUMNS}
# View columns that are renamed or computed.
_DERIVED: dict[str, ExportType] = {
    "user_satisfaction": "float64",
    "args": "json",
    "result": "json",
    "success": "bool",
    "error": "string",
    "query": "string",
    "num_documents": "int64",
}

_LLM_LOGS = (
    "timestamp model prompt response prompt_tokens completion_tokens total_tokens latency_ms cost_usd metadata "
    "user_id session_id feature template_id template_version variables message_id user_satisfaction trace_id "
    "span_id parent_span_id provider response_model streamed ttft_ms tokens_per_second status error_type "
    "error_message cached_tokens cache_write_tokens reasoning_tokens tool_calls finish_reason temperature "
    "max_tokens environment service computed_cost_usd cost_source price_version input_messages output_messages "
    "cache_hit cost_saved_usd blocked replay_of project"
)
_TOOL_LOGS = (
    "timestamp tool_name args result latency_ms success error user_id session_id feature environment trace_id "
    "span_id parent_span_id project"
)
_RETRIEVAL_LOGS = (
    "timestamp query documents num_documents latency_ms user_id session_id feature environment trace_id span_id "
    "parent_span_id project"
)
_FEEDBACK_EVENTS = (
    "user_id session_id message_id feedback_type feedback_text timestamp feature trace_id span_id feedback_id "
    "metadata project"
)


@dataclass(frozen=True, slots=True)
class ExportKind:
    name: str  # the --kind value
    view: str  # the relation read, also the default file name
    columns: tuple[tuple[str, ExportType], ...]

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c for c, _ in self.columns)


def _columns(names: str, types: dict[str, ExportType]) -> tuple[tuple[str, ExportType], ...]:
    return tuple((name, types.get(name) or _DERIVED[name]) for name in names.split())


EXPORT_KINDS: dict[str, ExportKind] = {
    "llm": ExportKind("llm", "llm_logs", _columns(_LLM_LOGS, _SPAN_TYPES)),
    "tool": ExportKind("tool", "tool_logs", _columns(_TOOL_LOGS, _SPAN_TYPES)),
    "retrieval": ExportKind("retrieval", "retrieval_logs", _columns(_RETRIEVAL_LOGS, _SPAN_TYPES)),
    "feedback": ExportKind(
        "feedback", "feedback_events", _columns(_FEEDBACK_EVENTS, {**_SPAN_TYPES, **_FEEDBACK_TYPES})
    ),
    "spans": ExportKind("spans", "spans", tuple((col, _LOGICAL[kind]) for col, kind, _ in SPAN_COLUMNS)),
}

# What each exported type is in BigQuery and Snowflake (for docs/integrations.md and load jobs).
WAREHOUSE_TYPES: dict[ExportType, tuple[str, str]] = {
    "string": ("STRING", "VARCHAR"),
    "int64": ("INT64", "NUMBER"),
    "float64": ("FLOAT64", "FLOAT"),
    "bool": ("BOOL", "BOOLEAN"),
    "timestamp": ("TIMESTAMP", "TIMESTAMP_TZ"),
    "json": ("STRING (JSON text; PARSE_JSON)", "VARCHAR (PARSE_JSON)"),
}


def export_kind(name: str) -> ExportKind:
    try:
        return EXPORT_KINDS[name]
    except KeyError:
        raise ValueError(f"kind must be one of {', '.join(EXPORT_KINDS)}, got {name!r}") from None


def schema_markdown(kind: ExportKind) -> str:
    lines = ["| column | type | BigQuery | Snowflake |", "| --- | --- | --- | --- |"]
    for name, typ in kind.columns:
        bq, sf = WAREHOUSE_TYPES[typ]
        lines.append(f"| `{name}` | {typ} | {bq} | {sf} |")
    return "\n".join(lines)
