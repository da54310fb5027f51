"""Map OTLP spans written under any LLM convention (Langfuse, LangSmith, OTel GenAI, OpenInference, OpenLLMetry, HTTP)
to `Span`.

Pure functions. A span may mix conventions; they are applied from the most specific to the most
general and the first one to set a field wins. Attributes no convention used are kept in
`Span.attributes`; mapped ones are not duplicated there.
"""

from __future__ import annotations

import re
from typing import Any

from llmlens.model import DEFAULT_PROJECT, Span, SpanKind, Status, classify_error

from . import evaluations, http, langfuse, langsmith, openinference, openllmetry, otel_genai
from ._record import (
    SPAN_KIND_CLIENT,
    SPAN_KIND_CONSUMER,
    SPAN_KIND_INTERNAL,
    SPAN_KIND_PRODUCER,
    SPAN_KIND_SERVER,
    SPAN_KIND_UNSPECIFIED,
    STATUS_ERROR,
    STATUS_OK,
    STATUS_UNSET,
    OtlpEvent,
    OtlpSpanData,
)
from ._values import as_str, set_if_none, take

__all__ = [
    "NOTES_ATTRIBUTE",
    "SPAN_KIND_CLIENT",
    "SPAN_KIND_CONSUMER",
    "SPAN_KIND_INTERNAL",
    "SPAN_KIND_PRODUCER",
    "SPAN_KIND_SERVER",
    "SPAN_KIND_UNSPECIFIED",
    "STATUS_ERROR",
    "STATUS_OK",
    "STATUS_UNSET",
    "OtlpEvent",
    "OtlpSpanData",
    "span_from_otlp",
]

# Where the reasons for clipped or dropped values are kept on the span.
NOTES_ATTRIBUTE = "llmlens.ingest_notes"

_MAX_STACKTRACE = 16_384
_MAX_NAME = 2_048
_MAX_ERROR_MESSAGE = 32_768
_HTTP_CODE_IN_TEXT = re.compile(r"(?:error code|status(?: code)?)[:= ]+([1-5]\d\d)\b", re.IGNORECASE)
# Kinds that name what a span does in an LLM app beat the generic `request` / `chain` / `other`.
_SPECIFIC_KINDS = (SpanKind.LLM, SpanKind.EMBEDDING, SpanKind.RETRIEVAL, SpanKind.TOOL, SpanKind.AGENT)
_OTLP_KIND_NAMES = {
    SPAN_KIND_INTERNAL: "internal",
    SPAN_KIND_SERVER: "server",
    SPAN_KIND_CLIENT: "client",
    SPAN_KIND_PRODUCER: "producer",
    SPAN_KIND_CONSUMER: "consumer",
}


def span_from_otlp(data: OtlpSpanData) -> Span:
    """One decoded OTLP span -> one `Span`. Never raises on odd attribute values: it skips them."""
    latency_ms = (data.end_ns - data.start_ns) / 1e6 if data.end_ns >= data.start_ns else None
    span = Span(
        trace_id=data.trace_id,
        span_id=data.span_id,
        name=data.name[:_MAX_NAME],
        parent_span_id=data.parent_span_id,
        start_us=data.start_ns // 1000,
        latency_ms=latency_ms,
    )
    notes = list(data.notes)
    if latency_ms is None and data.end_ns:
        notes.append("endTimeUnixNano is before startTimeUnixNano: latency dropped")
    _resource(span, data.resource)
    attrs = data.attributes
    consumed: set[str] = set()
    set_if_none(span, "user_id", as_str(take(attrs, consumed, "user.id", "enduser.id")))
    set_if_none(span, "session_id", as_str(take(attrs, consumed, "session.id")))
    set_if_none(span, "feature", as_str(take(attrs, consumed, "llmlens.feature")))
    set_if_none(span, "message_id", as_str(take(attrs, consumed, "llmlens.message_id")))

    kinds: list[SpanKind | None] = []
    level_error: str | None = None
    if langfuse.detect(attrs):
        kinds.append(langfuse.kind_of(attrs))
        level_error = langfuse.error_message(attrs)
        langfuse.apply(span, attrs, consumed, data.start_ns)
    if langsmith.detect(attrs):
        kinds.append(langsmith.kind_of(attrs))
        langsmith.apply(span, attrs, consumed)
    if openinference.detect(attrs):
        kinds.append(openinference.kind_of(attrs))
        openinference.apply(span, attrs, consumed, data.events, data.start_ns)
    if otel_genai.detect(attrs):
        kinds.append(otel_genai.kind_of(attrs))
        otel_genai.apply(span, attrs, consumed)
    if openllmetry.detect(attrs) or data.events:
        kinds.append(openllmetry.kind_of(attrs))
        openllmetry.apply(span, attrs, consumed, data.events)
    if http.detect(attrs):
        http.apply(span, attrs, consumed)
    evaluations.apply(span, attrs, consumed, data.events, data.start_ns)
    span.kind = _kind(kinds, http.is_request(attrs, data.kind)).value

    if span.model is None and span.response_model is not None:
        # Some instrumentations (OpenInference for LlamaIndex) report only the model that answered;
        # without this the call would vanish from every per-model view.
        span.model = span.response_model
    if span.feature is None and isinstance(span.metadata.get("feature"), str):
        span.feature = span.metadata["feature"]
    _status(span, data, attrs, consumed, level_error)
    _derived(span)
    _anthropic_input_tokens(span)

    kept = {k: v for k, v in attrs.items() if k not in consumed}
    kept.update(span.attributes)
    if data.scope_name:
        kept["otel.scope.name"] = data.scope_name
    if data.kind in _OTLP_KIND_NAMES:
        kept["otel.span.kind"] = _OTLP_KIND_NAMES[data.kind]
    if notes:
        kept[NOTES_ATTRIBUTE] = notes
    span.attributes = kept
    return span


