"""Our `Span` -> OTLP `ExportTraceServiceRequest`, with OTel GenAI attributes plus the span's other attributes.

The inverse of the OTLP decoder in `llmlens.codec.otlp` for the fields a collector or vendor understands:
ids, names, times, status, resource (service, environment, project), GenAI model/usage/content, tools,
retrieval, HTTP; llmlens-only fields travel as `llmlens.*` attributes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Status
from opentelemetry.proto.trace.v1.trace_pb2 import Span as OtlpSpan

from llmlens.model import Span, SpanKind, is_span_id, is_trace_id, span_id_from_text, trace_id_from_text
from llmlens.model import Status as SpanStatus

DEFAULT_SCOPE = "llmlens"

_OPERATIONS = {
    SpanKind.LLM.value: "chat",
    SpanKind.EMBEDDING.value: "embeddings",
    SpanKind.TOOL.value: "execute_tool",
    SpanKind.AGENT.value: "invoke_agent",
    SpanKind.RETRIEVAL.value: "retrieval",
}
_OTLP_KINDS = {
    "internal": OtlpSpan.SPAN_KIND_INTERNAL,
    "server": OtlpSpan.SPAN_KIND_SERVER,
    "client": OtlpSpan.SPAN_KIND_CLIENT,
    "producer": OtlpSpan.SPAN_KIND_PRODUCER,
    "consumer": OtlpSpan.SPAN_KIND_CONSUMER,
}
# Attributes that the decoder derives from OTLP structure rather than from attributes.
_STRUCTURAL = frozenset({"otel.span.kind", "otel.scope.name"})
# (Span field, attribute) written when the field is set.
_SIMPLE: tuple[tuple[str, str], ...] = (
    ("user_id", "user.id"),
    ("session_id", "session.id"),
    ("feature", "llmlens.feature"),
    ("message_id", "llmlens.message_id"),
    ("provider", "gen_ai.provider.name"),
    ("model", "gen_ai.request.model"),
    ("response_model", "gen_ai.response.model"),
    ("prompt_tokens", "gen_ai.usage.input_tokens"),
    ("completion_tokens", "gen_ai.usage.output_tokens"),
    ("total_tokens", "gen_ai.usage.total_tokens"),
    ("cached_tokens", "gen_ai.usage.cache_read.input_tokens"),
    ("cache_write_tokens", "gen_ai.usage.cache_creation.input_tokens"),
    ("reasoning_tokens", "gen_ai.usage.reasoning.output_tokens"),
    ("temperature", "gen_ai.request.temperature"),
    ("max_tokens", "gen_ai.request.max_tokens"),
    ("streamed", "gen_ai.request.stream"),
    ("cost_usd", "llmlens.cost_usd"),
    ("computed_cost_usd", "llmlens.computed_cost_usd"),
    ("cost_source", "llmlens.cost_source"),
    ("price_version", "llmlens.price_version"),
    ("tokens_per_second", "llmlens.tokens_per_second"),
    ("template_id", "llmlens.template.id"),
    ("template_version", "llmlens.template.version"),
    ("tool_name", "gen_ai.tool.name"),
    ("tool_success", "llmlens.tool.success"),
    ("retrieval_query", "gen_ai.retrieval.query.text"),
    ("http_method", "http.request.method"),
    ("http_route", "http.route"),
    ("http_status", "http.response.status_code"),
    ("http_request_bytes", "http.request.body.size"),
    ("http_response_bytes", "http.response.body.size"),
    ("cache_hit", "llmlens.cache_hit"),
    ("cost_saved_usd", "llmlens.cost_saved_usd"),
    ("blocked", "llmlens.blocked"),
    ("replay_of", "llmlens.replay_of"),
)
_JSON: tuple[tuple[str, str], ...] = (
    ("tools", "gen_ai.tool.definitions"),
    ("tool_args", "gen_ai.tool.call.arguments"),
    ("tool_result", "gen_ai.tool.call.result"),
    ("documents", "gen_ai.retrieval.documents"),
    ("variables", "llmlens.template.variables"),
    ("request_params", "llmlens.request_params"),
)


def any_value(value: Any) -> AnyValue:
    """A Python value as an OTLP AnyValue (dicts become kvlists, other objects their text)."""
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        if -(2**63) <= value < 2**63:
            return AnyValue(int_value=value)
        return AnyValue(string_value=str(value))
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    out = AnyValue()
    if isinstance(value, list | tuple):
        out.array_value.values.extend(any_value(v) for v in value)
        return out
    if isinstance(value, Mapping):
        out.kvlist_value.values.extend(KeyValue(key=str(k), value=any_value(v)) for k, v in value.items())
        return out
    return AnyValue(string_value=str(value))


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def otel_messages(messages: Any) -> str | None:
    """Our `[{role, content, tool_calls}]` -> the GenAI `[{role, parts: [...]}]` JSON text."""
    if not isinstance(messages, list):
        return None
    out = []
    for msg in messages:
        if not isinstance(msg, dict):
            continue
        parts: list[dict[str, Any]] = []
        content = msg.get("content")
        if content is not None:
            if msg.get("role") == "tool":
                parts.append({"type": "tool_call_response", "id": msg.get("tool_call_id"), "response": content})
            else:
                parts.append({"type": "text", "content": content if isinstance(content, str) else _json(content)})
        for call in msg.get("tool_calls") or ():
            if isinstance(call, dict):
                parts.append(
                    {
                        "type": "tool_call",
                        "id": call.get("id"),
                        "name": call.get("name"),
                        "arguments": call.get("arguments"),
                    }
                )
        item: dict[str, Any] = {"role": msg.get("role") or "user", "parts": parts}
        if msg.get("finish_reason"):
            item["finish_reason"] = msg["finish_reason"]
        out.append(item)
    return _json(out)


def span_attributes(span: Span) -> dict[str, Any]:
    attrs: dict[str, Any] = {"llmlens.span.kind": span.kind}
    operation = _OPERATIONS.get(span.kind)
    if operation:
        attrs["gen_ai.operation.name"] = operation
    for field_name, key in _SIMPLE:
        value = getattr(span, field_name)
        if value is not None:
            attrs[key] = value
    for field_name, key in _JSON:
        value = getattr(span, field_name)
        if value is not None:
            attrs[key] = _json(value)
    if span.finish_reason:
        attrs["gen_ai.response.finish_reasons"] = [span.finish_reason]
    if span.ttft_ms is not None:
        attrs["gen_ai.response.time_to_first_chunk"] = span.ttft_ms / 1000.0
    inputs = otel_messages(span.input_messages)
    outputs = otel_messages(span.output_messages)
    if inputs is not None:
        attrs["gen_ai.input.messages"] = inputs
    elif span.prompt is not None:
        attrs["gen_ai.input.messages"] = _json([{"role": "user", "parts": [{"type": "text", "content": span.prompt}]}])
    if outputs is not None:
        attrs["gen_ai.output.messages"] = outputs
    elif span.response is not None:
        attrs["gen_ai.output.messages"] = _json(
            [{"role": "assistant", "parts": [{"type": "text", "content": span.response}]}]
        )
    if span.error_type and span.status == SpanStatus.ERROR.value:
        attrs["error.type"] = span.error_type
    if span.metadata:
        attrs["llmlens.metadata"] = _json(span.metadata)
    for key, value in span.attributes.items():
        if key not in _STRUCTURAL and value is not None:
            attrs.setdefault(key, value)
    return attrs


def _trace_id(value: str) -> bytes:
    return bytes.fromhex(value if is_trace_id(value) else trace_id_from_text(value))


def _span_id(value: str) -> bytes:
    return bytes.fromhex(value if is_span_id(value) else span_id_from_text(value))


def otlp_span(span: Span) -> OtlpSpan:
    out = OtlpSpan(
        trace_id=_trace_id(span.trace_id),
        span_id=_span_id(span.span_id),
        name=span.name or span.kind,
        start_time_unix_nano=span.start_us * 1000,
        end_time_unix_nano=(span.end_us if span.end_us is not None else span.start_us) * 1000,
    )
    if span.parent_span_id:
        out.parent_span_id = _span_id(span.parent_span_id)
    declared = span.attributes.get("otel.span.kind")
    if isinstance(declared, str) and declared in _OTLP_KINDS:
        out.kind = _OTLP_KINDS[declared]
    elif span.kind in (SpanKind.LLM.value, SpanKind.EMBEDDING.value):
        out.kind = OtlpSpan.SPAN_KIND_CLIENT
    else:
        out.kind = OtlpSpan.SPAN_KIND_INTERNAL
    if span.status == SpanStatus.ERROR.value:
        out.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message=span.error_message or ""))
    elif span.status == SpanStatus.OK.value:
        out.status.CopyFrom(Status(code=Status.STATUS_CODE_OK))
    out.attributes.extend(KeyValue(key=k, value=any_value(v)) for k, v in span_attributes(span).items())
    return out


def _resource(project: str, service: str | None, environment: str | None) -> Resource:
    attrs: dict[str, Any] = {"llmlens.project": project}
    if service:
        attrs["service.name"] = service
    if environment:
        attrs["deployment.environment.name"] = environment
    return Resource(attributes=[KeyValue(key=k, value=any_value(v)) for k, v in attrs.items()])


def export_request(spans: Iterable[Span]) -> ExportTraceServiceRequest:
    """One request; spans grouped by resource (project, service, environment) and instrumentation scope."""
    groups: dict[tuple[str, str | None, str | None], dict[str, list[OtlpSpan]]] = {}
    for span in spans:
        scope = span.attributes.get("otel.scope.name")
        scope_name = scope if isinstance(scope, str) and scope else DEFAULT_SCOPE
        by_scope = groups.setdefault((span.project, span.service, span.environment), {})
        by_scope.setdefault(scope_name, []).append(otlp_span(span))
    request = ExportTraceServiceRequest()
    for (project, service, environment), by_scope in groups.items():
        resource_spans = ResourceSpans(resource=_resource(project, service, environment))
        for scope_name, otlp_spans in by_scope.items():
            resource_spans.scope_spans.append(ScopeSpans(scope=InstrumentationScope(name=scope_name), spans=otlp_spans))
        request.resource_spans.append(resource_spans)
    return request
