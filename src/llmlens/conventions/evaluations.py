"""OTel GenAI evaluation results (`gen_ai.evaluation.result`) -> a list kept on the span for `quality/`.

The GenAI conventions describe an evaluation as an event named `gen_ai.evaluation.result`, with
`gen_ai.evaluation.name` (required), `gen_ai.evaluation.score.value`, `gen_ai.evaluation.score.label`,
`gen_ai.evaluation.explanation`, `gen_ai.response.id` and `error.type`. It belongs to the operation
span it judges: recorded as one of that span's events, or (by emitters that cannot attach events)
as a short child span carrying the same attributes, which then judges its parent. Pure functions:
the results are put on `span.attributes[RESULTS_ATTRIBUTE]`, and the server turns them into scores
after the span is stored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from llmlens.model import Span

from ._record import OtlpEvent
from ._values import as_str

EVALUATION_EVENT = "gen_ai.evaluation.result"
RESULTS_ATTRIBUTE = "llmlens.evaluation_results"
_NAME = "gen_ai.evaluation.name"
_VALUE = "gen_ai.evaluation.score.value"
_LABEL = "gen_ai.evaluation.score.label"
_EXPLANATION = "gen_ai.evaluation.explanation"
_RESPONSE_ID = "gen_ai.response.id"
_ERROR_TYPE = "error.type"
_MAX_RESULTS = 100


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                return None
        else:
            return None
    number = float(value)
    return number if math.isfinite(number) else None


def _result(attrs: Mapping[str, Any], time_ns: int, target: str) -> dict[str, Any] | None:
    name = as_str(attrs.get(_NAME))
    if not name:
        return None
    result: dict[str, Any] = {"name": name, "target": target, "time_us": time_ns // 1000}
    for key, field in ((_LABEL, "label"), (_EXPLANATION, "explanation"), (_RESPONSE_ID, "response_id")):
        text = as_str(attrs.get(key))
        if text:
            result[field] = text
    value = _number(attrs.get(_VALUE))
    if value is not None:
        result["value"] = value
    error = as_str(attrs.get(_ERROR_TYPE))
    if error:
        result["error_type"] = error
    return result


def apply(span: Span, attrs: Mapping[str, Any], consumed: set[str], events: list[OtlpEvent], start_ns: int) -> None:
    """Collect the evaluation results a span carries; mark the attributes used as `consumed`."""
    results = [
        r for e in events if e.name == EVALUATION_EVENT if (r := _result(e.attributes, e.time_ns or start_ns, "self"))
    ]
    if _NAME in attrs:
        own = _result(attrs, start_ns, "parent")
        if own is not None:
            results.append(own)
            consumed.update(k for k in (_NAME, _VALUE, _LABEL, _EXPLANATION) if k in attrs)
    if results:
        span.attributes[RESULTS_ATTRIBUTE] = results[:_MAX_RESULTS]
