"""OpenInference (Arize Phoenix) conventions: `openinference.span.kind`, `llm.*`, flattened lists.

OpenInference flattens lists into indexed keys (`llm.input_messages.0.message.role`). Its
`llm.model_name` is the *response* model; the request model is only in `llm.invocation_parameters`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmlens.model import Span, SpanKind

from ._record import OtlpEvent
from ._values import (
    as_bool,
    as_count,
    as_float,
    as_str,
    fill_content,
    indexed,
    parse_arguments,
    parse_json,
    set_if_none,
    take,
)
from .otel_genai import messages_from_otel, tool_call_from_openai

FIRST_TOKEN_EVENT = "First Token Stream Event"

_KIND = {
    "LLM": SpanKind.LLM,
    "TOOL": SpanKind.TOOL,
    "RETRIEVER": SpanKind.RETRIEVAL,
    "RERANKER": SpanKind.RETRIEVAL,
    "EMBEDDING": SpanKind.EMBEDDING,
    "CHAIN": SpanKind.CHAIN,
    "AGENT": SpanKind.AGENT,
}


def detect(attrs: Mapping[str, Any]) -> bool:
    return "openinference.span.kind" in attrs or any(
        k.startswith(("llm.input_messages.", "llm.token_count.")) for k in attrs
    )


def kind_of(attrs: Mapping[str, Any]) -> SpanKind | None:
    value = attrs.get("openinference.span.kind")
    if not isinstance(value, str):
        return None
    return _KIND.get(value.upper(), SpanKind.OTHER)


def apply(span: Span, attrs: Mapping[str, Any], consumed: set[str], events: list[OtlpEvent], start_ns: int) -> None:
    """Fill `span` from OpenInference attributes and events; every key used goes into `consumed`."""
    kind = kind_of(attrs)
    take(attrs, consumed, "openinference.span.kind")
    set_if_none(span, "provider", as_str(take(attrs, consumed, "llm.provider", "llm.system")))
    _invocation(span, attrs, consumed)
    set_if_none(span, "model", as_str(take(attrs, consumed, "llm.request.model_name")))
    set_if_none(span, "response_model", as_str(take(attrs, consumed, "llm.response.model_name", "llm.model_name")))
    _tokens(span, attrs, consumed)
    set_if_none(span, "finish_reason", as_str(take(attrs, consumed, "llm.finish_reason")))
    _tools(span, attrs, consumed)
    _template(span, attrs, consumed)
    _metadata(span, attrs, consumed)
    _messages(span, attrs, consumed, kind)
    if kind is SpanKind.TOOL:
        _tool(span, attrs, consumed)
    _documents(span, attrs, consumed)
    _embeddings(span, attrs, consumed)
    for event in events:
        if event.name == FIRST_TOKEN_EVENT and event.time_ns >= start_ns:
            set_if_none(span, "ttft_ms", (event.time_ns - start_ns) / 1e6)
            set_if_none(span, "streamed", True)


def _invocation(span: Span, attrs: Mapping[str, Any], consumed: set[str]) -> None:
    params = parse_json(take(attrs, consumed, "llm.invocation_parameters"))
    if not isinstance(params, dict):
        return
    set_if_none(span, "model", as_str(params.get("model")))
    set_if_none(span, "temperature", as_float(params.get("temperature")))
    set_if_none(span, "max_tokens", as_count(params.get("max_tokens", params.get("max_completion_tokens"))))
    # The parameters are the request as sent: no `stream` key means the provider default, not streamed.
    set_if_none(span, "streamed", as_bool(params.get("stream", False)))
    set_if_none(span, "request_params", {k: v for k, v in params.items() if k != "model"} or None)


def _tokens(span: Span, attrs: Mapping[str, Any], consumed: set[str]) -> None:
    pairs = (
        ("prompt_tokens", "llm.token_count.prompt"),
        ("completion_tokens", "llm.token_count.completion"),
        ("total_tokens", "llm.token_count.total"),
        ("cached_tokens", "llm.token_count.prompt_details.cache_read"),
        ("cache_write_tokens", "llm.token_count.prompt_details.cache_write"),
        ("reasoning_tokens", "llm.token_count.completion_details.reasoning"),
    )
    for field_name, key in pairs:
        set_if_none(span, field_name, as_count(take(attrs, consumed, key)))


def _tools(span: Span, attrs: Mapping[str, Any], consumed: set[str]) -> None:
    rows = indexed(attrs, "llm.tools.", consumed)
    tools = [parse_arguments(row.get("tool.json_schema")) for row in rows.values() if "tool.json_schema" in row]
    if tools:
        set_if_none(span, "tools", tools)


def _template(span: Span, attrs: Mapping[str, Any], consumed: set[str]) -> None:
    set_if_none(span, "template_version", as_str(take(attrs, consumed, "llm.prompt_template.version")))
    variables = take(attrs, consumed, "llm.prompt_template.variables")
    if variables is not None:
        set_if_none(span, "variables", parse_arguments(variables))
    set_if_none(span, "template_id", as_str(take(attrs, consumed, "prompt.id")))
    # The template text itself has no column: it stays in `attributes` as `llm.prompt_template.template`.


def _metadata(span: Span, attrs: Mapping[str, Any], consumed: set[str]) -> None:
    metadata = parse_json(take(attrs, consumed, "metadata"))
    if isinstance(metadata, dict):
        for key, value in metadata.items():
            span.metadata.setdefault(str(key), value)
    tags = take(attrs, consumed, "tag.tags")
    if isinstance(tags, list):
        span.metadata.setdefault("tags", tags)


def _messages(span: Span, attrs: Mapping[str, Any], consumed: set[str], kind: SpanKind | None) -> None:
    inputs = _indexed_messages(indexed(attrs, "llm.input_messages.", consumed))
    outputs = _indexed_messages(indexed(attrs, "llm.output_messages.", consumed))
    raw_in = take(attrs, consumed, "input.value")
    raw_out = take(attrs, consumed, "output.value")
    take(attrs, consumed, "input.mime_type", "output.mime_type")
    if kind in (SpanKind.LLM, None):
        # input.value / output.value hold the raw request and response: parsed only as a fallback.
        if inputs is None:
            request = parse_json(raw_in)
            if isinstance(request, dict):
                inputs = messages_from_otel(request.get("messages"))
            elif request is None:
                set_if_none(span, "prompt", as_str(raw_in))
        # The raw response is also the only place OpenInference keeps the provider's id of the answer,
        # which feedback refers to; it is parsed when it may hold one.
        response = parse_json(raw_out) if outputs is None or _may_hold_id(raw_out) else None
        if outputs is None:
            if isinstance(response, dict) and isinstance(response.get("choices"), list):
                outputs = _choices(response["choices"])
            elif response is None:
                set_if_none(span, "response", as_str(raw_out))
        set_if_none(span, "message_id", _response_id(response))
        fill_content(span, inputs, outputs)
    elif kind is SpanKind.TOOL:
        set_if_none(span, "tool_args", parse_arguments(raw_in))
        set_if_none(span, "tool_result", parse_arguments(raw_out))
    elif kind is SpanKind.RETRIEVAL:
        set_if_none(span, "retrieval_query", as_str(raw_in))
    else:
        fill_content(span, inputs, outputs)
        set_if_none(span, "prompt", as_str(raw_in))
        set_if_none(span, "response", as_str(raw_out))


def _may_hold_id(raw: Any) -> bool:
    return (isinstance(raw, str) and '"id"' in raw) or isinstance(raw, dict)


def _response_id(response: Any) -> str | None:
    """The provider's id in a raw response: the top-level `id` of an OpenAI answer (chat, completions,
    Responses) or an Anthropic message, or the `llm_output.id` of a LangChain result."""
    if not isinstance(response, dict):
        return None
    llm_output = response.get("llm_output")
    if isinstance(llm_output, dict):
        return as_str(llm_output.get("id"))
    if "choices" in response or "output" in response or response.get("type") == "message":
        return as_str(response.get("id"))
    return None


def _choices(choices: list[Any]) -> list[dict[str, Any]] | None:
    out: list[dict[str, Any]] = []
    for choice in choices:
        if not isinstance(choice, dict) or not isinstance(choice.get("message"), dict):
            continue
        msgs = messages_from_otel([{**choice["message"], "finish_reason": choice.get("finish_reason")}])
        if msgs:
            out.extend(msgs)
    return out or None


def _indexed_messages(rows: dict[int, dict[str, Any]]) -> list[dict[str, Any]] | None:
    if not rows:
        return None
    out: list[dict[str, Any]] = []
    for row in rows.values():
        msg: dict[str, Any] = {"role": as_str(row.get("message.role")) or "user"}
        content = row.get("message.content")
        if content is None:
            parts = indexed(row, "message.contents.", set())
            texts = [
                as_str(p.get("message_content.text")) or ""
                for p in parts.values()
                if p.get("message_content.type", "text") == "text"
            ]
            content = "".join(texts) if texts else None
        msg["content"] = content
        calls = indexed(row, "message.tool_calls.", set())
        if calls:
            msg["tool_calls"] = [
                {
                    "id": as_str(c.get("tool_call.id")),
                    "name": as_str(c.get("tool_call.function.name")),
                    "arguments": parse_arguments(c.get("tool_call.function.arguments")),
                }
                for c in calls.values()
            ]
        elif "message.function_call_name" in row:
            msg["tool_calls"] = [
                tool_call_from_openai(
                    {
                        "name": row.get("message.function_call_name"),
                        "arguments": row.get("message.function_call_arguments_json"),
                    }
                )
            ]
        for src, dst in (("message.tool_call_id", "tool_call_id"), ("message.name", "name")):
            value = as_str(row.get(src))
            if value is not None:
                msg[dst] = value
        out.append(msg)
    return out


def _tool(span: Span, attrs: Mapping[str, Any], consumed: set[str]) -> None:
    set_if_none(span, "tool_name", as_str(take(attrs, consumed, "tool.name")))
    params = take(attrs, consumed, "tool.parameters")
    if params is not None and span.tools is None:
        span.tools = [parse_arguments(params)]


def _documents(span: Span, attrs: Mapping[str, Any], consumed: set[str]) -> None:
    rows = indexed(attrs, "retrieval.documents.", consumed)
    if not rows:
        rows = indexed(attrs, "reranker.output_documents.", consumed)
        set_if_none(span, "retrieval_query", as_str(take(attrs, consumed, "reranker.query")))
    docs = []
    for row in rows.values():
        doc = {
            "id": as_str(row.get("document.id")),
            "content": row.get("document.content"),
            "score": as_float(row.get("document.score")),
        }
        metadata = row.get("document.metadata")
        if metadata is not None:
            doc["metadata"] = parse_arguments(metadata)
        docs.append(doc)
    if docs:
        set_if_none(span, "documents", docs)


def _embeddings(span: Span, attrs: Mapping[str, Any], consumed: set[str]) -> None:
    set_if_none(span, "model", as_str(take(attrs, consumed, "embedding.model_name")))
    params = parse_json(take(attrs, consumed, "embedding.invocation_parameters"))
    if isinstance(params, dict):
        set_if_none(span, "model", as_str(params.get("model")))
        set_if_none(span, "request_params", {k: v for k, v in params.items() if k != "model"} or None)
    rows = indexed(attrs, "embedding.embeddings.", consumed)  # vectors are dropped: too big to keep
    texts = [t for t in (as_str(r.get("embedding.text")) for r in rows.values()) if t is not None]
    if texts:
        set_if_none(span, "prompt", "\n".join(texts))
