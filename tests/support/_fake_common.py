"""Provider-neutral pieces of the fake LLM provider: scenarios, token counting, replies, ids and usage."""

from __future__ import annotations

import json
import random
import re
import string
import threading
from dataclasses import dataclass
from typing import Any

# Every scenario can be chosen by model name (`fake-<name>`), by the `X-Fake-Scenario` header or by
# `FakeProvider.enqueue(<name>)`.
SCENARIOS: frozenset[str] = frozenset(
    {
        "normal",  # a deterministic answer derived from the input
        "tool",  # a tool call (first tool in the request, or get_weather)
        "slow",  # a slow stream (slow_ttft_delay_s, then slow_chunk_delay_s between chunks)
        "hang",  # no response bytes for hang_s seconds (longer than any sane client timeout)
        "stall",  # a stream that sends a few chunks then goes silent for hang_s seconds
        "disconnect",  # a stream that sends a few chunks then drops the connection
        "stream-error",  # a stream that sends a few chunks then an in-band error event
        "ratelimit",  # 429, request-rate limit, with retry-after
        "ratelimit-tokens",  # 429, token-rate limit, with retry-after
        "quota",  # 429 insufficient_quota (OpenAI) / 429 rate_limit_error (Anthropic)
        "error",  # 500 server error
        "overloaded",  # 529 overloaded_error (Anthropic) / 503 (OpenAI)
        "bad-request",  # 400 invalid_request_error
        "context-length",  # 400 context_length_exceeded / prompt is too long
        "auth",  # 401 invalid api key
        "content-filter",  # 400 content_policy_violation / output blocked by content filtering
        "model-not-found",  # 404 model_not_found / not_found_error
        "judge",  # an LLM judge: a JSON verdict derived from the prompt (see _fake_judge.py)
        "judge-garbage",  # a judge that answers prose instead of a JSON verdict
    }
)
ERROR_SCENARIOS: frozenset[str] = frozenset(
    {
        "ratelimit",
        "ratelimit-tokens",
        "quota",
        "error",
        "overloaded",
        "bad-request",
        "context-length",
        "auth",
        "content-filter",
        "model-not-found",
    }
)
MID_STREAM_SCENARIOS: frozenset[str] = frozenset({"stall", "disconnect", "stream-error"})
# How many content chunks a stall/disconnect/stream-error stream sends before it breaks.
CHUNKS_BEFORE_BREAK = 2
FAKE_MODEL_PREFIX = "fake-"


def normalize_scenario(name: str) -> str:
    """Return the canonical scenario name (`rate_limit` and `RATELIMIT` are both fine); raise if unknown."""
    canonical = name.strip().lower().replace("_", "-")
    if canonical == "rate-limit":
        canonical = "ratelimit"
    if canonical not in SCENARIOS:
        raise ValueError(f"unknown fake scenario {name!r}; known: {', '.join(sorted(SCENARIOS))}")
    return canonical


def scenario_for_model(model: str) -> str | None:
    """`fake-ratelimit` -> `ratelimit`; `gpt-4o` -> None (normal). Unknown `fake-*` -> `model-not-found`."""
    if not model.startswith(FAKE_MODEL_PREFIX):
        return None
    try:
        return normalize_scenario(model[len(FAKE_MODEL_PREFIX) :])
    except ValueError:
        return "model-not-found"


# Real OpenAI answers with the dated snapshot a bare alias points to.
OPENAI_SNAPSHOTS: dict[str, str] = {
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4.1": "gpt-4.1-2025-04-14",
    "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
    "gpt-4.1-nano": "gpt-4.1-nano-2025-04-14",
    "gpt-4-turbo": "gpt-4-turbo-2024-04-09",
    "gpt-4": "gpt-4-0613",
    "gpt-3.5-turbo": "gpt-3.5-turbo-0125",
    "gpt-3.5-turbo-instruct": "gpt-3.5-turbo-instruct:20230824-v2",
    "o1": "o1-2024-12-17",
    "o1-mini": "o1-mini-2024-09-12",
    "o3": "o3-2025-04-16",
    "o3-mini": "o3-mini-2025-01-31",
    "o4-mini": "o4-mini-2025-04-16",
    "gpt-5": "gpt-5-2025-08-07",
    "gpt-5-mini": "gpt-5-mini-2025-08-07",
}
DEFAULT_OPENAI_SNAPSHOT_SUFFIX = "-2024-08-06"
_DATED = re.compile(r"(-\d{4}-\d{2}-\d{2}|-\d{4}|:\S+)$")
# Anthropic echoes dated names and resolves `-latest` aliases.
ANTHROPIC_ALIASES: dict[str, str] = {
    "claude-3-5-sonnet-latest": "claude-3-5-sonnet-20241022",
    "claude-3-5-haiku-latest": "claude-3-5-haiku-20241022",
    "claude-3-7-sonnet-latest": "claude-3-7-sonnet-20250219",
    "claude-3-opus-latest": "claude-3-opus-20240229",
}


def openai_response_model(requested: str) -> str:
    """The model name OpenAI would put in its answer: the dated snapshot of an alias."""
    if requested.startswith(FAKE_MODEL_PREFIX) or requested.startswith("text-embedding"):
        return requested
    if requested in OPENAI_SNAPSHOTS:
        return OPENAI_SNAPSHOTS[requested]
    if _DATED.search(requested):
        return requested
    return requested + DEFAULT_OPENAI_SNAPSHOT_SUFFIX


