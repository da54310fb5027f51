"""Phoenix's spans dataframe (one row per span, as `get_spans_dataframe()` gives it) -> OTLP span data.

Pure. The dataframe's columns: `name`, `span_kind`, `parent_id`, `start_time`, `end_time`,
`status_code` (`OK`, `ERROR`, `UNSET`), `status_message`, `events`, `context.span_id`,
`context.trace_id`, and one `attributes.<key>` column per OpenInference attribute. Phoenix nests list
attributes (`attributes.llm.input_messages` holds `[{"message.role": ..., "message.content": ...}]`)
and decodes JSON-string ones (`metadata`); they are flattened back to the keys the instrumentation
sent, so the OpenInference convention maps an imported span exactly as it maps live traffic.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from typing import Any

from llmlens.conventions import (
    SPAN_KIND_INTERNAL,
    STATUS_ERROR,
    STATUS_OK,
    STATUS_UNSET,
    OtlpEvent,
    OtlpSpanData,
)
from llmlens.model import is_span_id, is_trace_id, span_id_from_text, trace_id_from_text

ATTRIBUTE_PREFIX = "attributes."
# Attributes OpenInference sends as JSON text and Phoenix's dataframe holds decoded: sent back as text.
_JSON_TEXT_KEYS = frozenset(
    {
        "metadata",
        "llm.invocation_parameters",
        "llm.prompt_template.variables",
        "tool.parameters",
        "embedding.invocation_parameters",
    }
)
_JSON_TEXT_SUFFIXES = ("document.metadata",)
_STATUS = {"OK": STATUS_OK, "ERROR": STATUS_ERROR, "UNSET": STATUS_UNSET}
_MAX_DEPTH = 32


class PhoenixRowError(ValueError):
    """One row cannot be imported; the message names the column."""


def _time_ns(value: Any, column: str) -> int:
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
        delta = moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        return ((delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds) * 1000
    if isinstance(value, str):
        try:
            return _time_ns(dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00")), column)
        except ValueError:
            raise PhoenixRowError(f"{column} is not a time: {value[:60]!r}") from None
    if isinstance(value, int) and not isinstance(value, bool):
        return value  # Parquet timestamps read as integers are nanoseconds
    raise PhoenixRowError(f"{column} must be a time, got {type(value).__name__}")


def _is_json_text_key(key: str) -> bool:
    return key in _JSON_TEXT_KEYS or key.endswith(_JSON_TEXT_SUFFIXES)


def _scalar(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None  # pandas writes a missing number as NaN
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value


def flatten_attribute(key: str, value: Any, into: dict[str, Any], depth: int = 0) -> None:
    """`llm.input_messages = [{"message.role": "user"}]` -> `llm.input_messages.0.message.role = "user"`."""
    if value is None or depth > _MAX_DEPTH:
        return
    if _is_json_text_key(key) and isinstance(value, dict | list):
        into[key] = json.dumps(value, ensure_ascii=False, default=str)
        return
    if isinstance(value, Mapping):
        for sub, item in value.items():
            flatten_attribute(f"{key}.{sub}", item, into, depth + 1)
        return
    if isinstance(value, list | tuple):
        if any(isinstance(item, Mapping | list | tuple) for item in value):
            for index, item in enumerate(value):
                flatten_attribute(f"{key}.{index}", item, into, depth + 1)
        else:
            kept = [_scalar(v) for v in value if v is not None]
            into[key] = kept
        return
    scalar = _scalar(value)
    if scalar is not None:
        into[key] = scalar


def _id(row: Mapping[str, Any], *columns: str) -> str | None:
    for column in columns:
        value = row.get(column)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _events(value: Any) -> list[OtlpEvent]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return []
    if not isinstance(value, list | tuple):
        return []
    events: list[OtlpEvent] = []
    for item in value:
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            continue
        attrs: dict[str, Any] = {}
        raw = item.get("attributes")
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except ValueError:
                raw = None
        if isinstance(raw, Mapping):
            for key, sub in raw.items():
                flatten_attribute(str(key), sub, attrs)
        try:
            time_ns = _time_ns(item.get("timestamp"), "events.timestamp") if item.get("timestamp") else 0
        except PhoenixRowError:
            time_ns = 0
        events.append(OtlpEvent(name=item["name"], time_ns=time_ns, attributes=attrs))
    return events


def phoenix_span_data(row: Mapping[str, Any]) -> OtlpSpanData:
    """One dataframe row -> the OTLP span OpenInference sent for it."""
    span_id = _id(row, "context.span_id", "span_id")
    trace_id = _id(row, "context.trace_id", "trace_id")
    if span_id is None:
        raise PhoenixRowError("context.span_id is required")
    if trace_id is None:
        raise PhoenixRowError("context.trace_id is required")
    start = row.get("start_time")
    if start is None:
        raise PhoenixRowError("start_time is required")
    start_ns = _time_ns(start, "start_time")
    end = row.get("end_time")
    end_ns = _time_ns(end, "end_time") if end is not None else 0
    attrs: dict[str, Any] = {}
    for column, value in row.items():
        if column.startswith(ATTRIBUTE_PREFIX):
            flatten_attribute(column[len(ATTRIBUTE_PREFIX) :], value, attrs)
    kind = row.get("span_kind")
    if isinstance(kind, str) and kind and "openinference.span.kind" not in attrs:
        attrs["openinference.span.kind"] = kind
    status = row.get("status_code")
    message = row.get("status_message")
    parent = _id(row, "parent_id")
    compact_trace = trace_id.lower().replace("-", "")
    return OtlpSpanData(
        trace_id=compact_trace if is_trace_id(compact_trace) else trace_id_from_text(trace_id),
        span_id=span_id.lower() if is_span_id(span_id.lower()) else span_id_from_text(span_id),
        name=str(row.get("name") or ""),
        start_ns=start_ns,
        end_ns=end_ns,
        parent_span_id=(parent.lower() if is_span_id(parent.lower()) else span_id_from_text(parent))
        if parent
        else None,
        kind=SPAN_KIND_INTERNAL,
        status_code=_STATUS.get(str(status).upper(), STATUS_UNSET) if status else STATUS_UNSET,
        status_message=message if isinstance(message, str) else "",
        attributes=attrs,
        events=_events(row.get("events")),
        scope_name="phoenix-export",
    )
