"""What the gateway learns about one call: from the request body, and from the answer (JSON or stream)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from llmlens.model import bounded_json

Operation = Literal["chat", "responses", "completions", "embeddings", "messages", "other"]

# Fields that become their own span columns rather than request_params.
_CONTENT_KEYS = frozenset({"messages", "input", "prompt", "system", "tools", "instructions"})


def operation_for(path: str) -> Operation:
    tail = path.rstrip("/")
    if tail.endswith("chat/completions"):
        return "chat"
    if tail.endswith("/responses") or tail == "responses":
        return "responses"
    if tail.endswith("/completions") or tail == "completions":
        return "completions"
    if tail.endswith("embeddings"):
        return "embeddings"
    if tail.endswith("messages"):
        return "messages"
    return "other"


def text_of(content: Any) -> str:
    """Plain text of message content: a string, or a list of parts/blocks carrying text."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(t for t in (text_of(part) for part in content) if t)
    if isinstance(content, dict):
        for key in ("text", "content", "input_text", "output_text"):
            if key in content:
                return text_of(content[key])
    return ""


@dataclass(slots=True)
class CallRequest:
    """The request body, read for the span: model, parameters, messages, tools."""

    operation: Operation
    model: str | None = None
    stream: bool = False
    temperature: float | None = None
    max_tokens: int | None = None
    request_params: dict[str, Any] | None = None
    tools: Any = None
    input_messages: list[dict[str, Any]] | None = None
    prompt: str | None = None


def read_request(operation: Operation, body: bytes | bytearray) -> CallRequest:
    call = CallRequest(operation=operation)
    try:
        # Bounded: request parameters and messages are stored, and walked by redaction.
        doc = bounded_json(json.loads(body)) if body else None
    except (ValueError, UnicodeDecodeError, RecursionError):
        doc = None
    if not isinstance(doc, dict):
        return call
    model = doc.get("model")
    call.model = model if isinstance(model, str) else None
    call.stream = doc.get("stream") is True
    temperature = doc.get("temperature")
    if isinstance(temperature, int | float) and not isinstance(temperature, bool):
        try:
            call.temperature = float(temperature)
        except OverflowError:  # an int beyond any float is no temperature
            call.temperature = None
    for key in ("max_completion_tokens", "max_tokens", "max_output_tokens"):
        value = doc.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            call.max_tokens = value
            break
    call.request_params = {k: v for k, v in doc.items() if k not in _CONTENT_KEYS}
    call.tools = doc.get("tools")
    messages: list[dict[str, Any]] = []
    if operation == "messages" and doc.get("system") is not None:
        messages.append({"role": "system", "content": doc["system"]})
    if operation == "responses" and doc.get("instructions") is not None:
        messages.append({"role": "system", "content": doc["instructions"]})
    raw = doc.get("messages") if operation in ("chat", "messages") else doc.get("input")
    if operation == "completions":
        raw = doc.get("prompt")
    if isinstance(raw, str):
        messages.append({"role": "user", "content": raw})
    elif isinstance(raw, list):
        if operation == "embeddings" or all(not isinstance(m, dict) for m in raw):
            messages.extend({"role": "user", "content": m} for m in raw if isinstance(m, str))
        else:
            messages.extend(m for m in raw if isinstance(m, dict))
    if messages:
        call.input_messages = messages
        call.prompt = "\n".join(t for t in (text_of(m.get("content")) for m in messages) if t) or None
    return call


@dataclass(slots=True)
class CallResult:
    """What the answer said: ids, text, tool calls, usage, or the error it carried."""

    response_id: str | None = None
    response_model: str | None = None
    text_parts: list[str] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    cached_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None
    error_code: str | None = None  # the provider's error type/code, e.g. `rate_limit_exceeded`
    error_message: str | None = None
    first_content_chunk: int | None = None  # index of the stream chunk that carried the first token

    @property
    def text(self) -> str:
        return "".join(self.text_parts)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def apply_openai_usage(result: CallResult, usage: Any) -> None:
    """Chat/completions (`prompt_tokens`) and Responses (`input_tokens`) usage; OpenAI's shape."""
    if not isinstance(usage, dict):
        return
    result.prompt_tokens = _int(usage.get("prompt_tokens", usage.get("input_tokens")))
    result.completion_tokens = _int(usage.get("completion_tokens", usage.get("output_tokens")))
    result.total_tokens = _int(usage.get("total_tokens"))
    details = usage.get("prompt_tokens_details") or usage.get("input_tokens_details")
    if isinstance(details, dict):
        result.cached_tokens = _int(details.get("cached_tokens"))
    details = usage.get("completion_tokens_details") or usage.get("output_tokens_details")
    if isinstance(details, dict):
        result.reasoning_tokens = _int(details.get("reasoning_tokens"))


def apply_anthropic_usage(result: CallResult, usage: Any) -> None:
    """Anthropic's usage: `input_tokens` excludes cache reads and writes (see llmlens.pricing)."""
    if not isinstance(usage, dict):
        return
    for key, attr in (
        ("input_tokens", "prompt_tokens"),
        ("output_tokens", "completion_tokens"),
        ("cache_read_input_tokens", "cached_tokens"),
        ("cache_creation_input_tokens", "cache_write_tokens"),
    ):
        value = _int(usage.get(key))
        if value is not None:
            setattr(result, attr, value)


def apply_error(result: CallResult, doc: Any) -> None:
    """OpenAI `{"error": {...}}`, Anthropic `{"type": "error", "error": {...}}`, Responses `error` events."""
    if not isinstance(doc, dict):
        return
    error: dict[str, Any] = doc["error"] if isinstance(doc.get("error"), dict) else doc
    code = error.get("code") or error.get("type")
    result.error_code = str(code) if code else None
    message = error.get("message")
    result.error_message = str(message) if message else None
