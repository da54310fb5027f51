"""`Span` -> a native event (docs/events.md) that decodes back to the same span: how importers send spans.

The importers of other tools' exports map each record through the conventions into a `Span`, then send
it as this event to `/api/v1/ingest` (or into a store), so they share the native import's rules: one
answer per event naming the field of a reject, pricing where the source had no cost, and a span stored
once however often it is imported (its ids come from the source's ids).
"""

from __future__ import annotations

from typing import Any

from llmlens.model import CostSource, Span, SpanKind, us_to_iso

# Fields copied as they are when set; the event decoder reads each under the same name.
_PLAIN_FIELDS = (
    "trace_id",
    "span_id",
    "parent_span_id",
    "name",
    "latency_ms",
    "status",
    "error_type",
    "error_message",
    "service",
    "environment",
    "user_id",
    "session_id",
    "feature",
    "message_id",
    "provider",
    "model",
    "response_model",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "ttft_ms",
    "tokens_per_second",
    "streamed",
    "temperature",
    "max_tokens",
    "finish_reason",
    "request_params",
    "tools",
    "tool_calls",
    "template_id",
    "template_version",
    "variables",
    "prompt",
    "response",
    "input_messages",
    "output_messages",
    "tool_name",
    "tool_args",
    "tool_result",
    "tool_success",
    "retrieval_query",
    "documents",
    "http_method",
    "http_route",
    "http_status",
    "http_request_bytes",
    "http_response_bytes",
    "cache_hit",
    "cost_saved_usd",
    "blocked",
)
# Notes on the span's attributes when a record had to change kind to be kept.
KIND_NOTE = "llmlens.import_note"


_INHERITED = ("user_id", "session_id", "feature")


def inherit_trace_context(spans: list[Span]) -> None:
    """A span without a user, session or feature takes its nearest ancestor's, as live traces do.

    Instrumentations often set them on the root span only; the OTLP receiver fills them in while it
    assembles a trace, and an import of finished traces does the same here.
    """
    by_id = {(s.trace_id, s.span_id): s for s in spans}
    for span in spans:
        missing = [name for name in _INHERITED if getattr(span, name) is None]
        parent_id, seen = span.parent_span_id, 0
        while missing and parent_id is not None and seen < 256:
            parent = by_id.get((span.trace_id, parent_id))
            if parent is None:
                break
            for name in list(missing):
                value = getattr(parent, name)
                if value is not None:
                    setattr(span, name, value)
                    missing.remove(name)
            parent_id, seen = parent.parent_span_id, seen + 1


def event_from_span(span: Span) -> dict[str, Any]:
    """The native event for `span` (project left to the receiver: the importer's target project)."""
    event: dict[str, Any] = {"type": "span", "kind": span.kind, "timestamp": us_to_iso(span.start_us)}
    for name in _PLAIN_FIELDS:
        value = getattr(span, name)
        if value is not None:
            event[name] = value
    if span.cost_usd is not None and span.cost_source in (None, CostSource.CALLER.value):
        event["cost_usd"] = span.cost_usd  # the source's own cost; ours is computed beside it
    if span.metadata:
        event["metadata"] = dict(span.metadata)
    attributes = dict(span.attributes)
    if span.kind == SpanKind.LLM.value and not span.model:
        # An LLM call is kept only with its model; without one it is kept as a plain step.
        event["kind"] = SpanKind.OTHER.value
        attributes[KIND_NOTE] = "an LLM call without a model name: kept as kind 'other'"
    if span.kind == SpanKind.TOOL.value and not span.tool_name:
        event["tool_name"] = span.name or "tool"
    if attributes:
        event["attributes"] = attributes
    return event
