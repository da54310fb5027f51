"""Score events (POST /api/v1/scores, `{"type": "score"}` in ingest, the SDK) -> `Score` records.

Pure: one JSON object in, one `Score` out, or `ScoreEventError` naming the field. Whether the value
fits the type its name already has in the project is the store's to say (`Store.write_scores`).
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from llmlens.model import (
    DEFAULT_PROJECT,
    Score,
    ScoreDataType,
    ScoreSource,
    normalize_span_id,
    normalize_trace_id,
    parse_timestamp_us,
    span_id_from_text,
)

MAX_NAME_CHARS = 200
MAX_LABEL_CHARS = 200
MAX_TEXT_CHARS = 100_000
# Sources a caller may claim; `feedback` and `inferred` scores are made by llmlens itself.
CALLER_SOURCES = frozenset({ScoreSource.HUMAN.value, ScoreSource.EVALUATOR.value, ScoreSource.SDK.value})


class ScoreEventError(ValueError):
    """One score is invalid; the message names the field."""


def _text(event: dict[str, Any], field: str, limit: int = MAX_TEXT_CHARS) -> str | None:
    value = event.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ScoreEventError(f"{field} must be a string, got {type(value).__name__}")
    return value[:limit]


def _name(event: dict[str, Any]) -> str:
    raw = event.get("name")
    if not isinstance(raw, str) or not raw.strip():
        raise ScoreEventError("name is required: a non-empty string such as 'helpfulness'")
    name = raw.strip()
    if len(name) > MAX_NAME_CHARS:
        raise ScoreEventError(f"name is longer than {MAX_NAME_CHARS} characters")
    if any(ord(c) < 32 for c in name):
        raise ScoreEventError("name must not contain control characters")
    return name


def _value(event: dict[str, Any]) -> tuple[str, float | None, str | None]:
    """(data type, value, label)."""
    value, label = event.get("value"), event.get("label")
    if value is not None and label is not None:
        raise ScoreEventError("send either value (a number or boolean) or label (a category), not both")
    if label is not None:
        if not isinstance(label, str) or not label.strip():
            raise ScoreEventError("label must be a non-empty string (the category)")
        if len(label) > MAX_LABEL_CHARS:
            raise ScoreEventError(f"label is longer than {MAX_LABEL_CHARS} characters")
        return ScoreDataType.CATEGORICAL.value, None, label.strip()
    if value is None:
        raise ScoreEventError("value (a number or boolean) or label (a category) is required")
    if isinstance(value, bool):
        return ScoreDataType.BOOLEAN.value, 1.0 if value else 0.0, None
    if isinstance(value, str):
        raise ScoreEventError("value must be a number or a boolean; send a category as label")
    if not isinstance(value, int | float):
        raise ScoreEventError(f"value must be a number or a boolean, got {type(value).__name__}")
    number = _finite(value)
    if number is None:
        raise ScoreEventError("value must be a finite number")
    return ScoreDataType.NUMERIC.value, number, None


def _ids(event: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(message id, trace id, span id): the message or the span the score is about (one is required)."""
    message_id = _text(event, "message_id", 1_000)
    raw_span = event.get("span_id")
    raw_trace = event.get("trace_id")
    if not message_id and raw_span is None:
        raise ScoreEventError("message_id or span_id is required: the call or span the score is about")
    span_id = None
    if raw_span is not None:
        if not isinstance(raw_span, str) or not raw_span.strip():
            raise ScoreEventError("span_id must be a non-empty string")
        try:
            span_id = normalize_span_id(raw_span)
        except ValueError:
            # Spans sent with a non-hex id are stored under this derived id (codec/native.py does the same).
            span_id = span_id_from_text(raw_span)
    trace_id = None
    if raw_trace is not None:
        if not isinstance(raw_trace, str):
            raise ScoreEventError("trace_id must be a string")
        try:
            trace_id = normalize_trace_id(raw_trace)
        except ValueError as exc:
            raise ScoreEventError(f"trace_id: {exc}") from None
    return message_id or None, trace_id, span_id


def _finite(value: Any) -> float | None:
    """`value` as a finite float, or None (not a number, NaN, infinite, or an int too large for a float)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _judge_cost(event: dict[str, Any]) -> float | None:
    value = event.get("judge_cost_usd")
    if value is None:
        return None
    cost = _finite(value)
    if cost is None or cost < 0:
        raise ScoreEventError("judge_cost_usd must be a non-negative number")
    return cost


def _score_id(event: dict[str, Any]) -> str:
    given = event.get("score_id")
    if given is not None:
        if not isinstance(given, str) or not given.strip() or len(given) > 200:
            raise ScoreEventError("score_id must be a non-empty string of at most 200 characters")
        return given.strip()
    # The same event sent twice (a retried request) is one score, as with feedback. (`repr` for what JSON
    # cannot write: NaN, ints past Python's digit limit.)
    try:
        canonical = json.dumps(event, sort_keys=True, separators=(",", ":"), default=str)
    except ValueError:
        canonical = repr(sorted(event.items(), key=lambda kv: str(kv[0])))
    return "sc_" + hashlib.blake2b(canonical.encode(), digest_size=12).hexdigest()


def score_from_event(
    event: Any,
    *,
    project: str | None,
    now_us: int,
    default_source: str = ScoreSource.HUMAN.value,
    allowed_sources: frozenset[str] = CALLER_SOURCES,
) -> Score:
    """One score object -> `Score`; ScoreEventError names what is wrong."""
    if not isinstance(event, dict):
        raise ScoreEventError(f"a score must be a JSON object, got {type(event).__name__}")
    name = _name(event)
    data_type, value, label = _value(event)
    message_id, trace_id, span_id = _ids(event)
    source = event.get("source", default_source)
    if source not in allowed_sources:
        raise ScoreEventError(f"source must be one of {', '.join(sorted(allowed_sources))}, got {source!r}")
    metadata = event.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise ScoreEventError(f"metadata must be an object, got {type(metadata).__name__}")
    timestamp = event.get("timestamp")
    try:
        timestamp_us = now_us if timestamp is None else parse_timestamp_us(timestamp)
    except ValueError as exc:
        raise ScoreEventError(f"timestamp: {exc}") from None
    event_project = event.get("project")
    if event_project is not None and not isinstance(event_project, str):
        raise ScoreEventError("project must be a string")
    return Score(
        score_id=_score_id(event),
        name=name,
        data_type=data_type,
        timestamp_us=timestamp_us,
        project=event_project or project or DEFAULT_PROJECT,
        value=value,
        label=label,
        source=str(source),
        message_id=message_id,
        trace_id=trace_id,
        span_id=span_id,
        evaluator=_text(event, "evaluator", 200),
        evaluator_version=_text(event, "evaluator_version", 200),
        comment=_text(event, "comment"),
        reasoning=_text(event, "reasoning"),
        judge_cost_usd=_judge_cost(event),
        metadata=dict(metadata or {}),
    )
