"""Walk an OTLP trace export (protobuf objects or OTLP/JSON dicts) into `OtlpSpanData` records."""

from __future__ import annotations

from typing import Any

from llmlens.conventions import OtlpEvent, OtlpSpanData

from ._otlp_values import (
    IdError,
    get,
    hex_id_from_bytes,
    hex_id_from_json,
    json_attributes,
    json_uint64,
    optional_parent_from_bytes,
    optional_parent_from_json,
    proto_attributes,
)

# What a rejected span is reported as: its position in the request and why.
Rejection = tuple[int, str]

_SPAN_KINDS = {
    "SPAN_KIND_UNSPECIFIED": 0,
    "SPAN_KIND_INTERNAL": 1,
    "SPAN_KIND_SERVER": 2,
    "SPAN_KIND_CLIENT": 3,
    "SPAN_KIND_PRODUCER": 4,
    "SPAN_KIND_CONSUMER": 5,
}
_STATUS_CODES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}


class StructureError(ValueError):
    """The export's structure above the span level is wrong: the whole request is bad."""


# -- protobuf ---------------------------------------------------------------------------------


def span_data_from_proto(request: Any) -> tuple[list[OtlpSpanData], list[Rejection]]:
    """An `ExportTraceServiceRequest` -> span records and rejections; one bad span never sinks the rest."""
    out: list[OtlpSpanData] = []
    rejected: list[Rejection] = []
    index = 0
    for resource_spans in request.resource_spans:
        resource_notes: list[str] = []
        resource = proto_attributes(resource_spans.resource.attributes, resource_notes, prefix="resource.")
        for scope_spans in resource_spans.scope_spans:
            scope_name = scope_spans.scope.name
            for span in scope_spans.spans:
                notes = list(resource_notes)
                try:
                    trace_id = hex_id_from_bytes(span.trace_id, 16, "trace_id")
                    span_id = hex_id_from_bytes(span.span_id, 8, "span_id")
                    if span.start_time_unix_nano == 0:
                        raise IdError("start_time_unix_nano is missing")
                except IdError as exc:
                    rejected.append((index, f"span {index}: {exc}"))
                    index += 1
                    continue
                span_events = span.events
                events = (
                    [
                        OtlpEvent(e.name, e.time_unix_nano, proto_attributes(e.attributes, notes, prefix="event."))
                        for e in span_events
                    ]
                    if span_events
                    else []
                )
                status = span.status  # each read of a sub-message builds a new wrapper: read it once
                out.append(
                    OtlpSpanData(
                        trace_id=trace_id,
                        span_id=span_id,
                        name=span.name,
                        start_ns=span.start_time_unix_nano,
                        end_ns=span.end_time_unix_nano,
                        parent_span_id=optional_parent_from_bytes(span.parent_span_id, notes),
                        kind=int(span.kind),
                        status_code=int(status.code),
                        status_message=status.message,
                        attributes=proto_attributes(span.attributes, notes),
                        events=events,
                        resource=resource,
                        scope_name=scope_name,
                        notes=notes,
                        index=index,
                    )
                )
                index += 1
    return out, rejected


# -- OTLP/JSON --------------------------------------------------------------------------------


def _list_field(obj: Any, camel: str, snake: str, where: str) -> list[Any]:
    if not isinstance(obj, dict):
        raise StructureError(f"{where} must be an object")
    value = get(obj, camel, snake)
    if value is None:
        return []
    if not isinstance(value, list):
        raise StructureError(f"{where}.{camel} must be a list")
    return value


def _enum(value: Any, names: dict[str, int], what: str) -> int:
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        if value in names:
            return names[value]
        if value.strip().isdigit():
            return int(value)
    raise ValueError(f"{what} is not a known value: {str(value)[:40]!r}")


def span_data_from_json(body: Any) -> tuple[list[OtlpSpanData], list[Rejection]]:
    """A parsed OTLP/JSON trace export -> span records and rejections. Raises StructureError."""
    out: list[OtlpSpanData] = []
    rejected: list[Rejection] = []
    index = 0
    for r, resource_spans in enumerate(_list_field(body, "resourceSpans", "resource_spans", "body")):
        where = f"resourceSpans[{r}]"
        scopes = _list_field(resource_spans, "scopeSpans", "scope_spans", where)
        resource_obj = resource_spans.get("resource")
        resource_notes: list[str] = []
        resource = (
            json_attributes(resource_obj.get("attributes"), resource_notes, prefix="resource.")
            if isinstance(resource_obj, dict)
            else {}
        )
        for s, scope_spans in enumerate(scopes):
            spans = _list_field(scope_spans, "spans", "spans", f"{where}.scopeSpans[{s}]")
            scope = scope_spans.get("scope")
            scope_name = scope.get("name") if isinstance(scope, dict) else None
            for span in spans:
                try:
                    out.append(_json_span(span, resource, resource_notes, scope_name, index))
                except (ValueError, TypeError, AttributeError) as exc:
                    rejected.append((index, f"span {index}: {exc}"))
                index += 1
    return out, rejected


def _json_span(
    span: Any, resource: dict[str, Any], resource_notes: list[str], scope_name: Any, index: int
) -> OtlpSpanData:
    if not isinstance(span, dict):
        raise ValueError("span is not an object")
    notes = list(resource_notes)
    trace_id = hex_id_from_json(get(span, "traceId", "trace_id"), 16, "traceId")
    span_id = hex_id_from_json(get(span, "spanId", "span_id"), 8, "spanId")
    start_ns = json_uint64(get(span, "startTimeUnixNano", "start_time_unix_nano"), "startTimeUnixNano")
    if start_ns == 0:
        raise ValueError("startTimeUnixNano is missing")
    end_ns = json_uint64(get(span, "endTimeUnixNano", "end_time_unix_nano"), "endTimeUnixNano")
    status = span.get("status")
    if status is None:
        status = {}
    if not isinstance(status, dict):
        raise ValueError("status must be an object")
    message = status.get("message")
    name = span.get("name")
    events: list[OtlpEvent] = []
    raw_events = span.get("events")
    if isinstance(raw_events, list):
        for e in raw_events:
            if not isinstance(e, dict):
                notes.append("an event that is not an object was dropped")
                continue
            event_name = e.get("name")
            events.append(
                OtlpEvent(
                    event_name if isinstance(event_name, str) else "",
                    json_uint64(get(e, "timeUnixNano", "time_unix_nano"), "event timeUnixNano"),
                    json_attributes(e.get("attributes"), notes, prefix="event."),
                )
            )
    return OtlpSpanData(
        trace_id=trace_id,
        span_id=span_id,
        name=name if isinstance(name, str) else "",
        start_ns=start_ns,
        end_ns=end_ns,
        parent_span_id=optional_parent_from_json(get(span, "parentSpanId", "parent_span_id"), notes),
        kind=_enum(span.get("kind"), _SPAN_KINDS, "kind"),
        status_code=_enum(status.get("code"), _STATUS_CODES, "status.code"),
        status_message=message if isinstance(message, str) else "",
        attributes=json_attributes(span.get("attributes"), notes),
        events=events,
        resource=resource,
        scope_name=scope_name if isinstance(scope_name, str) else "",
        notes=notes,
        index=index,
    )
