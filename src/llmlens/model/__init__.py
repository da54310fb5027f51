"""The pure data model at the centre of llmlens: stdlib only, no I/O."""

from ._errors import classify_error, error_type_from_status
from ._ids import (
    is_span_id,
    is_trace_id,
    new_span_id,
    new_trace_id,
    normalize_span_id,
    normalize_trace_id,
    span_id_from_text,
    trace_id_from_text,
)
from ._kinds import EXPLICIT_FEEDBACK, CostSource, ErrorType, FeedbackType, SpanKind, Status
from ._limits import DEPTH_MARKER, MAX_JSON_DEPTH, NUMBER_LIMITS, bounded_json, drop_out_of_range_numbers
from ._score import INFERRED_SCORES, USER_FEEDBACK_SCORE, Score, ScoreDataType, ScoreSource
from ._span import DEFAULT_PROJECT, FEEDBACK_FIELDS, SPAN_FIELDS, Feedback, JsonValue, Span
from ._time import now_us, parse_timestamp_us, us_to_datetime, us_to_iso

__all__ = [
    "DEFAULT_PROJECT",
    "DEPTH_MARKER",
    "EXPLICIT_FEEDBACK",
    "FEEDBACK_FIELDS",
    "INFERRED_SCORES",
    "MAX_JSON_DEPTH",
    "NUMBER_LIMITS",
    "SPAN_FIELDS",
    "USER_FEEDBACK_SCORE",
    "CostSource",
    "ErrorType",
    "Feedback",
    "FeedbackType",
    "JsonValue",
    "Score",
    "ScoreDataType",
    "ScoreSource",
    "Span",
    "SpanKind",
    "Status",
    "bounded_json",
    "classify_error",
    "drop_out_of_range_numbers",
    "error_type_from_status",
    "is_span_id",
    "is_trace_id",
    "new_span_id",
    "new_trace_id",
    "normalize_span_id",
    "normalize_trace_id",
    "now_us",
    "parse_timestamp_us",
    "span_id_from_text",
    "trace_id_from_text",
    "us_to_datetime",
    "us_to_iso",
]
