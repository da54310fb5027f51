"""Stored chat messages, tools and parameters -> the OpenAI or Anthropic request body.

Stored calls hold messages in whatever shape their source used: OpenAI chat messages (SDK, gateway),
Anthropic content blocks (SDK, gateway), or the normalised form of the OTel conventions (flat
`tool_calls: [{id, name, arguments}]`). A message already in the target's shape is passed through
untouched, so replaying a call to the provider it came from sends the very same messages.
"""

from __future__ import annotations

import json
from typing import Any, Literal

WireFormat = Literal["openai", "anthropic"]

# Keys that the conventions add to messages and that neither provider accepts.
_NOT_WIRE_KEYS = ("finish_reason", "parts")
# Parameters that are transport or content, never sent as parameters of a replay.
_NOT_PARAMS = frozenset(
    {"model", "stream", "stream_options", "messages", "system", "tools", "input", "prompt", "instructions"}
)
# OTel GenAI `gen_ai.request.*` names that differ from the API's own.
_OTEL_NAMES = {"choice.count": "n", "encoding_formats": None}
# What each API accepts beyond the common ones, for calls replayed across providers.
_COMMON = frozenset({"temperature", "top_p", "max_tokens", "tool_choice"})
_OPENAI_ONLY = frozenset(
    {
        "frequency_penalty",
        "presence_penalty",
        "logit_bias",
        "logprobs",
        "top_logprobs",
        "n",
        "seed",
        "response_format",
        "parallel_tool_calls",
        "user",
        "max_completion_tokens",
        "reasoning_effort",
        "service_tier",
        "stop",
        "modalities",
        "prediction",
        "verbosity",
    }
)
_ANTHROPIC_ONLY = frozenset({"top_k", "stop_sequences", "thinking", "metadata"})
ANTHROPIC_DEFAULT_MAX_TOKENS = 1024


def as_dict(value: Any) -> dict[str, Any]:
    """`value` if it is a JSON object, else an empty one (stored JSON columns may hold anything)."""
    return value if isinstance(value, dict) else {}


def _arguments_text(arguments: Any) -> str:
    if isinstance(arguments, str):
        return arguments
    return json.dumps(arguments if arguments is not None else {})


def _arguments_object(arguments: Any) -> Any:
    if isinstance(arguments, str):
        try:
            return json.loads(arguments)
        except json.JSONDecodeError:
            return {"input": arguments}
    return arguments if arguments is not None else {}


def _openai_tool_call(call: dict[str, Any]) -> dict[str, Any]:
    if isinstance(call.get("function"), dict):
        return call
    return {
        "id": call.get("id"),
        "type": "function",
        "function": {"name": call.get("name"), "arguments": _arguments_text(call.get("arguments"))},
    }


def _is_block_list(content: Any, types: tuple[str, ...]) -> bool:
    return isinstance(content, list) and any(isinstance(b, dict) and b.get("type") in types for b in content)


def _clean(message: dict[str, Any]) -> dict[str, Any]:
    if any(k in message for k in _NOT_WIRE_KEYS):
        return {k: v for k, v in message.items() if k not in _NOT_WIRE_KEYS}
    return message


def _openai_part(block: Any) -> Any:
    """An Anthropic content block as an OpenAI content part (text and images)."""
    if not isinstance(block, dict):
        return block
    if block.get("type") == "text":
        return {"type": "text", "text": block.get("text", "")}
    source = block.get("source")
    if block.get("type") == "image" and isinstance(source, dict):
        if source.get("type") == "base64":
            url = f"data:{source.get('media_type')};base64,{source.get('data')}"
        else:
            url = str(source.get("url", ""))
        return {"type": "image_url", "image_url": {"url": url}}
    return block


def to_openai_messages(messages: list[Any]) -> list[Any]:
    """Messages for Chat Completions; OpenAI-shaped ones are returned as they are."""
    out: list[Any] = []
    for message in messages:
        if not isinstance(message, dict):
            out.append(message)
            continue
        message = _clean(message)
        content = message.get("content")
        if _is_block_list(content, ("tool_use", "tool_result", "image")) or (
            message.get("role") == "system" and _is_block_list(content, ("text",))
        ):
            out.extend(_openai_from_blocks(message))
            continue
        calls = message.get("tool_calls")
        if isinstance(calls, list) and any(isinstance(c, dict) and "function" not in c for c in calls):
            message = {**message, "tool_calls": [_openai_tool_call(c) for c in calls if isinstance(c, dict)]}
        out.append(message)
    return out


