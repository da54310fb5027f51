"""Traceloop OpenLLMetry conventions: `traceloop.*`, `llm.usage.*`, `llm.is_streaming`, associations.

Newer Traceloop releases write the current OTel GenAI names (handled by `otel_genai`); this module
covers what only Traceloop writes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from llmlens.model import Span, SpanKind

from ._record import OtlpEvent
from ._values import as_bool, as_count, as_str, indexed, parse_arguments, set_if_none, take

_ASSOCIATION = "traceloop.association.properties."
_CHUNK_EVENTS = frozenset({"llm.content.completion.chunk", "gen_ai.content.completion.chunk"})
_SECRET_HEADER = re.compile(r"authorization|api[-_]?key|x-api|token|secret|cookie", re.IGNORECASE)

_KIND_BY_SPAN_KIND = {
    "workflow": SpanKind.CHAIN,
    "task": SpanKind.CHAIN,
    "agent": SpanKind.AGENT,
    "tool": SpanKind.TOOL,
}
_KIND_BY_REQUEST_TYPE = {
    "chat": SpanKind.LLM,
    "completion": SpanKind.LLM,
    "embedding": SpanKind.EMBEDDING,
    "rerank": SpanKind.RETRIEVAL,
}


_MARKERS = frozenset({"llm.is_streaming", "gen_ai.is_streaming", "llm.headers", "gen_ai.headers", "llm.user"})


def detect(attrs: Mapping[str, Any]) -> bool:
    return any(k in _MARKERS or k.startswith(("traceloop.", "llm.usage.", "llm.request.")) for k in attrs)


def kind_of(attrs: Mapping[str, Any]) -> SpanKind | None:
    request_type = attrs.get("llm.request.type")
    if isinstance(request_type, str) and request_type in _KIND_BY_REQUEST_TYPE:
        return _KIND_BY_REQUEST_TYPE[request_type]
    span_kind = attrs.get("traceloop.span.kind")
    if isinstance(span_kind, str):
        return _KIND_BY_SPAN_KIND.get(span_kind, SpanKind.OTHER)
    return None


def apply(span: Span, attrs: Mapping[str, Any], consumed: set[str], events: list[OtlpEvent]) -> None:
    """Fill `span` from Traceloop attributes; every key used goes into `consumed`."""
    kind = kind_of(attrs)
    take(attrs, consumed, "llm.request.type", "traceloop.span.kind")
    set_if_none(span, "total_tokens", as_count(take(attrs, consumed, "llm.usage.total_tokens")))
    set_if_none(span, "reasoning_tokens", as_count(take(attrs, consumed, "llm.usage.reasoning_tokens")))
    streamed = as_bool(take(attrs, consumed, "gen_ai.is_streaming", "llm.is_streaming"))
    if streamed is None and any(e.name in _CHUNK_EVENTS for e in events):
        streamed = True
    set_if_none(span, "streamed", streamed)
    set_if_none(span, "user_id", as_str(take(attrs, consumed, "llm.user", "gen_ai.user")))
    _request_params(span, attrs, consumed)
    _functions(span, attrs, consumed)
    _association(span, attrs, consumed)
    _prompt(span, attrs, consumed)
    _entity(span, attrs, consumed, kind)
    _scrub_headers(span, attrs, consumed)


def _request_params(span: Span, attrs: Mapping[str, Any], consumed: set[str]) -> None:
    extra: dict[str, Any] = {}
    for key in ("llm.frequency_penalty", "llm.presence_penalty", "llm.top_k", "llm.chat.stop_sequences"):
        if key in attrs:
            consumed.add(key)
            extra[key.rsplit(".", 1)[1]] = attrs[key]
    if not extra:
        return
    if span.request_params is None:
        span.request_params = extra
    elif isinstance(span.request_params, dict):
        for key, value in extra.items():
            span.request_params.setdefault(key, value)


def _functions(span: Span, attrs: Mapping[str, Any], consumed: set[str]) -> None:
    rows = indexed(attrs, "llm.request.functions.", consumed)
    tools = [
        {
            "type": "function",
            "name": as_str(row.get("name")),
            "description": as_str(row.get("description")),
            "parameters": parse_arguments(row.get("parameters")),
        }
        for row in rows.values()
    ]
    if tools:
        set_if_none(span, "tools", tools)


def _association(span: Span, attrs: Mapping[str, Any], consumed: set[str]) -> None:
    for key, value in attrs.items():
        if not key.startswith(_ASSOCIATION):
            continue
        consumed.add(key)
        prop = key[len(_ASSOCIATION) :]
        if prop in ("user_id", "session_id", "feature"):
            set_if_none(span, prop, as_str(value))
        else:
            span.metadata.setdefault(prop, value)


def _prompt(span: Span, attrs: Mapping[str, Any], consumed: set[str]) -> None:
    set_if_none(span, "template_id", as_str(take(attrs, consumed, "traceloop.prompt.key")))
    set_if_none(span, "template_version", as_str(take(attrs, consumed, "traceloop.prompt.version")))
    variables = take(attrs, consumed, "traceloop.prompt.template_variables")
    if variables is not None:
        set_if_none(span, "variables", parse_arguments(variables))


def _entity(span: Span, attrs: Mapping[str, Any], consumed: set[str], kind: SpanKind | None) -> None:
    raw_in = take(attrs, consumed, "traceloop.entity.input")
    raw_out = take(attrs, consumed, "traceloop.entity.output")
    if kind is SpanKind.TOOL:
        set_if_none(span, "tool_name", as_str(attrs.get("traceloop.entity.name")))
        set_if_none(span, "tool_args", parse_arguments(raw_in))
        set_if_none(span, "tool_result", parse_arguments(raw_out))
        return
    if raw_in is not None and span.prompt is None:
        span.prompt = as_str(raw_in)
    if raw_out is not None and span.response is None:
        span.response = as_str(raw_out)


def _scrub_headers(span: Span, attrs: Mapping[str, Any], consumed: set[str]) -> None:
    # `llm.headers` / `gen_ai.headers` are a repr of the request's extra headers: never keep a secret.
    for key in ("llm.headers", "gen_ai.headers"):
        value = attrs.get(key)
        if isinstance(value, str) and _SECRET_HEADER.search(value):
            consumed.add(key)
            span.attributes[key] = "[redacted: may contain credentials]"
