"""OpenAI: chat completions, legacy completions and the Responses API become `llm` spans.

Sync and async, streaming and not, `.create`, `.parse` and the `.stream()` helpers (which call
`.create`). Patches the resource classes (every client) or the resources of one client.
"""

from __future__ import annotations

from typing import Any

from ._common import (
    LLMCall,
    content_text,
    flatten_messages,
    get,
    given,
    make_async_wrapper,
    make_sync_wrapper,
)
from ._patching import patch_method, unpatch_group

_GROUP = "openai"


def _usage_chat(ev: dict[str, Any], usage: Any) -> None:
    if usage is None:
        return
    for key, attr in (
        ("prompt_tokens", "prompt_tokens"),
        ("completion_tokens", "completion_tokens"),
        ("total_tokens", "total_tokens"),
    ):
        value = get(usage, attr)
        if isinstance(value, int):
            ev[key] = value
    cached = get(get(usage, "prompt_tokens_details"), "cached_tokens")
    if isinstance(cached, int):
        ev["cached_tokens"] = cached
    reasoning = get(get(usage, "completion_tokens_details"), "reasoning_tokens")
    if isinstance(reasoning, int):
        ev["reasoning_tokens"] = reasoning


def _usage_responses(ev: dict[str, Any], usage: Any) -> None:
    if usage is None:
        return
    for key, attr in (
        ("prompt_tokens", "input_tokens"),
        ("completion_tokens", "output_tokens"),
        ("total_tokens", "total_tokens"),
    ):
        value = get(usage, attr)
        if isinstance(value, int):
            ev[key] = value
    cached = get(get(usage, "input_tokens_details"), "cached_tokens")
    if isinstance(cached, int):
        ev["cached_tokens"] = cached
    reasoning = get(get(usage, "output_tokens_details"), "reasoning_tokens")
    if isinstance(reasoning, int):
        ev["reasoning_tokens"] = reasoning


def _identity(call: LLMCall, response: Any) -> None:
    response_id = get(response, "id")
    if isinstance(response_id, str) and response_id:
        call.event["message_id"] = response_id
    model = get(response, "model")
    if isinstance(model, str) and model:
        call.event["response_model"] = model


class ChatCall(LLMCall):
    provider = "openai"
    operation = "chat"

    def __init__(self, kwargs: dict[str, Any]) -> None:
        self.text_parts: list[str] = []
        self.tool_calls: dict[int, dict[str, Any]] = {}
        self.finish_reason: Any = None
        super().__init__(kwargs)

    def record_input(self, kwargs: dict[str, Any]) -> None:
        messages: Any = kwargs.get("messages")
        if given(messages):
            messages = list(messages)
            self.event["input_messages"] = messages
            prompt = flatten_messages(messages)
            if prompt is not None:
                self.event["prompt"] = prompt

    def record_response(self, response: Any) -> None:
        if get(response, "choices") is None:
            return  # a raw or streaming-response wrapper: only timing is known
        _identity(self, response)
        _usage_chat(self.event, get(response, "usage"))
        choices = get(response, "choices") or []
        if choices:
            message = get(choices[0], "message")
            tool_calls = [
                {
                    "id": get(tc, "id"),
                    "name": get(get(tc, "function"), "name"),
                    "arguments": get(get(tc, "function"), "arguments"),
                }
                for tc in (get(message, "tool_calls") or [])
            ]
            self.set_output(content_text(get(message, "content")), tool_calls or None)
            reason = get(choices[0], "finish_reason")
            self.set_finish_reason(reason, reason == "content_filter")

    def record_chunk(self, chunk: Any) -> None:
        if "message_id" not in self.event:
            _identity(self, chunk)
        usage = get(chunk, "usage")
        if usage is not None:
            _usage_chat(self.event, usage)
        for choice in get(chunk, "choices") or []:
            if get(choice, "index", 0) != 0:
                continue
            delta = get(choice, "delta")
            content = get(delta, "content")
            if content:
                self.mark_first_token()
                self.text_parts.append(content)
            for tc in get(delta, "tool_calls") or []:
                self.mark_first_token()
                index = get(tc, "index", 0)
                slot = self.tool_calls.setdefault(index, {"id": None, "name": None, "arguments": ""})
                if get(tc, "id"):
                    slot["id"] = get(tc, "id")
                function = get(tc, "function")
                if get(function, "name"):
                    slot["name"] = get(function, "name")
                if get(function, "arguments"):
                    slot["arguments"] += get(function, "arguments")
            reason = get(choice, "finish_reason")
            if reason:
                self.finish_reason = reason

    def record_stream_end(self) -> None:
        tool_calls = [self.tool_calls[i] for i in sorted(self.tool_calls)]
        self.set_output("".join(self.text_parts) if self.text_parts else None, tool_calls or None)
        self.set_finish_reason(self.finish_reason, self.finish_reason == "content_filter")


