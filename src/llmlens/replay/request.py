"""Rebuilding the exact request of a stored LLM call, and the edits a replay may make to it."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .providers import Upstream
from .wire import WireFormat, as_dict, build_body, request_params


class NotReplayable(ValueError):
    """The stored call lacks what a replay needs (e.g. no messages were recorded)."""


@dataclass(frozen=True, slots=True)
class ReplayOptions:
    """How to replay: the original call as sent, at temperature 0 unless told otherwise."""

    model: str | None = None  # None: the original model; `upstream:model` picks the upstream
    temperature: float | None = None  # wins over both defaults below
    original_params: bool = False  # keep the original temperature instead of 0
    messages: list[Any] | None = None  # edited messages, replacing the recorded ones
    params: Mapping[str, Any] | None = None  # parameter edits; a None value removes the parameter
    template_messages: list[Any] | None = None  # messages with {{variable}} filled from the call's variables


def recorded_messages(span: Mapping[str, Any]) -> list[Any]:
    messages = span.get("input_messages")
    if isinstance(messages, list) and messages:
        return messages
    prompt = span.get("prompt")
    if isinstance(prompt, str) and prompt:
        return [{"role": "user", "content": prompt}]
    raise NotReplayable(f"span {span.get('span_id')} has no recorded messages or prompt to replay")


def stored_params(span: Mapping[str, Any]) -> dict[str, Any]:
    """`request_params` as recorded, completed with the typed temperature and max_tokens columns."""
    params = dict(span["request_params"]) if isinstance(span.get("request_params"), dict) else {}
    if "temperature" not in params and span.get("temperature") is not None:
        params["temperature"] = span["temperature"]
    limits = ("max_tokens", "max_completion_tokens", "max_output_tokens")
    if not any(k in params for k in limits) and span.get("max_tokens") is not None:
        params["max_tokens"] = int(span["max_tokens"])
    if "max_output_tokens" in params:  # a Responses API call, replayed as a chat completion
        params.setdefault("max_tokens", params.pop("max_output_tokens"))
    return params


_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][\w.]*)\s*\}\}")


def fill_template(messages: list[Any], variables: Any) -> list[Any]:
    """Messages with every `{{name}}` replaced by the call's variable of that name."""
    values = as_dict(variables)

    def fill(value: Any) -> Any:
        if isinstance(value, str):
            return _PLACEHOLDER.sub(lambda m: str(values.get(m.group(1), m.group(0))), value)
        if isinstance(value, list):
            return [fill(v) for v in value]
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        return value

    return [fill(m) for m in messages]


def template_from_call(span: Mapping[str, Any]) -> list[Any]:
    """A template learned from a call of another version: its variables' values become placeholders."""
    messages = copy.deepcopy(recorded_messages(span))
    variables = as_dict(span.get("variables"))
    pairs = sorted(
        (
            (name, str(value))
            for name, value in variables.items()
            if isinstance(value, str | int | float) and str(value)
        ),
        key=lambda p: -len(p[1]),
    )

    def unfill(value: Any) -> Any:
        if isinstance(value, str):
            for name, text in pairs:
                value = value.replace(text, "{{" + name + "}}")
            return value
        if isinstance(value, list):
            return [unfill(v) for v in value]
        if isinstance(value, dict):
            return {k: (unfill(v) if k in ("content", "text") else v) for k, v in value.items()}
        return value

    return [unfill(m) for m in messages]


def replay_body(
    span: Mapping[str, Any], options: ReplayOptions, *, source: Upstream, target: Upstream, model: str
) -> dict[str, Any]:
    """The JSON body to send: what was sent, in the target's wire format, with the replay's edits."""
    if options.messages is not None:
        messages = options.messages
    elif options.template_messages is not None:
        messages = fill_template(options.template_messages, span.get("variables"))
    else:
        messages = recorded_messages(span)
    wire: WireFormat = target.wire
    params = request_params(stored_params(span), source=source.wire, target=wire)
    if options.temperature is not None:
        params["temperature"] = options.temperature
    elif not options.original_params:
        params["temperature"] = 0
    for key, value in (options.params or {}).items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = value
    return build_body(wire, model, messages, span.get("tools"), params)
