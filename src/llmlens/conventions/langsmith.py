"""LangSmith SDK spans in OpenTelemetry mode (`LANGSMITH_OTEL_ONLY`): what its GenAI attributes leave out.

The SDK writes model, token totals, prompt and completion under the (older) OTel GenAI names, which
`otel_genai` maps. The rest is LangSmith's own: the run type in `langsmith.span.kind`, the run's
metadata as `langsmith.metadata.<key>` (where apps put `user_id` and the thread keys `session_id`,
`thread_id`, `conversation_id`), and the token details (cache reads and writes, reasoning) in the
`usage_metadata` entry, as JSON, or as a Python repr in `gen_ai.usage.*_token_details`.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from typing import Any

from llmlens.model import Span, SpanKind

from ._values import as_count, as_str, parse_json, set_if_none, take

_METADATA = "langsmith.metadata."
_KIND = {
    "llm": SpanKind.LLM,
    "chain": SpanKind.CHAIN,
    "tool": SpanKind.TOOL,
    "retriever": SpanKind.RETRIEVAL,
    "embedding": SpanKind.EMBEDDING,
}
_THREAD_KEYS = ("session_id", "thread_id", "conversation_id")
_MAX_REPR = 10_000


def detect(attrs: Mapping[str, Any]) -> bool:
    return any(key.startswith("langsmith.") for key in attrs)


def kind_of(attrs: Mapping[str, Any]) -> SpanKind | None:
    value = attrs.get("langsmith.span.kind")
    return _KIND.get(value.lower(), SpanKind.OTHER) if isinstance(value, str) else None


def apply(span: Span, attrs: Mapping[str, Any], consumed: set[str]) -> None:
    """Fill `span` from LangSmith's own attributes; every key used goes into `consumed`."""
    metadata: dict[str, Any] = {}
    for key, raw in attrs.items():
        if key.startswith(_METADATA):
            consumed.add(key)
            parsed = parse_json(raw)
            metadata[key[len(_METADATA) :]] = raw if parsed is None else parsed
    set_if_none(span, "user_id", as_str(metadata.pop("user_id", None)))
    for thread_key in _THREAD_KEYS:
        set_if_none(span, "session_id", as_str(metadata.get(thread_key)))
    metadata.pop("session_id", None)
    usage = metadata.pop("usage_metadata", None)
    _details(span, usage, attrs, consumed)
    for key in ("LANGSMITH_TRACING", "LANGSMITH_OTEL_ONLY", "LANGSMITH_OTEL_ENABLED", "LANGSMITH_TRACING_MODE"):
        metadata.pop(key, None)  # the SDK copies its own switches into every run
    for key, value in metadata.items():
        span.metadata.setdefault(key, value)


def _literal(value: Any) -> Any:
    """`{'cache_read': 16}` as the SDK writes it (a Python repr) -> a dict; anything else unchanged."""
    if isinstance(value, str) and value.startswith("{") and len(value) <= _MAX_REPR:
        try:
            return ast.literal_eval(value)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return None
    return value


def _details(span: Span, usage: Any, attrs: Mapping[str, Any], consumed: set[str]) -> None:
    details_in = _literal(take(attrs, consumed, "gen_ai.usage.input_token_details"))
    details_out = _literal(take(attrs, consumed, "gen_ai.usage.output_token_details"))
    if isinstance(usage, dict):
        details_in = usage.get("input_token_details", details_in)
        details_out = usage.get("output_token_details", details_out)
    if isinstance(details_in, dict):
        set_if_none(span, "cached_tokens", as_count(details_in.get("cache_read")) or None)
        set_if_none(span, "cache_write_tokens", as_count(details_in.get("cache_creation")) or None)
    if isinstance(details_out, dict):
        set_if_none(span, "reasoning_tokens", as_count(details_out.get("reasoning")) or None)