def anthropic_response_model(requested: str) -> str:
    """The model name Anthropic would put in its answer."""
    return ANTHROPIC_ALIASES.get(requested, requested)


def count_tokens(text: str) -> int:
    """The fake tokenizer: one token per four characters, at least one for non-empty text."""
    return (len(text) + 3) // 4


def default_reply_text(last_user_text: str) -> str:
    """The answer given when `reply_text` is not set: derived from the last user message."""
    return f"Fake reply to: {last_user_text}" if last_user_text else "Fake reply."


def split_reply(text: str) -> list[str]:
    """Split a reply into stream chunks, one word with its trailing space each; also the output tokens."""
    return re.findall(r"\s*\S+\s*", text) or [text]


def text_of(content: Any) -> str:
    """Flatten message content (a string, or a list of text-bearing parts/blocks) to plain text."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(text_of(part) for part in content if text_of(part))
    if isinstance(content, dict):
        for key in ("text", "content", "output", "input_text"):
            if key in content:
                return text_of(content[key])
    return ""


@dataclass(frozen=True)
class Usage:
    """Token counts in neutral terms; each provider module maps them to its own field names.

    `input_tokens` counts the whole prompt (OpenAI `prompt_tokens`, which includes cached tokens;
    Anthropic reports it as-is in `input_tokens`). `output_tokens` includes `reasoning_tokens`.
    """

    input_tokens: int
    output_tokens: int
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cache_creation_tokens: int = 0


USAGE_KEYS: frozenset[str] = frozenset(Usage.__dataclass_fields__)


def check_usage_override(usage: dict[str, int] | None) -> dict[str, int] | None:
    """Reject unknown keys in `FakeProvider.usage` early, so a typo fails the test that made it."""
    if usage is None:
        return None
    unknown = set(usage) - USAGE_KEYS
    if unknown:
        raise ValueError(f"unknown usage keys {sorted(unknown)}; known: {sorted(USAGE_KEYS)}")
    return dict(usage)


@dataclass(frozen=True)
class ToolCall:
    """One tool call the fake model decided to make."""

    call_id: str
    name: str
    arguments: dict[str, Any]

    @property
    def arguments_json(self) -> str:
        return json.dumps(self.arguments)

    def argument_chunks(self) -> list[str]:
        """The arguments JSON cut in pieces, the way providers stream them."""
        raw = self.arguments_json
        size = max(1, len(raw) // 3 + 1)
        return [raw[i : i + size] for i in range(0, len(raw), size)]


@dataclass(frozen=True)
class Turn:
    """Everything one answer needs, already decided: text chunks, why it stopped, tool call, usage."""

    requested_model: str
    chunks: list[str]
    truncated: bool  # stopped by max_tokens
    tool_call: ToolCall | None
    usage: Usage
    created: int
    scenario: str = "normal"

    @property
    def text(self) -> str:
        return "".join(self.chunks)


def example_arguments(parameters: Any) -> dict[str, Any]:
    """Deterministic arguments for a JSON schema: every required (or else every) property gets a value."""
    if not isinstance(parameters, dict):
        return {"location": "Paris"}
    properties = parameters.get("properties") or {}
    if not isinstance(properties, dict) or not properties:
        return {}
    names = parameters.get("required") or list(properties)
    by_type: dict[str, Any] = {"string": "Paris", "integer": 1, "number": 1.5, "boolean": True}
    arguments: dict[str, Any] = {}
    for name in names:
        schema = properties.get(name) or {}
        if isinstance(schema, dict) and schema.get("enum"):
            arguments[name] = schema["enum"][0]
            continue
        kind = schema.get("type", "string") if isinstance(schema, dict) else "string"
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "string")
        arguments[name] = by_type.get(kind, [] if kind == "array" else {})
    return arguments


class IdFactory:
    """Ids shaped like the real ones, from a seeded generator so a test run is reproducible."""

    _ALNUM = string.ascii_letters + string.digits

    def __init__(self, seed: int = 0) -> None:
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def _chars(self, alphabet: str, length: int) -> str:
        with self._lock:
            return "".join(self._random.choice(alphabet) for _ in range(length))

    def chat_completion(self) -> str:
        return "chatcmpl-" + self._chars(self._ALNUM, 29)

    def completion(self) -> str:
        return "cmpl-" + self._chars(self._ALNUM, 29)

    def openai_call(self) -> str:
        return "call_" + self._chars(self._ALNUM, 24)

    def response(self) -> str:
        return "resp_" + self._chars("0123456789abcdef", 50)

    def response_item(self, prefix: str) -> str:
        return f"{prefix}_" + self._chars("0123456789abcdef", 50)

    def fingerprint(self) -> str:
        return "fp_" + self._chars("0123456789abcdef", 10)

    def openai_request(self) -> str:
        return "req_" + self._chars("0123456789abcdef", 32)

    def anthropic_message(self) -> str:
        return "msg_01" + self._chars(self._ALNUM, 22)

    def anthropic_tool_use(self) -> str:
        return "toolu_01" + self._chars(self._ALNUM, 22)

    def anthropic_request(self) -> str:
        return "req_011" + self._chars(self._ALNUM, 21)


@dataclass(frozen=True)
class Frame:
    """One server-sent event, ready to write; `content` marks frames that carry generated tokens."""

    data: bytes
    content: bool = False


def sse_data(payload: Any) -> bytes:
    """An OpenAI-style data-only event."""
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def sse_event(name: str, payload: Any) -> bytes:
    """A named event (Anthropic Messages, OpenAI Responses)."""
    return f"event: {name}\n".encode() + sse_data(payload)
