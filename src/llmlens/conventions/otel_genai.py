"""OpenTelemetry GenAI semantic conventions, current names and the deprecated ones still sent.

Current: `gen_ai.provider.name`, `gen_ai.input.messages` / `gen_ai.output.messages` (JSON strings
on spans, structured values on log events) with typed parts. Deprecated: `gen_ai.system`,
`gen_ai.usage.prompt_tokens`, indexed `gen_ai.prompt.N.*` / `gen_ai.completion.N.*`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from llmlens.model import Span, SpanKind

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

_KIND_BY_OPERATION = {
    "chat": SpanKind.LLM,
    "text_completion": SpanKind.LLM,
    "generate_content": SpanKind.LLM,
    "completion": SpanKind.LLM,
    "embeddings": SpanKind.EMBEDDING,
    "embedding": SpanKind.EMBEDDING,
    "execute_tool": SpanKind.TOOL,
    "invoke_agent": SpanKind.AGENT,
    "create_agent": SpanKind.AGENT,
    "retrieval": SpanKind.RETRIEVAL,
}

_REQUEST_PREFIX = "gen_ai.request."
_OPENAI_REQUEST_PREFIX = "gen_ai.openai.request."


def detect(attrs: Mapping[str, Any]) -> bool:
    return any(key.startswith("gen_ai.") for key in attrs)


def kind_of(attrs: Mapping[str, Any]) -> SpanKind | None:
    op = attrs.get("gen_ai.operation.name")
    return _KIND_BY_OPERATION.get(op) if isinstance(op, str) else None


def apply(span: Span, attrs: Mapping[str, Any], consumed: set[str]) -> None:
    """Fill `span` from GenAI attributes; every key used is added to `consumed`."""
    take(attrs, consumed, "gen_ai.operation.name")
    set_if_none(span, "provider", as_str(take(attrs, consumed, "gen_ai.provider.name", "gen_ai.system")))
    set_if_none(span, "response_model", as_str(take(attrs, consumed, "gen_ai.response.model")))
    _usage(span, attrs, consumed)
    _request(span, attrs, consumed)
    reasons = take(attrs, consumed, "gen_ai.response.finish_reasons", "gen_ai.response.finish_reason")
    if isinstance(reasons, list):
        reasons = next((r for r in reasons if isinstance(r, str) and r), None)
    set_if_none(span, "finish_reason", as_str(reasons))
    ttft_s = as_float(take(attrs, consumed, "gen_ai.response.time_to_first_chunk"))
    if ttft_s is not None and ttft_s >= 0:
        set_if_none(span, "ttft_ms", ttft_s * 1000.0)
    set_if_none(span, "session_id", as_str(take(attrs, consumed, "gen_ai.conversation.id")))
    tools = parse_json(take(attrs, consumed, "gen_ai.tool.definitions"))
    if isinstance(tools, list):
        set_if_none(span, "tools", tools)
    _content(span, attrs, consumed)
    _tool_execution(span, attrs, consumed)
    _retrieval(span, attrs, consumed)


def _usage(span: Span, attrs: Mapping[str, Any], consumed: set[str]) -> None:
    pairs = (
        ("prompt_tokens", ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens")),
        ("completion_tokens", ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens")),
        ("total_tokens", ("gen_ai.usage.total_tokens",)),
        ("cached_tokens", ("gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens")),
        (
            "cache_write_tokens",
            ("gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.cache_creation_input_tokens"),
        ),
        ("reasoning_tokens", ("gen_ai.usage.reasoning.output_tokens", "gen_ai.usage.reasoning_tokens")),
    )
    for field_name, keys in pairs:
        set_if_none(span, field_name, as_count(take(attrs, consumed, *keys)))


def _request(span: Span, attrs: Mapping[str, Any], consumed: set[str]) -> None:
    params: dict[str, Any] = {}
    for key, value in attrs.items():
        if key.startswith(_REQUEST_PREFIX):
            params[key[len(_REQUEST_PREFIX) :]] = value
        elif key.startswith(_OPENAI_REQUEST_PREFIX):
            params.setdefault(key[len(_OPENAI_REQUEST_PREFIX) :], value)
        else:
            continue
        consumed.add(key)
    model = params.pop("model", None)
    set_if_none(span, "model", as_str(model))
    set_if_none(span, "temperature", as_float(params.get("temperature")))
    set_if_none(span, "max_tokens", as_count(params.get("max_tokens", params.get("max_completion_tokens"))))
    set_if_none(span, "streamed", as_bool(params.get("stream")))
    if params and span.request_params is None:
        span.request_params = params


def _content(span: Span, attrs: Mapping[str, Any], consumed: set[str]) -> None:
    system = take(attrs, consumed, "gen_ai.system_instructions")
    inputs = messages_from_otel(parse_json(take(attrs, consumed, "gen_ai.input.messages")))
    outputs = messages_from_otel(parse_json(take(attrs, consumed, "gen_ai.output.messages")))
    if inputs is None:
        inputs = _indexed_messages(indexed(attrs, "gen_ai.prompt.", consumed))
    if outputs is None:
        outputs = _indexed_messages(indexed(attrs, "gen_ai.completion.", consumed))
    # The oldest form: one JSON (or plain text) attribute for the whole prompt / completion.
    old_prompt = take(attrs, consumed, "gen_ai.prompt")
    old_completion = take(attrs, consumed, "gen_ai.completion")
    if inputs is None and old_prompt is not None:
        inputs = messages_from_otel(parse_json(old_prompt))
        if inputs is None:
            set_if_none(span, "prompt", as_str(old_prompt))
    if outputs is None and old_completion is not None:
        outputs = messages_from_otel(parse_json(old_completion))
        if outputs is None:
            set_if_none(span, "response", as_str(old_completion))
    system_message = _system_message(system)
    if system_message is not None:
        inputs = [system_message, *(inputs or [])]
    fill_content(span, inputs, outputs)


def _system_message(value: Any) -> dict[str, Any] | None:
    parsed = parse_json(value)
    if parsed is None and isinstance(value, str) and value:
        return {"role": "system", "content": value}
    if isinstance(parsed, dict):
        parsed = [parsed]
    if not isinstance(parsed, list) or not parsed:
        return None
    msg = _message_from_parts("system", parsed)
    return msg


def messages_from_otel(value: Any) -> list[dict[str, Any]] | None:
    """OTel `[{role, parts:[...], finish_reason}]` (or plain `[{role, content}]`) -> our message list."""
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        return None
    out: list[dict[str, Any]] = []
    for item in value:
        if not isinstance(item, dict):
            continue
        role = as_str(item.get("role")) or "user"
        parts = item.get("parts")
        msg = _message_from_parts(role, parts) if isinstance(parts, list) else _plain_message(role, item)
        reason = as_str(item.get("finish_reason"))
        if reason is not None:
            msg["finish_reason"] = reason
        name = as_str(item.get("name"))
        if name is not None:
            msg["name"] = name
        out.append(msg)
    return out or None


def _plain_message(role: str, item: Mapping[str, Any]) -> dict[str, Any]:
    msg: dict[str, Any] = {"role": role, "content": item.get("content")}
    calls = item.get("tool_calls")
    if isinstance(calls, list):
        msg["tool_calls"] = [c for c in (tool_call_from_openai(x) for x in calls) if c is not None]
    tool_call_id = as_str(item.get("tool_call_id") or item.get("id"))
    if tool_call_id is not None and role == "tool":
        msg["tool_call_id"] = tool_call_id
    return msg


def _message_from_parts(role: str, parts: list[Any]) -> dict[str, Any]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    other: list[Any] = []
    msg: dict[str, Any] = {"role": role}
    for part in parts:
        if not isinstance(part, dict):
            if isinstance(part, str):
                texts.append(part)
            continue
        ptype = part.get("type")
        if ptype in ("text", "reasoning") or (ptype is None and "content" in part):
            if ptype == "reasoning":
                other.append(part)
                continue
            content = part.get("content")
            texts.append(content if isinstance(content, str) else json.dumps(content, default=str))
        elif ptype == "tool_call":
            calls.append(
                {
                    "id": as_str(part.get("id")),
                    "name": as_str(part.get("name")),
                    "arguments": parse_arguments(part.get("arguments")),
                }
            )
        elif ptype == "tool_call_response":
            result = part.get("response", part.get("result"))
            texts.append(result if isinstance(result, str) else json.dumps(result, default=str))
            call_id = as_str(part.get("id"))
            if call_id is not None:
                msg["tool_call_id"] = call_id
        else:
            other.append(part)
    msg["content"] = "".join(texts) if texts else None
    if calls:
        msg["tool_calls"] = calls
    if other:
        msg["parts"] = other
    return msg


def tool_call_from_openai(call: Any) -> dict[str, Any] | None:
    """`{id, type, function:{name, arguments}}` or flat `{id, name, arguments}` -> `{id, name, arguments}`."""
    if not isinstance(call, dict):
        return None
    fn = call.get("function")
    source = fn if isinstance(fn, dict) else call
    return {
        "id": as_str(call.get("id")),
        "name": as_str(source.get("name")),
        "arguments": parse_arguments(source.get("arguments")),
    }


def _indexed_messages(rows: dict[int, dict[str, Any]]) -> list[dict[str, Any]] | None:
    """Rebuild `gen_ai.prompt.N.*` / `gen_ai.completion.N.*` rows into messages."""
    if not rows:
        return None
    out: list[dict[str, Any]] = []
    for row in rows.values():
        msg: dict[str, Any] = {"role": as_str(row.get("role")) or "user", "content": row.get("content")}
        calls = indexed(row, "tool_calls.", set())
        if calls:
            msg["tool_calls"] = [
                {
                    "id": as_str(c.get("id")),
                    "name": as_str(c.get("name")),
                    "arguments": parse_arguments(c.get("arguments")),
                }
                for c in calls.values()
            ]
        elif "function_call.name" in row:
            msg["tool_calls"] = [
                {
                    "id": None,
                    "name": as_str(row.get("function_call.name")),
                    "arguments": parse_arguments(row.get("function_call.arguments")),
                }
            ]
        for key in ("tool_call_id", "finish_reason", "name"):
            value = as_str(row.get(key))
            if value is not None:
                msg[key] = value
        out.append(msg)
    return out


def _tool_execution(span: Span, attrs: Mapping[str, Any], consumed: set[str]) -> None:
    set_if_none(span, "tool_name", as_str(take(attrs, consumed, "gen_ai.tool.name")))
    args = take(attrs, consumed, "gen_ai.tool.call.arguments")
    if args is not None:
        set_if_none(span, "tool_args", parse_arguments(args))
    result = take(attrs, consumed, "gen_ai.tool.call.result")
    if result is not None:
        set_if_none(span, "tool_result", parse_arguments(result))


def _retrieval(span: Span, attrs: Mapping[str, Any], consumed: set[str]) -> None:
    set_if_none(span, "retrieval_query", as_str(take(attrs, consumed, "gen_ai.retrieval.query.text")))
    docs = parse_json(take(attrs, consumed, "gen_ai.retrieval.documents"))
    if isinstance(docs, list):
        set_if_none(span, "documents", docs)