def _openai_from_blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    role = message.get("role", "user")
    parts: list[Any] = []
    calls: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for block in message.get("content") or []:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "tool_use":
            calls.append(
                {
                    "id": block.get("id"),
                    "type": "function",
                    "function": {"name": block.get("name"), "arguments": _arguments_text(block.get("input"))},
                }
            )
        elif kind == "tool_result":
            result = block.get("content")
            if isinstance(result, list):
                result = "\n".join(str(b.get("text", "")) for b in result if isinstance(b, dict))
            results.append({"role": "tool", "tool_call_id": block.get("tool_use_id"), "content": result or ""})
        else:
            parts.append(_openai_part(block))
    out: list[dict[str, Any]] = list(results)
    if parts or calls:
        texts_only = all(isinstance(p, dict) and p.get("type") == "text" for p in parts)
        content: Any = "\n".join(p["text"] for p in parts) if texts_only else parts
        converted: dict[str, Any] = {"role": role, "content": content or (None if calls else "")}
        if calls:
            converted["tool_calls"] = calls
        out.append(converted)
    return out


def _anthropic_block(part: Any) -> Any:
    """An OpenAI content part as an Anthropic content block."""
    if isinstance(part, str):
        return {"type": "text", "text": part}
    if not isinstance(part, dict):
        return part
    if part.get("type") == "text":
        return {"type": "text", "text": part.get("text", "")}
    if part.get("type") == "image_url":
        image = part.get("image_url")
        url = str(image.get("url", "")) if isinstance(image, dict) else str(image)
        if url.startswith("data:") and ";base64," in url:
            media, data = url[5:].split(";base64,", 1)
            return {"type": "image", "source": {"type": "base64", "media_type": media, "data": data}}
        return {"type": "image", "source": {"type": "url", "url": url}}
    return part


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(b.get("text", "")) for b in content if isinstance(b, dict) and "text" in b)
    return "" if content is None else json.dumps(content)


def to_anthropic_messages(messages: list[Any]) -> tuple[Any, list[dict[str, Any]]]:
    """(system, messages) for the Messages API; Anthropic-shaped messages are returned as they are."""
    systems: list[Any] = []
    out: list[dict[str, Any]] = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        message = _clean(message)
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            systems.append(content)
            continue
        if role == "tool":
            block = {"type": "tool_result", "tool_use_id": message.get("tool_call_id"), "content": _text(content)}
            previous = out[-1] if out else None
            if (
                previous is not None
                and previous["role"] == "user"
                and _is_block_list(previous["content"], ("tool_result",))
            ):
                previous["content"] = [*previous["content"], block]
            else:
                out.append({"role": "user", "content": [block]})
            continue
        calls = message.get("tool_calls")
        if role == "assistant" and isinstance(calls, list) and calls:
            blocks: list[Any] = [{"type": "text", "text": _text(content)}] if _text(content) else []
            for i, call in enumerate(c for c in calls if isinstance(c, dict)):
                fn = as_dict(call.get("function")) or call
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": call.get("id") or f"toolu_replay_{len(out)}_{i}",
                        "name": fn.get("name"),
                        "input": _arguments_object(fn.get("arguments")),
                    }
                )
            out.append({"role": "assistant", "content": blocks})
            continue
        if isinstance(content, list) and any(isinstance(p, dict) and p.get("type") == "image_url" for p in content):
            message = {**message, "content": [_anthropic_block(p) for p in content]}
        if set(message) - {"role", "content"}:
            message = {"role": message.get("role"), "content": message.get("content")}
        out.append(message)
    system: Any = None
    if len(systems) == 1:
        system = systems[0]
    elif systems:
        system = "\n\n".join(_text(s) for s in systems)
    return system, out


