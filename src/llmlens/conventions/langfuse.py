"""Langfuse SDK conventions (v3 and later, OTel-based): `langfuse.observation.*`, `langfuse.trace.*`.

The SDK writes every observation as an OTel span: its type in `langfuse.observation.type`, input and
output as JSON text, model, parameters, usage and cost as JSON objects, the first-token time as a
JSON-quoted ISO time, and metadata as one JSON-encoded attribute per key. `user.id` and `session.id`
are read by `span_from_otlp` itself.

Usage comes in two shapes. The SDK's own (`update_current_generation(usage_details=...)`, the LangChain
handler) splits usage into disjoint parts, `input` beside `input_cached_tokens` or
`cache_read_input_tokens`, `output` beside `output_reasoning_tokens`. The `langfuse.openai` wrapper
passes OpenAI's usage object as it is (`prompt_tokens` including `prompt_tokens_details.cached_tokens`).
Both become whole-input and whole-output counts, the way OTel GenAI reports them.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from typing import Any

from llmlens.model import Span, SpanKind

from ._values import (
    as_bool,
    as_count,
    as_float,
    as_str,
    fill_content,
    parse_arguments,
    parse_json,
    set_if_none,
    take,
)
from .otel_genai import messages_from_otel

PREFIX = "langfuse."
TYPE = "langfuse.observation.type"
_OBSERVATION = "langfuse.observation."
_OBSERVATION_METADATA = "langfuse.observation.metadata"
_TRACE_METADATA = "langfuse.trace.metadata"

KIND_BY_TYPE = {
    "generation": SpanKind.LLM,
    "embedding": SpanKind.EMBEDDING,
    "tool": SpanKind.TOOL,
    "retriever": SpanKind.RETRIEVAL,
    "agent": SpanKind.AGENT,
    "chain": SpanKind.CHAIN,
    # A plain `@observe` span is a step of the app, as a chain is.
    "span": SpanKind.CHAIN,
    "event": SpanKind.OTHER,
    "guardrail": SpanKind.OTHER,
    "evaluator": SpanKind.OTHER,
}
_CACHE_READ_WORDS = ("cache_read", "cached")
_CACHE_WRITE_WORDS = ("cache_creation", "cache_write")


def detect(attrs: Mapping[str, Any]) -> bool:
    return any(key.startswith(PREFIX) for key in attrs)


def kind_of(attrs: Mapping[str, Any]) -> SpanKind | None:
    value = attrs.get(TYPE)
    if not isinstance(value, str):
        return None
    return KIND_BY_TYPE.get(value.strip().lower(), SpanKind.OTHER)


def error_message(attrs: Mapping[str, Any]) -> str | None:
    """The error an observation reports through its level (`ERROR`), or None when it reports none."""
    level = as_str(attrs.get("langfuse.observation.level"))
    if level is None or level.upper() != "ERROR":
        return None
    return as_str(attrs.get("langfuse.observation.status_message")) or "error"


def apply(span: Span, attrs: Mapping[str, Any], consumed: set[str], start_ns: int) -> None:
    """Fill `span` from Langfuse attributes; every key used goes into `consumed`."""
    kind = kind_of(attrs)
    set_if_none(span, "model", as_str(take(attrs, consumed, "langfuse.observation.model.name")))
    _parameters(span, parse_json(take(attrs, consumed, "langfuse.observation.model.parameters")))
    _usage(span, parse_json(take(attrs, consumed, "langfuse.observation.usage_details")))
    cost = cost_from_details(parse_json(take(attrs, consumed, "langfuse.observation.cost_details")))
    if cost is not None and span.cost_usd is None:
        span.cost_usd = cost  # the caller's cost: ours is computed beside it at ingest
    _first_token(span, take(attrs, consumed, "langfuse.observation.completion_start_time"), start_ns)
    set_if_none(span, "template_id", as_str(take(attrs, consumed, "langfuse.observation.prompt.name")))
    set_if_none(span, "template_version", as_str(take(attrs, consumed, "langfuse.observation.prompt.version")))
    set_if_none(span, "environment", as_str(take(attrs, consumed, "langfuse.environment")))
    _context(span, attrs, consumed)
    _metadata(span, attrs, consumed)
    _level(span, attrs, consumed)
    raw_in = take(attrs, consumed, "langfuse.observation.input")
    raw_out = take(attrs, consumed, "langfuse.observation.output")
    _content(span, kind, raw_in, raw_out)
    if span.model is not None and span.provider is None and "claude" in span.model.lower():
        # Only for the token shape: Anthropic's prompt count leaves the cache out (see `span_from_otlp`).
        span.provider = "anthropic"
    # Flags the SDK uses for itself; they say nothing about the call.
    take(attrs, consumed, "langfuse.internal.as_root", "langfuse.internal.is_app_root")


def cost_from_details(details: Any) -> float | None:
    """`{"input": x, "output": y, "total": z}` -> z (or the sum of the parts without a total)."""
    if not isinstance(details, dict) or not details:
        return None
    total = as_float(details.get("total"))
    if total is not None:
        return total if total >= 0 else None
    parts = [as_float(v) for v in details.values()]
    numbers = [p for p in parts if p is not None and p >= 0]
    return sum(numbers) if numbers else None


def _parameters(span: Span, params: Any) -> None:
    if not isinstance(params, dict) or not params:
        return
    set_if_none(span, "temperature", as_float(params.get("temperature")))
    limit = params.get("max_tokens", params.get("max_completion_tokens", params.get("max_output_tokens")))
    set_if_none(span, "max_tokens", as_count(limit))
    set_if_none(span, "streamed", as_bool(params.get("stream")))
    # The OpenAI wrapper records an unset max_tokens as infinity: no limit was sent, so none is kept.
    kept = {k: v for k, v in params.items() if not (isinstance(v, float) and not math.isfinite(v)) and v != "Infinity"}
    if kept:
        set_if_none(span, "request_params", kept)


def _usage(span: Span, usage: Any) -> None:
    if not isinstance(usage, dict) or not usage:
        return
    counts = usage_counts(usage)
    for name, value in counts.items():
        set_if_none(span, name, value)


def usage_counts(usage: Mapping[str, Any]) -> dict[str, int]:
    """Langfuse usage details (either shape) -> prompt/completion/total/cached/cache-write/reasoning counts."""
    if "prompt_tokens" in usage or "completion_tokens" in usage or "input_tokens" in usage:
        return _provider_usage(usage)
    prompt = completion = 0
    cached = cache_write = reasoning = 0
    seen_input = seen_output = False
    for key, raw in usage.items():
        value = as_count(raw)
        if value is None or key == "total":
            continue
        low = key.lower()
        if any(word in low for word in _CACHE_WRITE_WORDS):
            cache_write += value
            prompt += value
            seen_input = True
        elif any(word in low for word in _CACHE_READ_WORDS):
            cached += value
            prompt += value
            seen_input = True
        elif "reasoning" in low:
            reasoning += value
            completion += value
            seen_output = True
        elif low.startswith("input"):
            prompt += value
            seen_input = True
        elif low.startswith("output"):
            completion += value
            seen_output = True
    out: dict[str, int] = {}
    if seen_input:
        out["prompt_tokens"] = prompt
    if seen_output:
        out["completion_tokens"] = completion
    total = as_count(usage.get("total"))
    if total is not None:
        out["total_tokens"] = total
    if cached:
        out["cached_tokens"] = cached
    if cache_write:
        out["cache_write_tokens"] = cache_write
    if reasoning:
        out["reasoning_tokens"] = reasoning
    return out


def _provider_usage(usage: Mapping[str, Any]) -> dict[str, int]:
    """A provider's own usage object: OpenAI chat/completions, OpenAI Responses, or Anthropic's."""
    out: dict[str, int] = {}
    details_in = usage.get("prompt_tokens_details") or usage.get("input_tokens_details")
    details_out = usage.get("completion_tokens_details") or usage.get("output_tokens_details")
    prompt = as_count(usage.get("prompt_tokens", usage.get("input_tokens")))
    completion = as_count(usage.get("completion_tokens", usage.get("output_tokens")))
    cached = as_count(details_in.get("cached_tokens")) if isinstance(details_in, dict) else None
    reasoning = as_count(details_out.get("reasoning_tokens")) if isinstance(details_out, dict) else None
    # Anthropic's input_tokens leave the cache out and report it beside them.
    cache_read = as_count(usage.get("cache_read_input_tokens"))
    cache_write = as_count(usage.get("cache_creation_input_tokens"))
    if prompt is not None and (cache_read or cache_write) and cached is None:
        prompt += (cache_read or 0) + (cache_write or 0)
        cached = cache_read
    if prompt is not None:
        out["prompt_tokens"] = prompt
    if completion is not None:
        out["completion_tokens"] = completion
    total = as_count(usage.get("total_tokens"))
    if total is not None:
        out["total_tokens"] = total
    if cached:
        out["cached_tokens"] = cached
    if cache_write:
        out["cache_write_tokens"] = cache_write
    if reasoning:
        out["reasoning_tokens"] = reasoning
    return out


def parse_time_us(value: Any) -> int | None:
    """An ISO 8601 time (JSON-quoted or not; naive means UTC) -> epoch microseconds, or None."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith('"'):
            parsed = parse_json(text)
            text = parsed if isinstance(parsed, str) else ""
        if not text:
            return None
        try:
            moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        delta = moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return None


