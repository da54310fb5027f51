"""Limits on what a stored span holds: JSON nested at most MAX_JSON_DEPTH deep, numbers within their ranges."""

from __future__ import annotations

import math
from typing import Any

from ._span import Span

# Real payloads (chat messages, tool schemas, metadata) nest a dozen levels at most. The bound keeps
# every recursive walk over stored values (redaction, truncation, JSON encoding) far from Python's
# recursion limit, which a value nested ~1000 deep would otherwise reach and fail the whole batch.
MAX_JSON_DEPTH = 64
DEPTH_MARKER = f"…[truncated: nested deeper than {MAX_JSON_DEPTH} levels]"

_NON_FINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}


def bounded_json(value: Any, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """`value` with lists and objects below `max_depth` levels replaced by `DEPTH_MARKER`, and NaN and
    ±Infinity (which JSON text cannot hold) as the strings "NaN", "Infinity", "-Infinity".

    `value` itself is level 1. Returns `value` itself when nothing had to change, else a copy of the
    containers on the way to what changed; the walk never goes deeper than `max_depth`.
    """
    if _within(value, max_depth):
        return value  # nearly always: a check without copies or a call per item
    return _bounded(value, max_depth)


def _within(value: Any, max_depth: int) -> bool:
    """Whether `value` has no list or object below `max_depth` levels and no NaN or infinity."""
    if not isinstance(value, dict | list | tuple):
        return not isinstance(value, float) or math.isfinite(value)
    level: list[Any] = [value]
    depth = 1
    while level:
        if depth > max_depth:
            return False
        below: list[Any] = []
        for container in level:
            for item in container.values() if isinstance(container, dict) else container:
                kind = type(item)
                if kind is str or kind is int or kind is bool or item is None:
                    continue
                if kind is dict or kind is list:
                    below.append(item)
                elif kind is float:
                    if item - item != 0.0:  # NaN for NaN and for ±infinity
                        return False
                elif isinstance(item, dict | list | tuple):
                    below.append(item)
                elif isinstance(item, float) and not math.isfinite(item):
                    return False
        level = below
        depth += 1
    return True


def _bounded(value: Any, levels_left: int) -> Any:
    if isinstance(value, dict):
        if levels_left <= 0:
            return DEPTH_MARKER
        changed: dict[Any, Any] | None = None
        for key, item in value.items():
            if isinstance(item, str | int | bool) or item is None:
                continue
            new = _bounded(item, levels_left - 1)
            if new is not item:
                if changed is None:
                    changed = dict(value)
                changed[key] = new
        return value if changed is None else changed
    if isinstance(value, list | tuple):
        if levels_left <= 0:
            return DEPTH_MARKER
        copied: list[Any] | None = None
        for index, item in enumerate(value):
            if isinstance(item, str | int | bool) or item is None:
                continue
            new = _bounded(item, levels_left - 1)
            if new is not item:
                if copied is None:
                    copied = list(value)
                copied[index] = new
        return value if copied is None else copied
    if isinstance(value, float) and not math.isfinite(value):
        return _NON_FINITE.get(value, "NaN")
    return value


# The largest value each number of a span may hold: far beyond any real call, and small enough that
# sums over billions of rows and the latency sketches stay finite (an infinite latency cannot even be
# bucketed, and fails the commit it is in).
NUMBER_LIMITS: dict[str, float] = {
    "latency_ms": 1e12,  # ~31 years
    "ttft_ms": 1e12,
    "tokens_per_second": 1e9,
    "cost_usd": 1e9,
    "computed_cost_usd": 1e9,
    "cost_saved_usd": 1e9,
    "temperature": 100.0,
}
_MAX_COUNT = 2**62
_COUNTS = (
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "max_tokens",
    "http_status",
    "http_request_bytes",
    "http_response_bytes",
)


def drop_out_of_range_numbers(span: Span) -> None:
    """Clear (set to None) every number of `span` that is negative, not finite, or above its limit.

    Native events with such numbers are refused with a message; this catches what other sources
    (OTLP conventions, the gateway reading an upstream's answer) computed from odd input.
    """
    for name, limit in NUMBER_LIMITS.items():
        value = getattr(span, name)
        if value is not None and not 0 <= value <= limit:  # also false for NaN
            setattr(span, name, None)
    for name in _COUNTS:
        value = getattr(span, name)
        if value is not None and not 0 <= value <= _MAX_COUNT:
            setattr(span, name, None)
