"""Reads a provider request and decides the fake answer (a Turn): reply text, tool call, truncation, usage."""

from __future__ import annotations

import time
from typing import Any, Literal

from ._fake_common import (
    IdFactory,
    ToolCall,
    Turn,
    Usage,
    count_tokens,
    default_reply_text,
    example_arguments,
    split_reply,
    text_of,
)
from ._fake_judge import GARBAGE, judge_reply

ApiKind = Literal["chat", "responses", "completions", "messages"]


def prompt_text(kind: ApiKind, body: dict[str, Any]) -> str:
    """All the text the model is asked to read, in order; the fake tokenizer counts this."""
    parts: list[str] = []
    if kind == "chat":
        parts = [text_of(message.get("content")) for message in body.get("messages") or []]
    elif kind == "responses":
        parts = [text_of(body.get("instructions"))]
        raw = body.get("input")
        parts += [raw] if isinstance(raw, str) else [text_of(item) for item in raw or []]
    elif kind == "messages":
        parts = [text_of(body.get("system"))]
        parts += [text_of(message.get("content")) for message in body.get("messages") or []]
    else:
        prompt = body.get("prompt", "")
        parts = [prompt] if isinstance(prompt, str) else [str(p) for p in prompt]
    return "\n".join(part for part in parts if part)


def last_user_text(kind: ApiKind, body: dict[str, Any]) -> str:
    """The text of the last user message, which the default reply echoes."""
    if kind == "completions":
        prompt = body.get("prompt", "")
        return prompt if isinstance(prompt, str) else str(prompt[0] if prompt else "")
    if kind == "responses" and isinstance(body.get("input"), str):
        return str(body["input"])
    items = body.get("input") if kind == "responses" else body.get("messages")
    for item in reversed(items or []):
        if isinstance(item, dict) and item.get("role") == "user":
            return text_of(item.get("content"))
    return ""


def _tool_specs(kind: ApiKind, body: dict[str, Any]) -> list[tuple[str, Any]]:
    """(name, JSON schema) of each function tool offered in the request."""
    specs: list[tuple[str, Any]] = []
    for tool in body.get("tools") or []:
        if not isinstance(tool, dict):
            continue
        if kind == "chat" and isinstance(tool.get("function"), dict):
            specs.append((tool["function"].get("name", "tool"), tool["function"].get("parameters")))
        elif kind == "responses" and tool.get("type") == "function":
            specs.append((tool.get("name", "tool"), tool.get("parameters")))
        elif kind == "messages" and "name" in tool:
            specs.append((tool["name"], tool.get("input_schema")))
    return specs


def _forced_tool(kind: ApiKind, body: dict[str, Any]) -> tuple[bool, str | None]:
    """Whether tool_choice forces a call, and which tool if it names one."""
    choice = body.get("tool_choice")
    if choice == "required":
        return True, None
    if not isinstance(choice, dict):
        return False, None
    if kind == "messages":
        if choice.get("type") == "any":
            return True, None
        if choice.get("type") == "tool":
            return True, choice.get("name")
        return False, None
    if choice.get("type") == "function":
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else choice.get("name")
        return True, name
    return False, None


def _max_output_tokens(kind: ApiKind, body: dict[str, Any]) -> int | None:
    keys = {
        "chat": ("max_completion_tokens", "max_tokens"),
        "responses": ("max_output_tokens",),
        "messages": ("max_tokens",),
        "completions": ("max_tokens",),
    }[kind]
    for key in keys:
        value = body.get(key)
        if isinstance(value, int) and value > 0:
            return value
    return None


def plan_turn(
    kind: ApiKind,
    body: dict[str, Any],
    *,
    scenario: str,
    ids: IdFactory,
    reply_text: str | None,
    usage_override: dict[str, int] | None,
    tool_arguments: dict[str, Any] | None,
) -> Turn:
    """Decide the whole answer before any byte is sent, so JSON and stream carry the same content."""
    forced, forced_name = _forced_tool(kind, body)
    tool_call: ToolCall | None = None
    if kind != "completions" and (scenario == "tool" or forced):
        specs = _tool_specs(kind, body)
        name, schema = next(((n, s) for n, s in specs if n == forced_name), specs[0] if specs else (None, None))
        if name is None:
            name, schema = "get_weather", {"properties": {"location": {"type": "string"}}}
        arguments = tool_arguments if tool_arguments is not None else example_arguments(schema)
        call_id = ids.anthropic_tool_use() if kind == "messages" else ids.openai_call()
        tool_call = ToolCall(call_id=call_id, name=name, arguments=arguments)

    if scenario == "judge":
        reply_text = judge_reply(prompt_text(kind, body))
    elif scenario == "judge-garbage":
        reply_text = GARBAGE
    chunks = split_reply(reply_text if reply_text is not None else default_reply_text(last_user_text(kind, body)))
    limit = _max_output_tokens(kind, body)
    truncated = tool_call is None and limit is not None and limit < len(chunks)
    if truncated and limit is not None:
        chunks = chunks[:limit]

    output_tokens = count_tokens(tool_call.arguments_json) if tool_call else len(chunks)
    counted = {"input_tokens": count_tokens(prompt_text(kind, body)), "output_tokens": output_tokens}
    usage = Usage(**(counted | (usage_override or {})))
    return Turn(
        requested_model=str(body.get("model", "")),
        chunks=chunks,
        truncated=truncated,
        tool_call=tool_call,
        usage=usage,
        created=int(time.time()),
        scenario=scenario,
    )
