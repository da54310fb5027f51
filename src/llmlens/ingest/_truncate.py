"""Field limits: oversized content is cut, not rejected (`…[truncated N chars]`), and text no store can
encode (lone UTF-16 surrogates, which JSON allows as `\\ud800` escapes) is repaired, so one odd event
never fails a commit."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from llmlens.model import Feedback, Span

_SPAN_STR_FIELDS = tuple(f.name for f in fields(Span) if str(f.type).startswith("str"))
_SPAN_JSON_FIELDS = (
    "input_messages",
    "output_messages",
    "tool_args",
    "tool_result",
    "tool_calls",
    "tools",
    "documents",
    "variables",
    "request_params",
    "metadata",
    "attributes",
)
# Ids, names and labels are short by nature; only these free-text fields are truncated.
_TRUNCATED_FIELDS = frozenset({"prompt", "response", "retrieval_query", "error_message"})


def truncate_text(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    return f"{text[:max_chars]}…[truncated {len(text) - max_chars} chars]"


def encodable(text: str) -> str:
    """`text` with lone surrogates replaced by U+FFFD (it is returned unchanged when already valid)."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return text


def _needs_work(text: str, max_chars: int) -> bool:
    if len(text) > max_chars:
        return True
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def limit_value(value: Any, max_chars: int) -> Any:
    """Every string (and dict key) of a JSON-like value made encodable and cut at `max_chars`."""
    if isinstance(value, str):
        return truncate_text(encodable(value), max_chars)
    if isinstance(value, dict):
        return {encodable(str(k)): limit_value(v, max_chars) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [limit_value(v, max_chars) for v in value]
    return value


def _value_needs_work(value: Any, max_chars: int) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _needs_work(item, max_chars):
                return True
        elif isinstance(item, dict):
            for k, v in item.items():
                if isinstance(k, str) and _needs_work(k, max_chars):
                    return True
                stack.append(v)
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


class FieldTruncator:
    """A pipeline transform: text is encodable and no content field or attribute value is over `max_chars`."""

    def __init__(self, max_chars: int) -> None:
        self.max_chars = max_chars if max_chars > 0 else 2**62

    def __call__(self, span: Span) -> None:
        limit = self.max_chars
        for name in _SPAN_STR_FIELDS:
            value = getattr(span, name)
            if isinstance(value, str) and (len(value) > limit or not value.isascii()):
                value = encodable(value)
                if name in _TRUNCATED_FIELDS:
                    value = truncate_text(value, limit)
                setattr(span, name, value)
        for name in _SPAN_JSON_FIELDS:
            value = getattr(span, name)
            if value and _value_needs_work(value, limit):
                setattr(span, name, limit_value(value, limit))

    def feedback(self, fb: Feedback) -> None:
        for name in ("feedback_id", "message_id", "feedback_type", "user_id", "session_id", "trace_id", "span_id"):
            value = getattr(fb, name)
            if isinstance(value, str):
                setattr(fb, name, encodable(value))
        if fb.feedback_text:
            fb.feedback_text = truncate_text(encodable(fb.feedback_text), self.max_chars)
        if fb.metadata and _value_needs_work(fb.metadata, self.max_chars):
            fb.metadata = limit_value(fb.metadata, self.max_chars)
