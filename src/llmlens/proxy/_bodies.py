"""Bodies the gateway reads: non-streamed answers (JSON) of OpenAI chat/responses/completions/embeddings and
Anthropic messages, and compressed request bodies, expanded within a byte limit."""

from __future__ import annotations

import json
from typing import Any

from llmlens.codec.compressed import InvalidCompressedBody, decompress_body
from llmlens.model import bounded_json

from ._call import CallResult, Operation, apply_anthropic_usage, apply_error, apply_openai_usage, text_of


def request_content(body: bytes, encoding: str | None, max_bytes: int) -> bytes | bytearray | None:
    """A request body with its Content-Encoding undone, to read the call from (the upstream still gets
    the body as sent). None when it has no encoding, or one that cannot be undone here: the call is
    then forwarded and recorded without its request details. Raises DecompressedTooLarge past
    `max_bytes`, found while expanding, so a small compressed body cannot take the server's memory."""
    if (encoding or "identity").strip().lower() in ("", "identity"):
        return None
    try:
        return decompress_body(body, encoding, max_bytes)
    except InvalidCompressedBody:
        return None


def read_body(operation: Operation, status: int, body: bytes | bytearray) -> CallResult:
    result = CallResult()
    try:
        doc = bounded_json(json.loads(body)) if body else None
    except (ValueError, UnicodeDecodeError, RecursionError):
        if status >= 400:
            result.error_message = body[:500].decode("utf-8", errors="replace") or None
        return result
    if not isinstance(doc, dict):
        return result
    if status >= 400 or doc.get("type") == "error" or isinstance(doc.get("error"), dict):
        apply_error(result, doc)
        return result
    result.response_id = doc.get("id") if isinstance(doc.get("id"), str) else None
    result.response_model = doc.get("model") if isinstance(doc.get("model"), str) else None
    if operation == "messages" or doc.get("type") == "message":
        _anthropic_message(result, doc)
    elif operation == "responses" or doc.get("object") == "response":
        read_response_object(result, doc)
    else:
        _openai_choices(result, doc)
        apply_openai_usage(result, doc.get("usage"))
    return result


def _openai_choices(result: CallResult, doc: dict[str, Any]) -> None:
    for choice in doc.get("choices") or []:
        if not isinstance(choice, dict):
            continue
        result.finish_reason = choice.get("finish_reason") or result.finish_reason
        message = choice.get("message")
        if isinstance(message, dict):
            if message.get("content"):
                result.text_parts.append(text_of(message["content"]))
            for call in message.get("tool_calls") or []:
                if not isinstance(call, dict):
                    continue
                function = call.get("function") or {}
                result.tool_calls.append(
                    {"id": call.get("id"), "name": function.get("name"), "arguments": function.get("arguments")}
                )
        elif isinstance(choice.get("text"), str):
            result.text_parts.append(choice["text"])


def read_response_object(result: CallResult, doc: dict[str, Any]) -> None:
    """An OpenAI Responses `response` object (also the payload of `response.completed`)."""
    result.response_id = doc.get("id") or result.response_id
    result.response_model = doc.get("model") or result.response_model
    for item in doc.get("output") or []:
        if not isinstance(item, dict):
            continue
        if item.get("type") == "message":
            result.text_parts.append(text_of(item.get("content")))
        elif item.get("type") == "function_call":
            result.tool_calls.append(
                {"id": item.get("call_id"), "name": item.get("name"), "arguments": item.get("arguments")}
            )
    status = doc.get("status")
    details = doc.get("incomplete_details")
    if status == "incomplete" and isinstance(details, dict):
        result.finish_reason = details.get("reason")
    elif isinstance(status, str):
        result.finish_reason = "tool_calls" if result.tool_calls else status
    if isinstance(doc.get("error"), dict):
        apply_error(result, doc["error"])
    apply_openai_usage(result, doc.get("usage"))


def _anthropic_message(result: CallResult, doc: dict[str, Any]) -> None:
    for block in doc.get("content") or []:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text":
            result.text_parts.append(str(block.get("text", "")))
        elif block.get("type") == "tool_use":
            result.tool_calls.append(
                {"id": block.get("id"), "name": block.get("name"), "arguments": json.dumps(block.get("input"))}
            )
    result.finish_reason = doc.get("stop_reason")
    apply_anthropic_usage(result, doc.get("usage"))