class CompletionCall(ChatCall):
    operation = "text_completion"

    def record_input(self, kwargs: dict[str, Any]) -> None:
        prompt = kwargs.get("prompt")
        if isinstance(prompt, str):
            self.event["prompt"] = prompt
        elif given(prompt):
            self.event["input_messages"] = [{"role": "user", "content": prompt}]

    def record_response(self, response: Any) -> None:
        if get(response, "choices") is None:
            return
        _identity(self, response)
        _usage_chat(self.event, get(response, "usage"))
        choices = get(response, "choices") or []
        if choices:
            self.set_output(get(choices[0], "text"), None)
            reason = get(choices[0], "finish_reason")
            self.set_finish_reason(reason, reason == "content_filter")

    def record_chunk(self, chunk: Any) -> None:
        if "message_id" not in self.event:
            _identity(self, chunk)
        usage = get(chunk, "usage")
        if usage is not None:
            _usage_chat(self.event, usage)
        for choice in get(chunk, "choices") or []:
            if get(choice, "index", 0) != 0:
                continue
            text = get(choice, "text")
            if text:
                self.mark_first_token()
                self.text_parts.append(text)
            if get(choice, "finish_reason"):
                self.finish_reason = get(choice, "finish_reason")


class ResponsesCall(LLMCall):
    provider = "openai"
    operation = "responses"

    def __init__(self, kwargs: dict[str, Any]) -> None:
        self.text_parts: list[str] = []
        self.final: Any = None
        super().__init__(kwargs)

    def record_input(self, kwargs: dict[str, Any]) -> None:
        messages: list[Any] = []
        instructions = kwargs.get("instructions")
        if isinstance(instructions, str):
            messages.append({"role": "system", "content": instructions})
        items: Any = kwargs.get("input")
        if isinstance(items, str):
            messages.append({"role": "user", "content": items})
        elif given(items):
            messages.extend(items)
        if messages:
            self.event["input_messages"] = messages
            prompt = flatten_messages(messages)
            if prompt is not None:
                self.event["prompt"] = prompt

    def record_response(self, response: Any) -> None:
        if get(response, "output") is None:
            return
        _identity(self, response)
        _usage_responses(self.event, get(response, "usage"))
        texts: list[str] = []
        tool_calls: list[dict[str, Any]] = []
        for item in get(response, "output") or []:
            item_type = get(item, "type")
            if item_type == "message":
                for part in get(item, "content") or []:
                    if get(part, "type") == "output_text" and isinstance(get(part, "text"), str):
                        texts.append(get(part, "text"))
            elif item_type == "function_call":
                tool_calls.append(
                    {
                        "id": get(item, "call_id"),
                        "name": get(item, "name"),
                        "arguments": get(item, "arguments"),
                    }
                )
        text = "".join(texts) if texts else ("".join(self.text_parts) if self.text_parts else None)
        self.set_output(text, tool_calls or None)
        status = get(response, "status")
        reason = get(get(response, "incomplete_details"), "reason") or status
        self.set_finish_reason(reason, reason == "content_filter")
        error = get(response, "error")
        if error is not None and status == "failed":
            self.span.set_error(str(get(error, "message") or error), "server_error")

    def record_chunk(self, event: Any) -> None:
        event_type = get(event, "type")
        if event_type == "response.output_text.delta":
            self.mark_first_token()
            delta = get(event, "delta")
            if isinstance(delta, str):
                self.text_parts.append(delta)
        elif event_type == "response.function_call_arguments.delta":
            self.mark_first_token()
        elif event_type in ("response.created", "response.in_progress"):
            _identity(self, get(event, "response"))
        elif event_type in ("response.completed", "response.incomplete", "response.failed"):
            self.final = get(event, "response")

    def record_stream_end(self) -> None:
        if self.final is not None:
            self.record_response(self.final)
        elif self.text_parts:
            self.set_output("".join(self.text_parts), None)


def _targets() -> list[tuple[Any, str, type[LLMCall], bool]]:
    from openai.resources.chat.completions import AsyncCompletions as AsyncChat
    from openai.resources.chat.completions import Completions as Chat
    from openai.resources.completions import AsyncCompletions, Completions
    from openai.resources.responses import AsyncResponses, Responses

    return [
        (Chat, "create", ChatCall, False),
        (Chat, "parse", ChatCall, False),
        (AsyncChat, "create", ChatCall, True),
        (AsyncChat, "parse", ChatCall, True),
        (Completions, "create", CompletionCall, False),
        (AsyncCompletions, "create", CompletionCall, True),
        (Responses, "create", ResponsesCall, False),
        (Responses, "parse", ResponsesCall, False),
        (AsyncResponses, "create", ResponsesCall, True),
        (AsyncResponses, "parse", ResponsesCall, True),
    ]


def _client_resource(client: Any, cls: type) -> Any:
    for path in (("chat", "completions"), ("completions",), ("responses",)):
        obj = client
        for part in path:
            obj = getattr(obj, part, None)
        if isinstance(obj, cls):
            return obj
    return None


def instrument_openai(client: Any = None) -> None:
    """Patch the OpenAI resource classes, or only the resources of `client`."""
    import openai

    stream_types = (openai.Stream,)
    async_stream_types = (openai.AsyncStream,)
    for cls, method, call_type, is_async in _targets():
        if not hasattr(cls, method):
            continue
        owner = cls if client is None else _client_resource(client, cls)
        if owner is None:
            continue
        make = make_async_wrapper if is_async else make_sync_wrapper
        patch_method(_GROUP, owner, method, make(call_type, stream_types, async_stream_types))


def uninstrument_openai() -> None:
    unpatch_group(_GROUP)
