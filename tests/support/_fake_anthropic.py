"""Anthropic Messages wire formats for the fake provider: messages, their event stream, tool_use, errors.
Bodies follow what api.anthropic.com returns, so the real `anthropic` client parses them."""

from __future__ import annotations

from typing import Any

from ._fake_common import (
    Frame,
    IdFactory,
    Turn,
    Usage,
    anthropic_response_model,
    split_reply,
    sse_event,
)


def error_body(type_: str, message: str, request_id: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": type_, "message": message}, "request_id": request_id}


def error_response(
    scenario: str, model: str, retry_after_s: float, request_id: str
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Status, body and extra headers of the error Anthropic returns for an error scenario."""
    retry = {"retry-after": f"{retry_after_s:g}"}
    statuses: dict[str, tuple[int, str, str]] = {
        "ratelimit": (
            429,
            "rate_limit_error",
            "This request would exceed the rate limit for your organization of 50 requests per minute. "
            "For details, refer to: https://docs.claude.com/en/api/rate-limits.",
        ),
        "ratelimit-tokens": (
            429,
            "rate_limit_error",
            "This request would exceed the rate limit for your organization of 40,000 input tokens per "
            "minute. For details, refer to: https://docs.claude.com/en/api/rate-limits.",
        ),
        "quota": (
            400,
            "invalid_request_error",
            "Your credit balance is too low to access the Anthropic API. "
            "Please go to Plans & Billing to upgrade or purchase credits.",
        ),
        "error": (500, "api_error", "Internal server error"),
        "overloaded": (529, "overloaded_error", "Overloaded"),
        "bad-request": (400, "invalid_request_error", "messages: at least one message is required"),
        "context-length": (
            400,
            "invalid_request_error",
            "prompt is too long: 210000 tokens > 200000 maximum",
        ),
        "auth": (401, "authentication_error", "invalid x-api-key"),
        "content-filter": (400, "invalid_request_error", "Output blocked by content filtering policy"),
        "model-not-found": (404, "not_found_error", f"model: {model}"),
    }
    if scenario not in statuses:
        raise ValueError(f"{scenario!r} is not an error scenario")
    status, type_, message = statuses[scenario]
    headers: dict[str, str] = {}
    if status == 429:
        headers = retry | {
            "anthropic-ratelimit-requests-limit": "50",
            "anthropic-ratelimit-requests-remaining": "0" if scenario == "ratelimit" else "49",
            "anthropic-ratelimit-requests-reset": "2030-01-01T00:00:00Z",
        }
    return status, error_body(type_, message, request_id), headers


def stream_error_frame() -> Frame:
    """The in-band `error` event Anthropic sends when it fails mid-stream (typically overload)."""
    body = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    return Frame(sse_event("error", body))


def message_usage(usage: Usage) -> dict[str, Any]:
    """Anthropic's `input_tokens` excludes cache reads and writes, so the neutral total is split up."""
    uncached = max(0, usage.input_tokens - usage.cached_tokens - usage.cache_creation_tokens)
    return {
        "input_tokens": uncached,
        "cache_creation_input_tokens": usage.cache_creation_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
        "cache_creation": {
            "ephemeral_5m_input_tokens": usage.cache_creation_tokens,
            "ephemeral_1h_input_tokens": 0,
        },
        "output_tokens": usage.output_tokens,
        "service_tier": "standard",
    }


def tool_preamble(name: str) -> str:
    """The short text Claude writes before a tool_use block."""
    return f"I'll use the {name} tool."


def _stop_reason(turn: Turn) -> str:
    if turn.tool_call is not None:
        return "tool_use"
    return "max_tokens" if turn.truncated else "end_turn"


class MessageBuilder:
    """Builds one Messages API answer: the `message` object and its event stream share ids."""

    def __init__(self, turn: Turn, ids: IdFactory) -> None:
        self.turn = turn
        self.message_id = ids.anthropic_message()

    def _blocks(self) -> list[dict[str, Any]]:
        call = self.turn.tool_call
        if call is None:
            return [{"type": "text", "text": self.turn.text}]
        return [
            {"type": "text", "text": tool_preamble(call.name)},
            {"type": "tool_use", "id": call.call_id, "name": call.name, "input": call.arguments},
        ]

    def _envelope(self) -> dict[str, Any]:
        return {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": anthropic_response_model(self.turn.requested_model),
        }

    def message(self) -> dict[str, Any]:
        return self._envelope() | {
            "content": self._blocks(),
            "stop_reason": _stop_reason(self.turn),
            "stop_sequence": None,
            "usage": message_usage(self.turn.usage),
        }

    def frames(self) -> list[Frame]:
        """message_start, ping, one content block per part with its deltas, message_delta, message_stop."""
        start_usage = message_usage(self.turn.usage) | {"output_tokens": 1}
        start = self._envelope() | {
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": start_usage,
        }
        frames = [Frame(sse_event("message_start", {"type": "message_start", "message": start}))]
        call = self.turn.tool_call
        text_chunks = split_reply(tool_preamble(call.name)) if call is not None else self.turn.chunks
        frames.append(self._block_start(0, {"type": "text", "text": ""}))
        frames.append(Frame(sse_event("ping", {"type": "ping"})))
        frames.extend(self._delta(0, {"type": "text_delta", "text": piece}) for piece in text_chunks)
        frames.append(self._block_stop(0))
        if call is not None:
            tool_block = {"type": "tool_use", "id": call.call_id, "name": call.name, "input": {}}
            frames.append(self._block_start(1, tool_block))
            frames.append(self._delta(1, {"type": "input_json_delta", "partial_json": ""}))
            frames.extend(
                self._delta(1, {"type": "input_json_delta", "partial_json": piece}) for piece in call.argument_chunks()
            )
            frames.append(self._block_stop(1))
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": _stop_reason(self.turn), "stop_sequence": None},
            "usage": {"output_tokens": self.turn.usage.output_tokens},
        }
        frames.append(Frame(sse_event("message_delta", delta)))
        frames.append(Frame(sse_event("message_stop", {"type": "message_stop"})))
        return frames

    @staticmethod
    def _block_start(index: int, block: dict[str, Any]) -> Frame:
        body = {"type": "content_block_start", "index": index, "content_block": block}
        return Frame(sse_event("content_block_start", body))

    @staticmethod
    def _delta(index: int, delta: dict[str, Any]) -> Frame:
        body = {"type": "content_block_delta", "index": index, "delta": delta}
        return Frame(sse_event("content_block_delta", body), content=True)

    @staticmethod
    def _block_stop(index: int) -> Frame:
        return Frame(sse_event("content_block_stop", {"type": "content_block_stop", "index": index}))
