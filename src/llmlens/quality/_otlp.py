"""Evaluation results that came in on OTLP spans (`conventions/evaluations.py`) -> evaluator scores."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from llmlens.conventions.evaluations import RESULTS_ATTRIBUTE
from llmlens.model import Score, ScoreDataType, ScoreSource, Span


def _score(span: Span, result: dict[str, Any]) -> Score | None:
    name = result.get("name")
    if not isinstance(name, str) or not name or result.get("error_type"):
        return None  # an evaluation that failed is not a judgement
    value, label = result.get("value"), result.get("label")
    if isinstance(value, int | float) and not isinstance(value, bool):
        data_type, number = ScoreDataType.NUMERIC.value, float(value)
    elif isinstance(label, str) and label:
        data_type, number = ScoreDataType.CATEGORICAL.value, None
    else:
        return None
    on_parent = result.get("target") == "parent" and span.parent_span_id is not None
    span_id = span.parent_span_id if on_parent else span.span_id
    time_us = result.get("time_us") if isinstance(result.get("time_us"), int) else span.start_us
    key = f"{span.project}|{span.trace_id}|{span_id}|{name}|{time_us}|{span.span_id}"
    metadata = {"otel_span_id": span.span_id}
    if isinstance(result.get("response_id"), str):
        metadata["response_id"] = result["response_id"]
    return Score(
        score_id="otel_" + hashlib.blake2b(key.encode(), digest_size=12).hexdigest(),
        name=name[:200],
        data_type=data_type,
        timestamp_us=int(time_us or span.start_us),
        project=span.project,
        value=number,
        label=label[:200] if isinstance(label, str) and label else None,
        source=ScoreSource.EVALUATOR.value,
        message_id=None if on_parent else span.message_id,
        trace_id=span.trace_id,
        span_id=span_id,
        reasoning=result.get("explanation") if isinstance(result.get("explanation"), str) else None,
        metadata=metadata,
    )


def scores_from_spans(spans: Sequence[Span]) -> list[Score]:
    """The scores carried by stored spans (most carry none: one dict lookup each)."""
    out: list[Score] = []
    for span in spans:
        results = span.attributes.get(RESULTS_ATTRIBUTE) if span.attributes else None
        if not isinstance(results, list):
            continue
        for result in results:
            if isinstance(result, dict) and (score := _score(span, result)) is not None:
                out.append(score)
    return out
