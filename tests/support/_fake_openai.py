"""OpenAI wire formats for the fake provider: chat completions, Responses, legacy completions,
embeddings, errors. Bodies follow api.openai.com field for field, so the real `openai` client parses them."""

from __future__ import annotations

import base64
import hashlib
import math
import re
import struct
from typing import Any

from ._fake_common import (
    Frame,
    IdFactory,
    Turn,
    Usage,
    count_tokens,
    openai_response_model,
    sse_data,
    sse_event,
)

DONE = Frame(b"data: [DONE]\n\n")
SERVICE_TIER = "default"


# --- errors -----------------------------------------------------------------------------------------------


def error_body(message: str, type_: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def error_response(scenario: str, model: str, retry_after_s: float) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Status, body and extra headers of the error OpenAI returns for an error scenario."""
    retry = {"retry-after": f"{retry_after_s:g}"}
    if scenario == "ratelimit":
        message = (
            f"Rate limit reached for {model} in organization org-fake on requests per min (RPM): "
            "Limit 500, Used 500, Requested 1. Please try again in 120ms. "
            "Visit https://platform.openai.com/account/rate-limits to learn more."
        )
        headers = retry | {
            "x-ratelimit-limit-requests": "500",
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": "120ms",
        }
        return 429, error_body(message, "requests", None, "rate_limit_exceeded"), headers
    if scenario == "ratelimit-tokens":
        message = (
            f"Rate limit reached for {model} in organization org-fake on tokens per min (TPM): "
            "Limit 30000, Used 29500, Requested 1200. Please try again in 1.4s. "
            "Visit https://platform.openai.com/account/rate-limits to learn more."
        )
        headers = retry | {
            "x-ratelimit-limit-tokens": "30000",
            "x-ratelimit-remaining-tokens": "500",
            "x-ratelimit-reset-tokens": "1.4s",
        }
        return 429, error_body(message, "tokens", None, "rate_limit_exceeded"), headers
    if scenario == "quota":
        message = (
            "You exceeded your current quota, please check your plan and billing details. For more "
            "information on this error, read the docs: "
            "https://platform.openai.com/docs/guides/error-codes/api-errors."
        )
        return 429, error_body(message, "insufficient_quota", None, "insufficient_quota"), {}
    if scenario == "error":
        message = "The server had an error while processing your request. Sorry about that!"
        return 500, error_body(message, "server_error"), {}
    if scenario == "overloaded":
        message = "The engine is currently overloaded, please try again later."
        return 503, error_body(message, "server_error"), {}
    if scenario == "bad-request":
        message = (
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead."
        )
        return 400, error_body(message, "invalid_request_error", "messages", "empty_array"), {}
    if scenario == "context-length":
        message = (
            "This model's maximum context length is 128000 tokens. However, your messages resulted in "
            "131072 tokens. Please reduce the length of the messages."
        )
        return 400, error_body(message, "invalid_request_error", "messages", "context_length_exceeded"), {}
    if scenario == "auth":
        message = (
            "Incorrect API key provided: sk-fake***0000. You can find your API key at "
            "https://platform.openai.com/account/api-keys."
        )
        return 401, error_body(message, "invalid_request_error", None, "invalid_api_key"), {}
    if scenario == "content-filter":
        message = (
            "Your request was rejected as a result of our safety system. Your prompt may contain text "
            "that is not allowed by our safety system."
        )
        return 400, error_body(message, "invalid_request_error", None, "content_policy_violation"), {}
    if scenario == "model-not-found":
        message = f"The model `{model}` does not exist or you do not have access to it."
        return 404, error_body(message, "invalid_request_error", None, "model_not_found"), {}
    raise ValueError(f"{scenario!r} is not an error scenario")


def stream_error_frame() -> Frame:
    """The in-band error a chat/completions stream carries when the server fails mid-answer."""
    return Frame(sse_data(error_body("The server had an error while processing your request.", "server_error")))


# --- chat completions -------------------------------------------------------------------------------------


def chat_usage(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": usage.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _finish_reason(turn: Turn) -> str:
    if turn.tool_call is not None:
        return "tool_calls"
    return "length" if turn.truncated else "stop"


def _chat_envelope(turn: Turn, completion_id: str, fingerprint: str, object_: str) -> dict[str, Any]:
    return {
        "id": completion_id,
        "object": object_,
        "created": turn.created,
        "model": openai_response_model(turn.requested_model),
        "service_tier": SERVICE_TIER,
        "system_fingerprint": fingerprint,
    }


def chat_completion(turn: Turn, ids: IdFactory) -> dict[str, Any]:
    """A `chat.completion` object."""
    message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None, "annotations": []}
    if turn.tool_call is not None:
        call = turn.tool_call
        message["tool_calls"] = [
            {
                "id": call.call_id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments_json},
            }
        ]
    else:
        message["content"] = turn.text
    body = _chat_envelope(turn, ids.chat_completion(), ids.fingerprint(), "chat.completion")
    body["choices"] = [{"index": 0, "message": message, "logprobs": None, "finish_reason": _finish_reason(turn)}]
    body["usage"] = chat_usage(turn.usage)
    return body


def chat_completion_frames(turn: Turn, ids: IdFactory, include_usage: bool) -> list[Frame]:
    """The `chat.completion.chunk` stream, ending with the usage chunk (if asked for) and `[DONE]`."""
    envelope = _chat_envelope(turn, ids.chat_completion(), ids.fingerprint(), "chat.completion.chunk")

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        body = dict(envelope)
        body["choices"] = [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]
        if include_usage:
            body["usage"] = None
        return body

    frames: list[Frame] = []
    if turn.tool_call is not None:
        call = turn.tool_call
        first = {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "index": 0,
                    "id": call.call_id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": ""},
                }
            ],
            "refusal": None,
        }
        frames.append(Frame(sse_data(chunk(first)), content=True))
        for piece in call.argument_chunks():
            delta = {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}
            frames.append(Frame(sse_data(chunk(delta)), content=True))
    else:
        frames.append(Frame(sse_data(chunk({"role": "assistant", "content": "", "refusal": None}))))
        frames.extend(Frame(sse_data(chunk({"content": piece})), content=True) for piece in turn.chunks)
    frames.append(Frame(sse_data(chunk({}, _finish_reason(turn)))))
    if include_usage:
        final = dict(envelope)
        final["choices"] = []
        final["usage"] = chat_usage(turn.usage)
        frames.append(Frame(sse_data(final)))
    frames.append(DONE)
    return frames


# --- legacy completions -----------------------------------------------------------------------------------


def _completion_usage(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
    }


def completion(turn: Turn, ids: IdFactory) -> dict[str, Any]:
    """A legacy `text_completion` object."""
    body = _chat_envelope(turn, ids.completion(), ids.fingerprint(), "text_completion")
    del body["service_tier"]
    body["choices"] = [
        {
            "text": turn.text,
            "index": 0,
            "logprobs": None,
            "finish_reason": "length" if turn.truncated else "stop",
        }
    ]
    body["usage"] = _completion_usage(turn.usage)
    return body


def completion_frames(turn: Turn, ids: IdFactory, include_usage: bool) -> list[Frame]:
    envelope = _chat_envelope(turn, ids.completion(), ids.fingerprint(), "text_completion")
    del envelope["service_tier"]

    def chunk(text: str, finish_reason: str | None) -> bytes:
        body = dict(envelope)
        body["choices"] = [{"text": text, "index": 0, "logprobs": None, "finish_reason": finish_reason}]
        if include_usage:
            body["usage"] = None
        return sse_data(body)

    frames = [Frame(chunk(piece, None), content=True) for piece in turn.chunks]
    frames.append(Frame(chunk("", "length" if turn.truncated else "stop")))
    if include_usage:
        final = dict(envelope)
        final["choices"] = []
        final["usage"] = _completion_usage(turn.usage)
        frames.append(Frame(sse_data(final)))
    frames.append(DONE)
    return frames


# --- Responses API ----------------------------------------------------------------------------------------


def responses_usage(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_tokens},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.input_tokens + usage.output_tokens,
    }


class ResponseBuilder:
    """Builds one Responses API answer: the final `response` object and its event stream share ids."""

    def __init__(self, turn: Turn, ids: IdFactory, request: dict[str, Any]) -> None:
        self.turn = turn
        self.request = request
        self.response_id = ids.response()
        if turn.tool_call is not None:
            self.item_id = ids.response_item("fc")
        else:
            self.item_id = ids.response_item("msg")

    def _text_part(self, text: str) -> dict[str, Any]:
        return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}

    def output_item(self, done: bool) -> dict[str, Any]:
        status = "completed" if done else "in_progress"
        call = self.turn.tool_call
        if call is not None:
            return {
                "id": self.item_id,
                "type": "function_call",
                "status": status,
                "arguments": call.arguments_json if done else "",
                "call_id": call.call_id,
                "name": call.name,
            }
        content = [self._text_part(self.turn.text)] if done else []
        return {
            "id": self.item_id,
            "type": "message",
            "status": status,
            "content": content,
            "role": "assistant",
        }

    def response(self, done: bool) -> dict[str, Any]:
        request = self.request
        incomplete = done and self.turn.truncated
        status = "in_progress"
        if done:
            status = "incomplete" if incomplete else "completed"
        tools = request.get("tools") or []
        return {
            "id": self.response_id,
            "object": "response",
            "created_at": self.turn.created,
            "status": status,
            "background": False,
            "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
            "instructions": request.get("instructions"),
            "max_output_tokens": request.get("max_output_tokens"),
            "max_tool_calls": None,
            "model": openai_response_model(self.turn.requested_model),
            "output": [self.output_item(done=True)] if done else [],
            "parallel_tool_calls": request.get("parallel_tool_calls", True),
            "previous_response_id": request.get("previous_response_id"),
            "reasoning": {"effort": None, "summary": None},
            "service_tier": SERVICE_TIER,
            "store": request.get("store", True),
            "temperature": request.get("temperature", 1.0),
            "text": {"format": {"type": "text"}, "verbosity": "medium"},
            "tool_choice": request.get("tool_choice", "auto"),
            "tools": tools,
            "top_logprobs": 0,
            "top_p": request.get("top_p", 1.0),
            "truncation": "disabled",
            "usage": responses_usage(self.turn.usage) if done else None,
            "user": request.get("user"),
            "metadata": request.get("metadata") or {},
        }

    def frames(self) -> list[Frame]:
        """The event sequence api.openai.com sends for a streamed response, with sequence numbers."""
        events: list[tuple[str, dict[str, Any], bool]] = []

        def add(name: str, body: dict[str, Any], content: bool = False) -> None:
            events.append((name, body, content))

        add("response.created", {"response": self.response(done=False)})
        add("response.in_progress", {"response": self.response(done=False)})
        add("response.output_item.added", {"output_index": 0, "item": self.output_item(done=False)})
        where = {"item_id": self.item_id, "output_index": 0}
        call = self.turn.tool_call
        if call is not None:
            for piece in call.argument_chunks():
                add("response.function_call_arguments.delta", where | {"delta": piece}, content=True)
            add("response.function_call_arguments.done", where | {"arguments": call.arguments_json})
        else:
            part_where = where | {"content_index": 0}
            add("response.content_part.added", part_where | {"part": self._text_part("")})
            for piece in self.turn.chunks:
                add("response.output_text.delta", part_where | {"delta": piece, "logprobs": []}, content=True)
            add("response.output_text.done", part_where | {"text": self.turn.text, "logprobs": []})
            add("response.content_part.done", part_where | {"part": self._text_part(self.turn.text)})
        add("response.output_item.done", {"output_index": 0, "item": self.output_item(done=True)})
        final = "response.incomplete" if self.turn.truncated else "response.completed"
        add(final, {"response": self.response(done=True)})
        return [
            Frame(sse_event(name, {"type": name} | body | {"sequence_number": number}), content=content)
            for number, (name, body, content) in enumerate(events)
        ]


def responses_stream_error_frame(sequence_number: int = 99) -> Frame:
    body = {
        "type": "error",
        "code": "server_error",
        "message": "The server had an error while processing your request.",
        "param": None,
        "sequence_number": sequence_number,
    }
    return Frame(sse_event("error", body))


# --- embeddings -------------------------------------------------------------------------------------------


def embedding_vector(text: str, dimensions: int) -> list[float]:
    """A unit vector for `text`, standing in for meaning by its words: each lower-cased word adds +1 or -1 at a
    dimension its hash picks, so texts sharing most words point almost the same way (a 30-word text with one
    word changed: cosine 29/30) and the same text always gets the same vector."""
    values = [0.0] * dimensions
    for word in re.findall(r"\w+", text.lower()):
        digest = hashlib.sha256(word.encode()).digest()
        values[int.from_bytes(digest[:4], "big") % dimensions] += 1.0 if digest[4] & 1 else -1.0
    norm = math.sqrt(sum(v * v for v in values))
    if norm == 0:
        values[0], norm = 1.0, 1.0
    return [round(v / norm, 6) for v in values]


def _embedding_inputs(raw: Any) -> list[str]:
    """`input` may be a string, a list of strings, a token list or a list of token lists."""
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and raw and all(isinstance(x, int) for x in raw):
        return [" ".join(map(str, raw))]
    if isinstance(raw, list):
        return [x if isinstance(x, str) else " ".join(map(str, x)) for x in raw]
    return [str(raw)]


def embeddings(request: dict[str, Any], default_dimensions: int) -> dict[str, Any]:
    """A `list` of `embedding` objects; honours `dimensions` and `encoding_format` (float or base64)."""
    inputs = _embedding_inputs(request.get("input", ""))
    dimensions = int(request.get("dimensions") or default_dimensions)
    as_base64 = request.get("encoding_format") == "base64"
    data = []
    for index, text in enumerate(inputs):
        vector = embedding_vector(text, dimensions)
        encoded: Any = vector
        if as_base64:
            encoded = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    tokens = sum(count_tokens(text) for text in inputs)
    return {
        "object": "list",
        "data": data,
        "model": request.get("model", ""),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def models_list(created: int) -> dict[str, Any]:
    names = ["gpt-4o", "gpt-4o-mini", "gpt-4.1", "o3-mini", "text-embedding-3-small"]
    return {
        "object": "list",
        "data": [{"id": name, "object": "model", "created": created, "owned_by": "system"} for name in names],
    }