def _resource(span: Span, resource: dict[str, Any]) -> None:
    span.service = as_str(resource.get("service.name"))
    span.environment = as_str(resource.get("deployment.environment.name") or resource.get("deployment.environment"))
    span.project = as_str(resource.get("llmlens.project")) or DEFAULT_PROJECT


def _kind(candidates: list[SpanKind | None], is_http_request: bool) -> SpanKind:
    found = [k for k in candidates if k is not None]
    for kind in found:
        if kind in _SPECIFIC_KINDS:
            return kind
    if is_http_request:
        return SpanKind.REQUEST
    return found[0] if found else SpanKind.OTHER


def _exception_event(events: list[OtlpEvent]) -> OtlpEvent | None:
    return next((e for e in events if e.name == "exception"), None)


def _status(
    span: Span, data: OtlpSpanData, attrs: dict[str, Any], consumed: set[str], level_error: str | None = None
) -> None:
    """`level_error`: the error a convention reports outside the OTLP status (Langfuse's `ERROR` level)."""
    error_type_attr = as_str(take(attrs, consumed, "error.type"))
    exc = _exception_event(data.events)
    exc_type = as_str(exc.attributes.get("exception.type")) if exc else None
    exc_message = as_str(exc.attributes.get("exception.message")) if exc else None
    if (
        data.status_code == STATUS_ERROR
        or (error_type_attr and data.status_code != STATUS_OK)
        or (level_error is not None and data.status_code != STATUS_OK)
    ):
        span.status = Status.ERROR.value
    elif data.status_code == STATUS_OK:
        span.status = Status.OK.value
    else:
        span.status = Status.UNSET.value
    if span.status != Status.ERROR.value:
        if error_type_attr:
            span.attributes["error.type"] = error_type_attr
        return
    message = data.status_message or level_error or exc_message
    span.error_message = (message or error_type_attr or exc_type or "")[:_MAX_ERROR_MESSAGE] or None
    http_status = span.http_status
    if http_status is None or http_status < 400:
        match = _HTTP_CODE_IN_TEXT.search(" ".join(t for t in (message, exc_message) if t))
        http_status = int(match.group(1)) if match else None
    generic = error_type_attr if error_type_attr not in (None, "_OTHER") else None
    span.error_type = classify_error(
        generic, exc_type, data.status_message or level_error, exc_message, status=http_status
    ).value
    if error_type_attr:
        span.attributes["error.type"] = error_type_attr
    if exc is not None:
        if exc_type:
            span.attributes["exception.type"] = exc_type
        trace = as_str(exc.attributes.get("exception.stacktrace"))
        if trace:
            span.attributes["exception.stacktrace"] = trace[-_MAX_STACKTRACE:]


def _anthropic_input_tokens(span: Span) -> None:
    """Keep an Anthropic call's input tokens the way Anthropic reports them, as every other path does.

    Anthropic's `input_tokens` leave out cache reads and writes, and llmlens stores and prices Anthropic
    calls that way (see `llmlens.pricing`). OpenInference and OpenLLMetry add the cache tokens into their
    prompt count (the OTel GenAI convention's "whole input"), so they are taken out again here; a count
    smaller than its cache tokens was already Anthropic's own and is left alone. The total stays whole.
    """
    if span.prompt_tokens is None or (span.provider or "").strip().lower() != "anthropic":
        return
    cache = (span.cached_tokens or 0) + (span.cache_write_tokens or 0)
    if 0 < cache <= span.prompt_tokens:
        span.prompt_tokens -= cache


def _derived(span: Span) -> None:
    if span.total_tokens is None and span.prompt_tokens is not None and span.completion_tokens is not None:
        span.total_tokens = span.prompt_tokens + span.completion_tokens
    if (
        span.streamed
        and span.tokens_per_second is None
        and span.completion_tokens
        and span.ttft_ms is not None
        and span.latency_ms is not None
        and span.latency_ms > span.ttft_ms
    ):
        span.tokens_per_second = span.completion_tokens / ((span.latency_ms - span.ttft_ms) / 1000.0)
    if (
        span.kind == SpanKind.REQUEST.value
        and span.http_status is not None
        and span.http_status >= 500
        and span.status == Status.UNSET.value
    ):
        # HTTP server semconv: a 5xx on a SERVER span is an error even when the status was left unset.
        span.status = Status.ERROR.value
        span.error_type = classify_error(status=span.http_status).value
