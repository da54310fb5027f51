"""Anthropic: `messages.create` (streaming or not) and `messages.stream()` become `llm` spans.

Token counts are Anthropic's, as llmlens keeps them for every Anthropic call (see `llmlens.pricing`):
`prompt_tokens` is the uncached input (`input_tokens`), `cached_tokens` the cache reads and
`cache_write_tokens` the cache writes beside it; `total_tokens` counts all of them and the output.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from .. import _state
from ._common import (
    LLMCall,
    flatten_messages,
    get,
    given,
    make_async_wrapper,
    make_sync_wrapper,
    settle,
    start_call,
)
from ._patching import patch_method, unpatch_group

_GROUP = "anthropic"
_REFUSAL = "refusal"


class MessagesCall(LLMCall):
    provider = "anthropic"
    operation = "chat"

    def __init__(self, kwargs: dict[str, Any]) -> None:
        self.blocks: dict[int, dict[str, Any]] = {}
        self.stop_reason: Any = None
        self.usage: dict[str, int] = {}
        super().__init__(kwargs)

    def record_input(self, kwargs: dict[str, Any]) -> None:
        messages: list[Any] = []
        system = kwargs.get("system")
        if given(system):
            messages.append({"role": "system", "content": system})
        if given(kwargs.get("messages")):
            messages.extend(kwargs["messages"])
        if messages:
            self.event["input_messages"] = messages
            prompt = flatten_messages(messages)
            if prompt is not None:
                self.event["prompt"] = prompt

    def _apply_usage(self, usage: Any) -> None:
        for attr in (
            "input_tokens",
            "output_tokens",
            "cache_read_input_tokens",
            "cache_creation_input_tokens",
        ):
            value = get(usage, attr)
            if isinstance(value, int):
                self.usage[attr] = value
        u = self.usage
        ev = self.event
        cached = u.get("cache_read_input_tokens")
        written = u.get("cache_creation_input_tokens")
        if "input_tokens" in u:
            # The price book reads an Anthropic call's cache tokens as beside its prompt tokens.
            ev["prompt_tokens"] = u["input_tokens"]
        if cached is not None:
            ev["cached_tokens"] = cached
        if written is not None:
            ev["cache_write_tokens"] = written
        if "output_tokens" in u:
            ev["completion_tokens"] = u["output_tokens"]
        if "prompt_tokens" in ev and "completion_tokens" in ev:
            ev["total_tokens"] = ev["prompt_tokens"] + (cached or 0) + (written or 0) + ev["completion_tokens"]

    def _identity(self, message: Any) -> None:
        message_id = get(message, "id")
        if isinstance(message_id, str) and message_id:
            self.event["message_id"] = message_id
        model = get(message, "model")
        if isinstance(model, str) and model:
            self.event["response_model"] = model

    def record_response(self, response: Any) -> None:
        if get(response, "content") is None:
            return  # a raw-response wrapper: only timing is known
        self._identity(response)
        self._apply_usage(get(response, "usage"))
        texts: list[str] = []
        tool_calls: list[dict[str, Any]] = []
        for block in get(response, "content") or []:
            block_type = get(block, "type")
            if block_type == "text":
                texts.append(get(block, "text") or "")
            elif block_type == "tool_use":
                tool_calls.append(
                    {"id": get(block, "id"), "name": get(block, "name"), "arguments": get(block, "input")}
                )
        self.set_output("".join(texts) if texts else None, tool_calls or None)
        reason = get(response, "stop_reason")
        self.set_finish_reason(reason, reason == _REFUSAL)

    def record_chunk(self, event: Any) -> None:
        event_type = get(event, "type")
        if event_type == "message_start":
            message = get(event, "message")
            self._identity(message)
            self._apply_usage(get(message, "usage"))
        elif event_type == "content_block_start":
            block = get(event, "content_block")
            self.blocks[get(event, "index", 0)] = {
                "type": get(block, "type"),
                "id": get(block, "id"),
                "name": get(block, "name"),
                "text": get(block, "text") or "",
                "json": "",
            }
        elif event_type == "content_block_delta":
            delta = get(event, "delta")
            slot = self.blocks.setdefault(get(event, "index", 0), {"type": "text", "text": "", "json": ""})
            delta_type = get(delta, "type")
            if delta_type == "text_delta":
                self.mark_first_token()
                slot["text"] += get(delta, "text") or ""
            elif delta_type == "input_json_delta":
                self.mark_first_token()
                slot["json"] += get(delta, "partial_json") or ""
            elif delta_type == "thinking_delta":
                self.mark_first_token()
        elif event_type == "message_delta":
            self.stop_reason = get(get(event, "delta"), "stop_reason") or self.stop_reason
            self._apply_usage(get(event, "usage"))

    def record_stream_end(self) -> None:
        texts: list[str] = []
        tool_calls: list[dict[str, Any]] = []
        for index in sorted(self.blocks):
            block = self.blocks[index]
            if block.get("type") == "text":
                texts.append(block["text"])
            elif block.get("type") == "tool_use":
                arguments: Any = block["json"]
                try:
                    import json

                    arguments = json.loads(arguments) if arguments else {}
                except ValueError:
                    pass
                tool_calls.append({"id": block.get("id"), "name": block.get("name"), "arguments": arguments})
        self.set_output("".join(texts) if texts else None, tool_calls or None)
        self.set_finish_reason(self.stop_reason, self.stop_reason == _REFUSAL)


def _stream_helper_wrapper(
    stream_types: tuple[type, ...], async_stream_types: tuple[type, ...], is_async: bool
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`messages.stream(...)` builds its request itself; observe the raw stream it opens."""
    attr = "_AsyncMessageStreamManager__api_request" if is_async else "_MessageStreamManager__api_request"

    def make(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def observed(*args: Any, **kwargs: Any) -> Any:
            manager = original(*args, **kwargs)
            if _state.exporter is None or not hasattr(manager, attr):
                return manager
            api_request = getattr(manager, attr)
            params = {**kwargs, "stream": True}
            if is_async:

                async def request_async() -> Any:
                    call = start_call(MessagesCall, params)
                    if call is None:
                        return await api_request
                    try:
                        raw = await api_request
                    except BaseException as exc:
                        call.fail(exc)
                        raise
                    settle(call, raw, stream_types, async_stream_types)
                    return raw

                setattr(manager, attr, request_async())
            else:

                def request() -> Any:
                    call = start_call(MessagesCall, params)
                    if call is None:
                        return api_request()
                    try:
                        raw = api_request()
                    except BaseException as exc:
                        call.fail(exc)
                        raise
                    settle(call, raw, stream_types, async_stream_types)
                    return raw

                setattr(manager, attr, request)
            return manager

        return observed

    return make


def instrument_anthropic(client: Any = None) -> None:
    """Patch the Anthropic `Messages` classes, or only `client.messages`."""
    import anthropic
    from anthropic.resources.messages import AsyncMessages, Messages

    stream_types = (anthropic.Stream,)
    async_stream_types = (anthropic.AsyncStream,)
    for cls, is_async in ((Messages, False), (AsyncMessages, True)):
        owner: Any = cls
        if client is not None:
            owner = getattr(client, "messages", None)
            if not isinstance(owner, cls):
                continue
        make = make_async_wrapper if is_async else make_sync_wrapper
        patch_method(_GROUP, owner, "create", make(MessagesCall, stream_types, async_stream_types))
        patch_method(_GROUP, owner, "stream", _stream_helper_wrapper(stream_types, async_stream_types, is_async))


def uninstrument_anthropic() -> None:
    unpatch_group(_GROUP)