def to_openai_tools(tools: list[Any]) -> list[Any]:
    out: list[Any] = []
    for tool in tools:
        if not isinstance(tool, dict) or isinstance(tool.get("function"), dict):
            out.append(tool)
        elif "input_schema" in tool or ("name" in tool and tool.get("type") in (None, "function")):
            function = {"name": tool.get("name"), "description": tool.get("description")}
            function["parameters"] = tool.get("input_schema", tool.get("parameters")) or {"type": "object"}
            out.append({"type": "function", "function": {k: v for k, v in function.items() if v is not None}})
        else:
            out.append(tool)
    return out


def to_anthropic_tools(tools: list[Any]) -> list[Any]:
    out: list[Any] = []
    for tool in tools:
        if not isinstance(tool, dict) or "input_schema" in tool:
            out.append(tool)
            continue
        fn = as_dict(tool.get("function")) or tool
        if fn.get("name") is None:
            out.append(tool)
            continue
        converted = {"name": fn.get("name"), "description": fn.get("description")}
        converted["input_schema"] = fn.get("parameters") or {"type": "object", "properties": {}}
        out.append({k: v for k, v in converted.items() if v is not None})
    return out


def _tool_choice(choice: Any, target: WireFormat) -> Any:
    if target == "anthropic":
        if choice in ("auto", "none"):
            return {"type": choice}
        if choice == "required":
            return {"type": "any"}
        if isinstance(choice, dict) and choice.get("type") == "function":
            fn = choice.get("function")
            return {"type": "tool", "name": fn.get("name") if isinstance(fn, dict) else choice.get("name")}
        return choice
    if isinstance(choice, dict) and choice.get("type") in ("auto", "none", "any", "tool"):
        if choice["type"] == "tool":
            return {"type": "function", "function": {"name": choice.get("name")}}
        return "required" if choice["type"] == "any" else choice["type"]
    return choice


def request_params(stored: Any, *, source: WireFormat, target: WireFormat) -> dict[str, Any]:
    """The stored parameters as the target API names them; the other API's own parameters are dropped."""
    params: dict[str, Any] = {}
    for key, value in stored.items() if isinstance(stored, dict) else ():
        if key in _NOT_PARAMS:
            continue
        if key in _OTEL_NAMES:
            renamed = _OTEL_NAMES[key]
            if renamed is None:
                continue
            key = renamed
        params[key] = value
    if source == target:
        if target == "openai" and "stop_sequences" in params and "stop" not in params:  # OTel's name
            params["stop"] = params.pop("stop_sequences")
        if target == "anthropic" and "max_tokens" not in params:
            params["max_tokens"] = ANTHROPIC_DEFAULT_MAX_TOKENS
        return params
    if target == "anthropic":
        if "max_completion_tokens" in params:
            params.setdefault("max_tokens", params.pop("max_completion_tokens"))
        if "stop" in params:
            stop = params.pop("stop")
            params.setdefault("stop_sequences", [stop] if isinstance(stop, str) else stop)
        params = {k: v for k, v in params.items() if k in _COMMON or k in _ANTHROPIC_ONLY}
        params.setdefault("max_tokens", ANTHROPIC_DEFAULT_MAX_TOKENS)
    else:
        if "stop_sequences" in params:
            params.setdefault("stop", params.pop("stop_sequences"))
        params = {k: v for k, v in params.items() if k in _COMMON or k in _OPENAI_ONLY}
    if "tool_choice" in params:
        params["tool_choice"] = _tool_choice(params["tool_choice"], target)
    return params


def build_body(
    target: WireFormat, model: str, messages: list[Any], tools: Any, params: dict[str, Any]
) -> dict[str, Any]:
    """The JSON body of one non-streamed call: model, messages (and system), tools, then parameters."""
    body: dict[str, Any] = {"model": model}
    if target == "anthropic":
        system, converted = to_anthropic_messages(messages)
        if system is not None:
            body["system"] = system
        body["messages"] = converted
        if isinstance(tools, list) and tools:
            body["tools"] = to_anthropic_tools(tools)
    else:
        body["messages"] = to_openai_messages(messages)
        if isinstance(tools, list) and tools:
            body["tools"] = to_openai_tools(tools)
    for key, value in params.items():
        if key not in body:
            body[key] = value
    return body
