"""The stored columns of spans, feedback and scores, with a logical type each; shared by every backend."""

from __future__ import annotations

from typing import Literal

ColumnType = Literal["str", "int", "float", "bool", "json", "timestamp"]

# (column name, logical type, Span attribute). `timestamp` is the span's start (`Span.start_us`).
SPAN_COLUMNS: tuple[tuple[str, ColumnType, str], ...] = (
    ("project", "str", "project"),
    ("trace_id", "str", "trace_id"),
    ("span_id", "str", "span_id"),
    ("parent_span_id", "str", "parent_span_id"),
    ("kind", "str", "kind"),
    ("name", "str", "name"),
    ("timestamp", "timestamp", "start_us"),
    ("latency_ms", "float", "latency_ms"),
    ("status", "str", "status"),
    ("error_type", "str", "error_type"),
    ("error_message", "str", "error_message"),
    ("service", "str", "service"),
    ("environment", "str", "environment"),
    ("user_id", "str", "user_id"),
    ("session_id", "str", "session_id"),
    ("feature", "str", "feature"),
    ("message_id", "str", "message_id"),
    ("provider", "str", "provider"),
    ("model", "str", "model"),
    ("response_model", "str", "response_model"),
    ("prompt_tokens", "int", "prompt_tokens"),
    ("completion_tokens", "int", "completion_tokens"),
    ("total_tokens", "int", "total_tokens"),
    ("cached_tokens", "int", "cached_tokens"),
    ("cache_write_tokens", "int", "cache_write_tokens"),
    ("reasoning_tokens", "int", "reasoning_tokens"),
    ("cost_usd", "float", "cost_usd"),
    ("computed_cost_usd", "float", "computed_cost_usd"),
    ("cost_source", "str", "cost_source"),
    ("price_version", "str", "price_version"),
    ("ttft_ms", "float", "ttft_ms"),
    ("tokens_per_second", "float", "tokens_per_second"),
    ("streamed", "bool", "streamed"),
    ("temperature", "float", "temperature"),
    ("max_tokens", "int", "max_tokens"),
    ("finish_reason", "str", "finish_reason"),
    ("request_params", "json", "request_params"),
    ("tools", "json", "tools"),
    ("tool_calls", "json", "tool_calls"),
    ("template_id", "str", "template_id"),
    ("template_version", "str", "template_version"),
    ("variables", "json", "variables"),
    ("prompt", "str", "prompt"),
    ("response", "str", "response"),
    ("input_messages", "json", "input_messages"),
    ("output_messages", "json", "output_messages"),
    ("tool_name", "str", "tool_name"),
    ("tool_args", "json", "tool_args"),
    ("tool_result", "json", "tool_result"),
    ("tool_success", "bool", "tool_success"),
    ("retrieval_query", "str", "retrieval_query"),
    ("documents", "json", "documents"),
    ("http_method", "str", "http_method"),
    ("http_route", "str", "http_route"),
    ("http_status", "int", "http_status"),
    ("http_request_bytes", "int", "http_request_bytes"),
    ("http_response_bytes", "int", "http_response_bytes"),
    ("cache_hit", "bool", "cache_hit"),
    ("cost_saved_usd", "float", "cost_saved_usd"),
    ("blocked", "bool", "blocked"),
    ("replay_of", "str", "replay_of"),
    ("metadata", "json", "metadata"),
    ("attributes", "json", "attributes"),
)

FEEDBACK_COLUMNS: tuple[tuple[str, ColumnType, str], ...] = (
    ("project", "str", "project"),
    ("feedback_id", "str", "feedback_id"),
    ("message_id", "str", "message_id"),
    ("feedback_type", "str", "feedback_type"),
    ("feedback_text", "str", "feedback_text"),
    ("user_id", "str", "user_id"),
    ("session_id", "str", "session_id"),
    ("trace_id", "str", "trace_id"),
    ("span_id", "str", "span_id"),
    ("timestamp", "timestamp", "timestamp_us"),
    ("metadata", "json", "metadata"),
)

# (column name, logical type, Score attribute). Trace and span are stored as given; the `scores` view
# resolves them from the rated call when only a message id was sent.
SCORE_COLUMNS: tuple[tuple[str, ColumnType, str], ...] = (
    ("project", "str", "project"),
    ("score_id", "str", "score_id"),
    ("name", "str", "name"),
    ("data_type", "str", "data_type"),
    ("value", "float", "value"),
    ("label", "str", "label"),
    ("source", "str", "source"),
    ("message_id", "str", "message_id"),
    ("trace_id", "str", "trace_id"),
    ("span_id", "str", "span_id"),
    ("evaluator", "str", "evaluator"),
    ("evaluator_version", "str", "evaluator_version"),
    ("comment", "str", "comment"),
    ("reasoning", "str", "reasoning"),
    ("judge_cost_usd", "float", "judge_cost_usd"),
    ("timestamp", "timestamp", "timestamp_us"),
    ("metadata", "json", "metadata"),
)

# Relations that user SQL (the console, `llmlens sql`) may read. Each is scoped to one project.
QUERYABLE_VIEWS = ("llm_logs", "tool_logs", "retrieval_logs", "feedback_events", "spans", "scores")
