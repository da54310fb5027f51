"""The article's functions, with the article's signatures: LLM calls, tool calls and feedback; and scores."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from random import getrandbits
from time import time
from typing import Any

from . import _state
from ._context import context_attrs_var, current_span_var
from ._internal import report_internal_error
from ._span import apply_context

FEEDBACK_TYPES = frozenset({"thumbs_up", "thumbs_down", "retry", "edit", "abandon"})


def new_message_id() -> str:
    return f"msg_{getrandbits(96):024x}"


def log_llm_call(
    prompt: Any,
    response: Any,
    model: str,
    prompt_tokens: int | None,
    completion_tokens: int | None,
    latency_ms: float,
    cost_usd: float | None,
    metadata: dict[str, Any] | None = None,
) -> str:
    """Record one finished LLM call as an `llm` span under the current span; return its message id.

    `metadata` may carry `user_id`, `session_id`, `feature`, `template_id`, `template_version`,
    `variables` and `message_id`; the server lifts them to their own columns.
    """
    message_id = metadata.get("message_id") if metadata else None
    if not isinstance(message_id, str) or not message_id:
        message_id = f"msg_{getrandbits(96):024x}"
    exporter = _state.exporter
    if exporter is None:
        return message_id
    try:
        parent = current_span_var.get()
        event: dict[str, Any] = {
            "type": "span",
            "kind": "llm",
            "name": model,
            "trace_id": parent.trace_id if parent is not None else f"{getrandbits(128) or 1:032x}",
            "span_id": f"{getrandbits(64) or 1:016x}",
            "timestamp": time() - (latency_ms or 0.0) / 1000.0,
            "status": "ok",
            "model": model,
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens
            if prompt_tokens is not None and completion_tokens is not None
            else None,
            "latency_ms": latency_ms,
            "cost_usd": cost_usd,
            "message_id": message_id,
            "metadata": metadata or {},
        }
        if parent is not None:
            event["parent_span_id"] = parent.span_id
        if isinstance(prompt, str):
            event["prompt"] = prompt
        elif prompt is not None:
            event["input_messages"] = prompt
        if isinstance(response, str):
            event["response"] = response
        elif response is not None:
            event["output_messages"] = response
        attrs = context_attrs_var.get()
        if attrs:
            apply_context(event, {k: v for k, v in attrs.items() if k not in event["metadata"]})
        exporter.enqueue(event)
    except Exception as exc:
        report_internal_error(exc, "log_llm_call")
    return message_id


def log_tool_call(
    tool_name: str,
    args: Any,
    result: Any,
    latency_ms: float,
    success: bool,
    error: str | None = None,
) -> None:
    """Record one finished tool execution as a `tool` span under the current span."""
    exporter = _state.exporter
    if exporter is None:
        return
    try:
        parent = current_span_var.get()
        event: dict[str, Any] = {
            "type": "span",
            "kind": "tool",
            "name": tool_name,
            "trace_id": parent.trace_id if parent is not None else f"{getrandbits(128) or 1:032x}",
            "span_id": f"{getrandbits(64) or 1:016x}",
            "timestamp": time() - (latency_ms or 0.0) / 1000.0,
            "status": "ok" if success else "error",
            "tool_name": tool_name,
            "tool_args": args,
            "tool_result": result,
            "tool_success": success,
            "latency_ms": latency_ms,
        }
        if parent is not None:
            event["parent_span_id"] = parent.span_id
        if error is not None:
            event["error_message"] = error
            event["error_type"] = "other"
            if success:
                event["status"] = "error"
        attrs = context_attrs_var.get()
        if attrs:
            apply_context(event, attrs)
        exporter.enqueue(event)
    except Exception as exc:
        report_internal_error(exc, "log_tool_call")


@dataclass(slots=True)
class FeedbackEvent:
    """The article's feedback record: explicit thumbs or an implicit retry/edit/abandon."""

    user_id: str | None
    session_id: str | None
    message_id: str
    feedback_type: str  # "thumbs_up", "thumbs_down", "retry", "edit", "abandon"
    feedback_text: str | None = None
    timestamp: float = field(default_factory=time)
    feedback_id: str = field(default_factory=lambda: f"fb_{getrandbits(96):024x}")


def log_feedback(event: FeedbackEvent) -> None:
    """Send a `FeedbackEvent`. Its `feedback_id` makes a re-sent event count once."""
    exporter = _state.exporter
    if exporter is None:
        return
    try:
        if event.feedback_type not in FEEDBACK_TYPES:
            raise ValueError(f"feedback_type must be one of {sorted(FEEDBACK_TYPES)}, got {event.feedback_type!r}")
        record = asdict(event)
        record["type"] = "feedback"
        exporter.enqueue({k: v for k, v in record.items() if v is not None})
    except Exception as exc:
        report_internal_error(exc, "log_feedback")


def feedback(message_id: str, feedback_type: str, text: str | None = None) -> None:
    """`llmlens.feedback(message_id, "thumbs_down", text=...)`: user and session come from the context."""
    if _state.exporter is None:
        return
    attrs = context_attrs_var.get() or {}
    log_feedback(
        FeedbackEvent(
            user_id=attrs.get("user_id"),
            session_id=attrs.get("session_id"),
            message_id=message_id,
            feedback_type=feedback_type,
            feedback_text=text,
        )
    )


def score(message_id: str, name: str, value: float | bool | str, comment: str | None = None) -> None:
    """`llmlens.score(message_id, "helpfulness", 0.8)`: the app's own judgement of one call (source `sdk`).

    A number or a boolean is the score's value; a string is a category (sent as its label). The first
    score of a name in a project fixes its type; the server refuses later ones of another type.
    """
    exporter = _state.exporter
    if exporter is None:
        return
    try:
        if not isinstance(message_id, str) or not message_id:
            raise ValueError(f"message_id must be a non-empty string, got {message_id!r}")
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"name must be a non-empty string, got {name!r}")
        event: dict[str, Any] = {
            "type": "score",
            "score_id": f"sc_{getrandbits(96):024x}",
            "message_id": message_id,
            "name": name,
            "source": "sdk",
            "timestamp": time(),
        }
        if isinstance(value, str):
            event["label"] = value
        elif isinstance(value, bool) or (isinstance(value, int | float) and math.isfinite(value)):
            event["value"] = value
        else:
            raise ValueError(f"value must be a finite number, a boolean or a category string, got {value!r}")
        if comment is not None:
            event["comment"] = str(comment)
        exporter.enqueue(event)
    except Exception as exc:
        report_internal_error(exc, "score")
