"""GenAI message content sent as OTLP log records, grouped per span, and merged into spans.

The OTel contrib instrumentations put prompts and completions in log records (one per message,
or one `gen_ai.client.inference.operation.details` record per call) linked by trace and span id.
Content belongs to a project like spans do (the resource's `llmlens.project` until the receiver
assigns the caller's), and joins only the span of that project with those ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmlens.conventions._values import as_str, fill_content, parse_json, set_if_none, tool_calls_of
from llmlens.conventions.otel_genai import messages_from_otel
from llmlens.model import DEFAULT_PROJECT, Span

from ._otlp_traces import Rejection, StructureError, _list_field
from ._otlp_values import (
    IdError,
    get,
    hex_id_from_bytes,
    hex_id_from_json,
    json_attributes,
    json_value,
    proto_attributes,
    proto_value,
)

_ROLE_BY_EVENT = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}
CHOICE_EVENT = "gen_ai.choice"
DETAILS_EVENT = "gen_ai.client.inference.operation.details"
GENAI_EVENTS = frozenset({*_ROLE_BY_EVENT, CHOICE_EVENT, DETAILS_EVENT})
PROJECT_ATTRIBUTE = "llmlens.project"  # a resource attribute, as on spans


@dataclass(frozen=True, slots=True)
class LogContent:
    """The message content the logs carried for one span of one project."""

    trace_id: str
    span_id: str
    project: str = DEFAULT_PROJECT
    input_messages: Any = None
    output_messages: Any = None
    tool_calls: Any = None
    prompt: str | None = None
    response: str | None = None
    finish_reason: str | None = None


def merge_log_content(span: Span, content: LogContent) -> None:
    """Fill the span's empty content fields from its logs; what the span already says is kept."""
    for name in ("input_messages", "output_messages", "tool_calls", "prompt", "response", "finish_reason"):
        set_if_none(span, name, getattr(content, name))


@dataclass(slots=True)
class _Record:
    project: str
    trace_id: str
    span_id: str
    event_name: str
    body: Any
    attributes: dict[str, Any]


def records_from_proto(request: Any) -> tuple[list[_Record], list[Rejection]]:
    records: list[_Record] = []
    rejected: list[Rejection] = []
    index = 0
    for resource_logs in request.resource_logs:
        resource = proto_attributes(resource_logs.resource.attributes, [])
        project = as_str(resource.get(PROJECT_ATTRIBUTE)) or DEFAULT_PROJECT
        for scope_logs in resource_logs.scope_logs:
            for log in scope_logs.log_records:
                notes: list[str] = []
                attrs = proto_attributes(log.attributes, notes)
                event_name = log.event_name or attrs.get("event.name") or ""
                if event_name in GENAI_EVENTS and (log.span_id or log.trace_id):
                    try:
                        trace_id = hex_id_from_bytes(log.trace_id, 16, "trace_id")
                        span_id = hex_id_from_bytes(log.span_id, 8, "span_id")
                    except IdError as exc:
                        rejected.append((index, f"log record {index}: {exc}"))
                    else:
                        body = proto_value(log.body, "body", notes) if log.HasField("body") else None
                        records.append(_Record(project, trace_id, span_id, event_name, body, attrs))
                index += 1
    return records, rejected


def records_from_json(body: Any) -> tuple[list[_Record], list[Rejection]]:
    records: list[_Record] = []
    rejected: list[Rejection] = []
    index = 0
    for r, resource_logs in enumerate(_list_field(body, "resourceLogs", "resource_logs", "body")):
        where = f"resourceLogs[{r}]"
        project = _json_resource_project(resource_logs)
        for s, scope_logs in enumerate(_list_field(resource_logs, "scopeLogs", "scope_logs", where)):
            logs = _list_field(scope_logs, "logRecords", "log_records", f"{where}.scopeLogs[{s}]")
            for log in logs:
                try:
                    record = _json_record(log, project)
                except (ValueError, TypeError, AttributeError) as exc:
                    rejected.append((index, f"log record {index}: {exc}"))
                else:
                    if record is not None:
                        records.append(record)
                index += 1
    return records, rejected