def _first_token(span: Span, value: Any, start_ns: int) -> None:
    first_us = parse_time_us(value)
    if first_us is None or not start_ns:
        return
    ttft_ms = (first_us - start_ns // 1000) / 1000.0
    if ttft_ms >= 0:
        set_if_none(span, "ttft_ms", ttft_ms)
        # The SDK records a first-token time only for answers that came in pieces.
        set_if_none(span, "streamed", True)


def _context(span: Span, attrs: Mapping[str, Any], consumed: set[str]) -> None:
    name = as_str(take(attrs, consumed, "langfuse.trace.name"))
    if name is not None:
        span.metadata.setdefault("trace_name", name)
    tags = take(attrs, consumed, "langfuse.trace.tags")
    if isinstance(tags, list | tuple) and tags:
        span.metadata.setdefault("tags", [str(t) for t in tags])
    for key, field in (("langfuse.release", "release"), ("langfuse.version", "version")):
        value = as_str(take(attrs, consumed, key))
        if value is not None:
            span.metadata.setdefault(field, value)


def _metadata(span: Span, attrs: Mapping[str, Any], consumed: set[str]) -> None:
    """Observation metadata first (it is the more specific), then the trace's."""
    for prefix in (_OBSERVATION_METADATA, _TRACE_METADATA):
        whole = take(attrs, consumed, prefix)
        if whole is not None:
            parsed = parse_json(whole)
            if isinstance(parsed, dict):
                for key, value in parsed.items():
                    span.metadata.setdefault(str(key), value)
            else:
                span.metadata.setdefault(prefix.rsplit(".", 1)[-1], parsed if parsed is not None else whole)
        dotted = prefix + "."
        for key, raw in attrs.items():
            if not key.startswith(dotted):
                continue
            consumed.add(key)
            parsed = parse_json(raw) if isinstance(raw, str) else raw
            span.metadata.setdefault(key[len(dotted) :], raw if parsed is None else parsed)


def _level(span: Span, attrs: Mapping[str, Any], consumed: set[str]) -> None:
    level = as_str(take(attrs, consumed, "langfuse.observation.level"))
    message = as_str(take(attrs, consumed, "langfuse.observation.status_message"))
    if level is not None and level.upper() not in ("DEFAULT", "ERROR"):
        span.metadata.setdefault("level", level.upper())
    if message is not None and (level is None or level.upper() != "ERROR"):
        # An error's message becomes the span's error message; any other level's is kept beside it.
        span.metadata.setdefault("status_message", message)


def _value(raw: Any) -> Any:
    """The SDK serialises input and output as JSON text; a plain string stays a string."""
    if isinstance(raw, str):
        parsed = parse_json(raw)
        return raw if parsed is None else parsed
    return raw


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def _content(span: Span, kind: SpanKind | None, raw_in: Any, raw_out: Any) -> None:
    value_in, value_out = _value(raw_in), _value(raw_out)
    if kind is SpanKind.TOOL:
        if raw_in is not None:
            set_if_none(span, "tool_args", parse_arguments(value_in))
        if raw_out is not None:
            set_if_none(span, "tool_result", parse_arguments(value_out))
        set_if_none(span, "tool_name", span.name or None)
        return
    if kind is SpanKind.RETRIEVAL:
        query = value_in.get("query") if isinstance(value_in, dict) and "query" in value_in else value_in
        set_if_none(span, "retrieval_query", _text(query))
        documents = _documents(value_out)
        if documents:
            set_if_none(span, "documents", documents)
        elif raw_out is not None:
            set_if_none(span, "response", _text(value_out))
        return
    inputs = _input_messages(span, value_in)
    outputs = _output_messages(value_out)
    fill_content(span, inputs, outputs)
    if inputs is None:
        set_if_none(span, "prompt", _text(value_in))
    if outputs is None:
        set_if_none(span, "response", _text(value_out))


def _input_messages(span: Span, value: Any) -> list[dict[str, Any]] | None:
    if isinstance(value, dict) and isinstance(value.get("messages"), list):
        # The OpenAI wrapper sends {"messages": [...], "tools": [...]} when tools were offered.
        tools = value.get("tools") or value.get("functions")
        if isinstance(tools, list):
            set_if_none(span, "tools", tools)
        value = value["messages"]
    if isinstance(value, list) and value and all(isinstance(m, dict) and "role" in m for m in value):
        return messages_from_otel(value)
    return None


def _output_messages(value: Any) -> list[dict[str, Any]] | None:
    if isinstance(value, dict) and "role" in value:
        return messages_from_otel([value])
    if isinstance(value, list) and value and all(isinstance(m, dict) and "role" in m for m in value):
        return messages_from_otel(value)
    return None


def _documents(value: Any) -> list[dict[str, Any]] | None:
    """Retriever output: LangChain documents (`page_content`), or `{content|text, id, score, metadata}`."""
    if isinstance(value, dict) and isinstance(value.get("documents"), list):
        value = value["documents"]
    if not isinstance(value, list) or not value:
        return None
    docs: list[dict[str, Any]] = []
    for item in value:
        if isinstance(item, str):
            docs.append({"id": None, "content": item, "score": None})
            continue
        if not isinstance(item, dict):
            continue
        metadata = item.get("metadata") if isinstance(item.get("metadata"), dict) else None
        doc: dict[str, Any] = {
            "id": as_str(item.get("id")) or (as_str(metadata.get("id")) if metadata else None),
            "content": item.get("page_content", item.get("content", item.get("text"))),
            "score": as_float(item.get("score")),
        }
        if metadata:
            doc["metadata"] = metadata
        docs.append(doc)
    return docs or None
