"""Langfuse score objects (POST /api/public/scores, `score-create` ingestion events) -> llmlens `Score`.

Pure: one object in, one `Score` out, or `ScoreEventError` naming the field. A Langfuse score is about
an observation (`observationId`, a span id), a trace (`traceId`), a session or a dataset run; llmlens
scores are about a call or span, so observation and trace scores are kept, the others are refused with
a message saying why. `NUMERIC`, `BOOLEAN` and `CATEGORICAL` keep their types; `TEXT` and `CORRECTION`
scores have no llmlens equivalent yet.
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
    is_span_id,
    is_trace_id,
    parse_timestamp_us,
    span_id_from_text,
    trace_id_from_text,
)

from .scores import MAX_LABEL_CHARS, MAX_NAME_CHARS, MAX_TEXT_CHARS, ScoreEventError

_UNSUPPORTED_TYPES = frozenset({"TEXT", "CORRECTION"})


def _text(item: dict[str, Any], key: str) -> str | None:
    value = item.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ScoreEventError(f"{key} must be a string, got {type(value).__name__}")
    return value.strip() or None


def _trace_id(value: str) -> str:
    compact = value.lower().replace("-", "")
    return compact if is_trace_id(compact) else trace_id_from_text(value)


def _span_id(value: str) -> str:
    low = value.lower()
    return low if is_span_id(low) else span_id_from_text(value)


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ScoreEventError(f"value must be a number for a {what} score, got {value!r}") from None
    if not isinstance(value, int | float):
        raise ScoreEventError(f"value must be a number for a {what} score, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number):
        raise ScoreEventError("value must be a finite number")
    return number


def _typed_value(item: dict[str, Any]) -> tuple[str, float | None, str | None]:
    """(llmlens data type, value, label) from Langfuse's `dataType`, `value` and `stringValue`."""
    raw_type = item.get("dataType")
    data_type = raw_type.strip().upper() if isinstance(raw_type, str) else None
    value = item.get("value")
    if data_type in _UNSUPPORTED_TYPES:
        raise ScoreEventError(
            f"dataType {data_type} has no llmlens equivalent yet: send NUMERIC, BOOLEAN or CATEGORICAL"
        )
    if value is None:
        raise ScoreEventError("value is required")
    if data_type == "CATEGORICAL" or (data_type is None and isinstance(value, str)):
        label = value if isinstance(value, str) else item.get("stringValue")
        if not isinstance(label, str) or not label.strip():
            raise ScoreEventError("a CATEGORICAL score needs its category as a string value")
        if len(label) > MAX_LABEL_CHARS:
            raise ScoreEventError(f"value is longer than {MAX_LABEL_CHARS} characters")
        return ScoreDataType.CATEGORICAL.value, None, label.strip()
    if data_type == "BOOLEAN":
        number = _number(value, "BOOLEAN")
        if number not in (0.0, 1.0):
            raise ScoreEventError(f"a BOOLEAN score's value is 1 or 0 (true or false), got {value!r}")
        return ScoreDataType.BOOLEAN.value, number, None
    if data_type not in (None, "NUMERIC"):
        raise ScoreEventError(f"dataType must be NUMERIC, BOOLEAN or CATEGORICAL, got {raw_type!r}")
    return ScoreDataType.NUMERIC.value, _number(value, "NUMERIC"), None


def _score_id(item: dict[str, Any]) -> str:
    given = item.get("id")
    if isinstance(given, str) and given.strip():
        return "lf_" + given.strip()[:190]
    # Without an id, the same object sent twice (a retried request) is still one score.
    canonical = json.dumps(item, sort_keys=True, separators=(",", ":"), default=str)
    return "lf_" + hashlib.blake2b(canonical.encode(), digest_size=12).hexdigest()


def score_from_langfuse(item: Any, *, project: str | None, now_us: int) -> Score:
    """One Langfuse score object -> `Score` (source `sdk`); ScoreEventError names what is wrong."""
    if not isinstance(item, dict):
        raise ScoreEventError(f"a score must be a JSON object, got {type(item).__name__}")
    name = _text(item, "name")
    if not name:
        raise ScoreEventError("name is required: a non-empty string such as 'accuracy'")
    if len(name) > MAX_NAME_CHARS:
        raise ScoreEventError(f"name is longer than {MAX_NAME_CHARS} characters")
    data_type, value, label = _typed_value(item)
    observation, trace = _text(item, "observationId"), _text(item, "traceId")
    if observation is None and trace is None:
        target = "sessionId" if item.get("sessionId") else "datasetRunId" if item.get("datasetRunId") else None
        if target is not None:
            raise ScoreEventError(
                f"scores by {target} alone have no llmlens equivalent yet: name the observationId or traceId"
            )
        raise ScoreEventError("observationId or traceId is required: the observation or trace the score is about")
    metadata = item.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        metadata = {"value": metadata}
    kept: dict[str, Any] = dict(metadata or {})
    for key, field in (("sessionId", "session_id"), ("environment", "environment"), ("configId", "config_id")):
        text = item.get(key)
        if isinstance(text, str) and text:
            kept.setdefault(field, text)
    if isinstance(item.get("id"), str):
        kept.setdefault("langfuse_score_id", item["id"])
    timestamp = item.get("timestamp")
    try:
        timestamp_us = now_us if timestamp is None else parse_timestamp_us(timestamp)
    except ValueError as exc:
        raise ScoreEventError(f"timestamp: {exc}") from None
    comment = _text(item, "comment")
    return Score(
        score_id=_score_id(item),
        name=name,
        data_type=data_type,
        timestamp_us=timestamp_us,
        project=project or DEFAULT_PROJECT,
        value=value,
        label=label,
        source=ScoreSource.SDK.value,
        trace_id=_trace_id(trace) if trace else None,
        span_id=_span_id(observation) if observation else None,
        comment=comment[:MAX_TEXT_CHARS] if comment else None,
        metadata=kept,
    )