def _json_resource_project(resource_logs: Any) -> str:
    resource = resource_logs.get("resource") if isinstance(resource_logs, dict) else None
    attributes = json_attributes(resource.get("attributes"), []) if isinstance(resource, dict) else {}
    return as_str(attributes.get(PROJECT_ATTRIBUTE)) or DEFAULT_PROJECT


def _json_record(log: Any, project: str) -> _Record | None:
    if not isinstance(log, dict):
        raise ValueError("log record is not an object")
    notes: list[str] = []
    attrs = json_attributes(log.get("attributes"), notes)
    event_name = get(log, "eventName", "event_name") or attrs.get("event.name") or ""
    raw_trace = get(log, "traceId", "trace_id")
    raw_span = get(log, "spanId", "span_id")
    if event_name not in GENAI_EVENTS or not (raw_trace or raw_span):
        return None
    trace_id = hex_id_from_json(raw_trace, 16, "traceId")
    span_id = hex_id_from_json(raw_span, 8, "spanId")
    return _Record(project, trace_id, span_id, str(event_name), json_value(log.get("body"), "body", notes), attrs)


def contents_from_records(records: list[_Record]) -> list[LogContent]:
    """Group per span of a project (in arrival order) and build one `LogContent` per span."""
    by_span: dict[tuple[str, str, str], list[_Record]] = {}
    for record in records:
        by_span.setdefault((record.project, record.trace_id, record.span_id), []).append(record)
    return [_content(project, trace_id, span_id, group) for (project, trace_id, span_id), group in by_span.items()]


def _content(project: str, trace_id: str, span_id: str, records: list[_Record]) -> LogContent:
    inputs: list[dict[str, Any]] = []
    choices: list[tuple[int, dict[str, Any]]] = []
    details_in: list[dict[str, Any]] | None = None
    details_out: list[dict[str, Any]] | None = None
    for record in records:
        body = record.body if isinstance(record.body, dict) else {}
        if record.event_name in _ROLE_BY_EVENT:
            inputs.append(_input_message(_ROLE_BY_EVENT[record.event_name], body))
        elif record.event_name == CHOICE_EVENT:
            choices.append(_choice(body))
        else:
            attrs = record.attributes
            system = parse_json(attrs.get("gen_ai.system_instructions"))
            found_in = messages_from_otel(parse_json(attrs.get("gen_ai.input.messages")))
            if isinstance(system, list) and system:
                system_msgs = messages_from_otel([{"role": "system", "parts": system}]) or []
                found_in = [*system_msgs, *(found_in or [])]
            details_in = details_in or found_in
            details_out = details_out or messages_from_otel(parse_json(attrs.get("gen_ai.output.messages")))
    outputs = [msg for _, msg in sorted(choices, key=lambda c: c[0])] or details_out
    scratch = Span(trace_id=trace_id, span_id=span_id)
    fill_content(scratch, inputs or details_in, outputs)
    return LogContent(
        trace_id=trace_id,
        span_id=span_id,
        project=project,
        input_messages=scratch.input_messages,
        output_messages=scratch.output_messages,
        tool_calls=scratch.tool_calls or tool_calls_of(outputs),
        prompt=scratch.prompt,
        response=scratch.response,
        finish_reason=scratch.finish_reason,
    )


def _input_message(role: str, body: dict[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = {"role": body.get("role") or role, "content": body.get("content")}
    if "tool_calls" in body:
        item["tool_calls"] = body["tool_calls"]
    if role == "tool" and body.get("id") is not None:
        item["tool_call_id"] = body["id"]
    msgs = messages_from_otel([item])
    return msgs[0] if msgs else {"role": role, "content": None}


def _choice(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    message = body.get("message")
    item: dict[str, Any] = dict(message) if isinstance(message, dict) else {}
    item.setdefault("role", "assistant")
    if body.get("finish_reason") is not None:
        item["finish_reason"] = body["finish_reason"]
    msgs = messages_from_otel([item])
    index = body.get("index")
    position = index if isinstance(index, int) and not isinstance(index, bool) else 0
    return position, msgs[0] if msgs else {"role": "assistant", "content": None}


__all__ = [
    "GENAI_EVENTS",
    "LogContent",
    "StructureError",
    "contents_from_records",
    "merge_log_content",
    "records_from_json",
    "records_from_proto",
]
