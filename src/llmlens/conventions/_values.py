"""Small, total coercions shared by the convention mappers: never raise, return None when unusable."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from llmlens.model import Span, bounded_json

# Token counts and byte sizes above this are nonsense (and would overflow BIGINT columns).
_MAX_COUNT = 10**15
_INDEXED = re.compile(r"(\d+)\.(.+)", re.DOTALL)


def as_str(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value or None
    if isinstance(value, bool | int | float):
        return str(value)
    return None


def as_count(value: Any) -> int | None:
    """A non-negative integer count (tokens, bytes): ints, integral floats and digit strings."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip()) if "." in value else int(value.strip())
        except ValueError:
            return None
    if isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            return None
        value = int(value)
    if isinstance(value, int) and 0 <= value <= _MAX_COUNT:
        return value
    return None


def as_float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, int | float):
        try:
            x = float(value)
        except OverflowError:  # an int beyond any float
            return None
        return x if math.isfinite(x) else None
    return None


def as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        low = value.strip().lower()
        if low in ("true", "1", "yes"):
            return True
        if low in ("false", "0", "no"):
            return False
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    return None


def parse_json(value: Any) -> Any:
    """Parse a JSON-encoded string attribute; structured values pass through; None if unparsable."""
    if isinstance(value, str):
        s = value.strip()
        if not s or s[0] not in '[{"':
            return None
        try:
            # Bounded: an attribute can hold JSON nested far deeper than anything that walks it can follow.
            return bounded_json(json.loads(s))
        except (ValueError, RecursionError):
            return None
    if isinstance(value, list | dict):
        return value
    return None


def parse_arguments(value: Any) -> Any:
    """Tool-call arguments: a JSON string becomes its object; anything else is kept as sent."""
    if isinstance(value, str):
        parsed = parse_json(value)
        return value if parsed is None else parsed
    return value


def set_if_none(span: Span, name: str, value: Any) -> None:
    """First writer wins: conventions applied earlier are the more specific ones."""
    if value is not None and getattr(span, name) is None:
        setattr(span, name, value)


def take(attrs: Mapping[str, Any], consumed: set[str], *keys: str) -> Any:
    """The first present value among `keys`, marking every present key as consumed."""
    found: Any = None
    for key in keys:
        if key in attrs:
            consumed.add(key)
            if found is None and attrs[key] is not None:
                found = attrs[key]
    return found


def indexed(attrs: Mapping[str, Any], prefix: str, consumed: set[str]) -> dict[int, dict[str, Any]]:
    """Rebuild `prefix.N.rest = v` keys into {N: {rest: v}}; indexes need not be dense or sorted."""
    out: dict[int, dict[str, Any]] = {}
    plen = len(prefix)
    for key, value in attrs.items():
        if not key.startswith(prefix):
            continue
        m = _INDEXED.fullmatch(key, plen)
        if m is None:
            continue
        index = int(m.group(1))
        if index > 100_000:
            continue
        consumed.add(key)
        out.setdefault(index, {})[m.group(2)] = value
    return dict(sorted(out.items()))


def messages_text(messages: Any, *, with_roles: bool) -> str | None:
    """Flatten [{role, content, tool_calls}] to text; `with_roles` prefixes each line with its role."""
    if not isinstance(messages, list):
        return None
    lines: list[str] = []
    for msg in messages:
        if not isinstance(msg, dict):
            continue
        content = msg.get("content")
        if isinstance(content, list):
            content = "".join(
                str(p.get("text") or p.get("content") or "") if isinstance(p, dict) else str(p) for p in content
            )
        elif content is not None and not isinstance(content, str):
            content = json.dumps(content, ensure_ascii=False, default=str)
        if not content:
            continue
        role = msg.get("role")
        lines.append(f"{role}: {content}" if with_roles and role else content)
    return "\n".join(lines) if lines else None


def tool_calls_of(messages: Any) -> list[dict[str, Any]] | None:
    """Every tool call requested in a list of normalised output messages, or None if there are none."""
    if not isinstance(messages, list):
        return None
    calls: list[dict[str, Any]] = []
    for msg in messages:
        if isinstance(msg, dict) and isinstance(msg.get("tool_calls"), list):
            calls.extend(c for c in msg["tool_calls"] if isinstance(c, dict))
    return calls or None


def fill_content(span: Span, input_messages: Any, output_messages: Any) -> None:
    """Set messages, flattened prompt/response text, tool calls and finish reason where still empty."""
    if isinstance(input_messages, list) and input_messages:
        set_if_none(span, "input_messages", input_messages)
        set_if_none(span, "prompt", messages_text(input_messages, with_roles=True))
    if isinstance(output_messages, list) and output_messages:
        set_if_none(span, "output_messages", output_messages)
        set_if_none(span, "response", messages_text(output_messages, with_roles=False))
        set_if_none(span, "tool_calls", tool_calls_of(output_messages))
        for msg in output_messages:
            if isinstance(msg, dict):
                set_if_none(span, "finish_reason", as_str(msg.get("finish_reason")))
