"""Langfuse export records (observations, traces, scores) -> OTLP span data and native score events.

Pure. Langfuse exports write one record per observation, trace or score, as JSON Lines, JSON or CSV:
its blob-storage export with snake_case columns (`trace_id`, `start_time`, `usage_details`, ...), its
UI and API exports with camelCase ones (`traceId`, `startTime`, `usageDetails`, ...). Both are read.
An observation becomes the span the Langfuse SDK would have sent (`langfuse.*` attributes), so the
Langfuse convention maps it exactly as it maps live traffic; a trace record lends its user, session,
tags, name, release and metadata to the observations of its trace; a score record becomes a score.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from llmlens.conventions import SPAN_KIND_INTERNAL, OtlpSpanData
from llmlens.model import is_span_id, is_trace_id, span_id_from_text, trace_id_from_text

RECORD_OBSERVATION = "observation"
RECORD_TRACE = "trace"
RECORD_SCORE = "score"
# Langfuse's name for "no environment set": not worth a column value.
_DEFAULT_ENVIRONMENT = "default"
_SCORE_SOURCES = {"API": "sdk", "EVAL": "evaluator", "ANNOTATION": "human"}


class ExportRecordError(ValueError):
    """One record cannot be imported; the message names the field."""


@dataclass(slots=True)
class TraceContext:
    """What a trace record says about every observation of its trace, as `langfuse.*` attributes."""

    attributes: dict[str, Any] = field(default_factory=dict)


def _get(record: dict[str, Any], *names: str) -> Any:
    for name in names:
        value = record.get(name)
        if value is not None and value != "":
            return value
    return None


def record_kind(record: dict[str, Any]) -> str:
    """Which export a record comes from: an observation, a trace or a score."""
    if _get(record, "start_time", "startTime") is not None or _get(record, "type") is not None:
        return RECORD_OBSERVATION
    if "value" in record and ("data_type" in record or "dataType" in record):
        return RECORD_SCORE
    if _get(record, "timestamp") is not None:
        return RECORD_TRACE
    raise ExportRecordError("not a Langfuse observation, trace or score record: start_time (or startTime) is required")


def export_trace_id(value: str) -> str:
    """Langfuse trace ids: W3C ids since SDK v3; older ones (UUIDs with dashes, free text) are mapped."""
    compact = value.strip().lower().replace("-", "")
    return compact if is_trace_id(compact) else trace_id_from_text(value)


def export_span_id(value: str) -> str:
    low = value.strip().lower()
    return low if is_span_id(low) else span_id_from_text(value)


def _time_ns(value: Any, what: str) -> int:
    """ClickHouse `2025-01-31 10:00:00.123` (UTC), ISO 8601, or epoch milliseconds -> epoch nanoseconds."""
    if isinstance(value, bool):
        raise ExportRecordError(f"{what} must be a time, got {value!r}")
    if isinstance(value, int | float):
        return int(value * 1_000_000)
    if not isinstance(value, str):
        raise ExportRecordError(f"{what} must be a time, got {type(value).__name__}")
    text = value.strip().replace("Z", "+00:00")
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ExportRecordError(f"{what} is not a time: {value[:60]!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    delta = moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return ((delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds) * 1000


def _json_text(value: Any) -> str | None:
    """Input, output and JSON-valued columns as the SDK sends them: JSON text, plain strings as they are."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def _json_object(value: Any, what: str) -> dict[str, Any] | None:
    """A JSON-object column: a dict, or its JSON text (CSV and blob-storage rows)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ExportRecordError(f"{what} is not JSON: {value[:60]!r}") from None
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ExportRecordError(f"{what} must be a JSON object, got {type(value).__name__}")
    return value


def _tags(value: Any) -> list[str] | None:
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip().startswith("[") else [value]
        except ValueError:
            return [value]
    if isinstance(value, list | tuple):
        return [str(t) for t in value if t is not None]
    return None


def _metadata_attributes(metadata: dict[str, Any] | None, prefix: str) -> dict[str, Any]:
    """One attribute per key, as the SDK writes metadata (values as JSON text or plain strings)."""
    if not metadata:
        return {}
    return {f"{prefix}.{key}": _json_text(value) for key, value in metadata.items() if value is not None}


def trace_context(record: dict[str, Any]) -> tuple[str, TraceContext]:
    """A trace record -> (its trace id, the attributes its observations inherit)."""
    raw_id = _get(record, "id")
    if not isinstance(raw_id, str | int):
        raise ExportRecordError("id is required: the trace's id")
    attrs: dict[str, Any] = {}
    for names, key in (
        (("user_id", "userId"), "user.id"),
        (("session_id", "sessionId"), "session.id"),
        (("name",), "langfuse.trace.name"),
        (("release",), "langfuse.release"),
    ):
        value = _get(record, *names)
        if value is not None:
            attrs[key] = str(value)
    tags = _tags(_get(record, "tags"))
    if tags:
        attrs["langfuse.trace.tags"] = tags
    attrs.update(_metadata_attributes(_json_object(_get(record, "metadata"), "metadata"), "langfuse.trace.metadata"))
    return export_trace_id(str(raw_id)), TraceContext(attrs)


def observation_span_data(record: dict[str, Any], context: TraceContext | None = None) -> OtlpSpanData:
    """An observation record -> the OTLP span the Langfuse SDK sends for it."""
    raw_id = _get(record, "id")
    if not isinstance(raw_id, str | int):
        raise ExportRecordError("id is required: the observation's id")
    raw_trace = _get(record, "trace_id", "traceId")
    if not isinstance(raw_trace, str | int):
        raise ExportRecordError("trace_id (or traceId) is required")
    start = _get(record, "start_time", "startTime")
    if start is None:
        raise ExportRecordError("start_time (or startTime) is required")
    start_ns = _time_ns(start, "start_time")
    end = _get(record, "end_time", "endTime")
    end_ns = _time_ns(end, "end_time") if end is not None else 0
    parent = _get(record, "parent_observation_id", "parentObservationId")

    attrs: dict[str, Any] = dict(context.attributes) if context else {}
    # Columns the UI export adds from the trace, used when no trace record was imported beside it.
    for names, key in (
        (("traceName", "trace_name"), "langfuse.trace.name"),
        (("userId", "user_id"), "user.id"),
        (("sessionId", "session_id"), "session.id"),
    ):
        value = _get(record, *names)
        if value is not None:
            attrs.setdefault(key, str(value))
    trace_tags = _tags(_get(record, "traceTags", "trace_tags"))
    if trace_tags:
        attrs.setdefault("langfuse.trace.tags", trace_tags)

    kind = _get(record, "type")
    attrs["langfuse.observation.type"] = str(kind).lower() if kind is not None else "span"
    plain: tuple[tuple[tuple[str, ...], str], ...] = (
        (("provided_model_name", "providedModelName", "model"), "langfuse.observation.model.name"),
        (("level",), "langfuse.observation.level"),
        (("status_message", "statusMessage"), "langfuse.observation.status_message"),
        (("version",), "langfuse.version"),
        (("prompt_name", "promptName"), "langfuse.observation.prompt.name"),
        (("prompt_version", "promptVersion"), "langfuse.observation.prompt.version"),
    )
    for columns, key in plain:
        value = _get(record, *columns)
        if value is not None:
            attrs[key] = str(value)
    environment = _get(record, "environment")
    if environment is not None and environment != _DEFAULT_ENVIRONMENT:
        attrs["langfuse.environment"] = str(environment)
    for column, key in (("input", "langfuse.observation.input"), ("output", "langfuse.observation.output")):
        text = _json_text(_get(record, column))
        if text is not None:
            attrs[key] = text
    parameters = _json_object(_get(record, "model_parameters", "modelParameters"), "model_parameters")
    if parameters:
        attrs["langfuse.observation.model.parameters"] = json.dumps(parameters)
    usage = _usage(record)
    if usage:
        attrs["langfuse.observation.usage_details"] = json.dumps(usage)
    cost = _cost(record)
    if cost:
        attrs["langfuse.observation.cost_details"] = json.dumps(cost)
    first = _get(record, "completion_start_time", "completionStartTime")
    if first is not None:
        first_ns = _time_ns(first, "completion_start_time")
        moment = dt.datetime.fromtimestamp(first_ns / 1e9, dt.UTC)
        attrs["langfuse.observation.completion_start_time"] = json.dumps(moment.isoformat())
    attrs.update(
        _metadata_attributes(_json_object(_get(record, "metadata"), "metadata"), "langfuse.observation.metadata")
    )
    return OtlpSpanData(
        trace_id=export_trace_id(str(raw_trace)),
        span_id=export_span_id(str(raw_id)),
        name=str(_get(record, "name") or attrs["langfuse.observation.type"]),
        start_ns=start_ns,
        end_ns=end_ns,
        parent_span_id=export_span_id(str(parent)) if parent is not None else None,
        kind=SPAN_KIND_INTERNAL,
        attributes=attrs,
        scope_name="langfuse-export",
    )


def _usage(record: dict[str, Any]) -> dict[str, Any] | None:
    """The usage Langfuse stored (`usage_details`), else what the app sent (`provided_usage_details`)."""
    for names in (("usage_details", "usageDetails"), ("provided_usage_details", "providedUsageDetails")):
        usage = _json_object(_get(record, *names), names[0])
        if usage:
            return usage
    legacy = _json_object(_get(record, "usage"), "usage")  # API v1 observations: {input, output, total, unit}
    if legacy:
        return {k: v for k, v in legacy.items() if k in ("input", "output", "total") and v is not None}
    return None


def _cost(record: dict[str, Any]) -> dict[str, Any] | None:
    """The app's own cost where the export kept it, else Langfuse's; none when the source had none."""
    for names in (("provided_cost_details", "providedCostDetails"), ("cost_details", "costDetails")):
        cost = _json_object(_get(record, *names), names[0])
        if cost:
            return cost
    total = _get(record, "total_cost", "totalCost", "calculatedTotalCost")
    if isinstance(total, int | float | str) and str(total).strip():
        try:
            number = float(total)
        except ValueError:
            raise ExportRecordError(f"total_cost is not a number: {total!r}") from None
        return {"total": number}
    return None


def score_event(record: dict[str, Any]) -> dict[str, Any]:
    """A score record -> a native score event (`{"type": "score", ...}`), refused the way the API refuses it."""
    name = _get(record, "name")
    if not isinstance(name, str):
        raise ExportRecordError("name is required: the score's name")
    data_type = str(_get(record, "data_type", "dataType") or "NUMERIC").upper()
    event: dict[str, Any] = {"type": "score", "name": name}
    raw_id = _get(record, "id")
    if raw_id is not None:
        event["score_id"] = f"lf_{raw_id}"
    if data_type == "CATEGORICAL":
        label = _get(record, "string_value", "stringValue", "value")
        event["label"] = str(label) if label is not None else None
    elif data_type in ("NUMERIC", "BOOLEAN"):
        value = _get(record, "value")
        try:
            number = float(value) if value is not None else None
        except (TypeError, ValueError):
            raise ExportRecordError(f"value is not a number: {value!r}") from None
        event["value"] = bool(number) if data_type == "BOOLEAN" and number in (0.0, 1.0) else number
    else:
        raise ExportRecordError(f"{data_type} scores have no llmlens equivalent yet")
    observation = _get(record, "observation_id", "observationId")
    trace = _get(record, "trace_id", "traceId")
    if observation is not None:
        event["span_id"] = export_span_id(str(observation))
    if trace is not None:
        event["trace_id"] = export_trace_id(str(trace))
    if observation is None:
        raise ExportRecordError("only scores of an observation are imported: observation_id is required")
    for names, key in ((("comment",), "comment"), (("timestamp",), "timestamp")):
        value = _get(record, *names)
        if value is not None:
            event[key] = str(value)
    source = str(_get(record, "source") or "API").upper()
    event["source"] = _SCORE_SOURCES.get(source, "sdk")
    metadata = _json_object(_get(record, "metadata"), "metadata") or {}
    environment = _get(record, "environment")
    if environment is not None:
        metadata.setdefault("environment", str(environment))
    if metadata:
        event["metadata"] = metadata
    return event
