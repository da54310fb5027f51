"""Native events (docs/events.md) and the article's log lines <-> model records.

Pure: bytes in, `Span`/`Feedback` out, with a per-event error naming the field for anything invalid.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from llmlens.model import (
    DEFAULT_PROJECT,
    MAX_JSON_DEPTH,
    NUMBER_LIMITS,
    CostSource,
    ErrorType,
    Feedback,
    FeedbackType,
    Score,
    Span,
    SpanKind,
    Status,
    bounded_json,
    classify_error,
    new_trace_id,
    normalize_span_id,
    normalize_trace_id,
    now_us,
    parse_timestamp_us,
    span_id_from_text,
    trace_id_from_text,
)

from .compressed import MAX_DECOMPRESSED_BYTES, DecompressedTooLarge, InvalidCompressedBody, decompress_body
from .json_text import JsonTooDeep, loads_untrusted
from .scores import ScoreEventError, score_from_event

# Read at top level or inside `metadata` (top level wins).
CONTEXT_FIELDS = (
    "user_id",
    "session_id",
    "feature",
    "environment",
    "service",
    "template_id",
    "template_version",
    "variables",
    "message_id",
    "trace_id",
    "span_id",
    "parent_span_id",
    "project",
)
_INT_FIELDS = (
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
_NON_NEGATIVE_FLOATS = ("latency_ms", "cost_usd", "ttft_ms", "tokens_per_second", "cost_saved_usd")
_STR_FIELDS = (
    "name",
    "provider",
    "model",
    "response_model",
    "finish_reason",
    "user_id",
    "session_id",
    "feature",
    "environment",
    "service",
    "template_id",
    "template_version",
    "message_id",
    "tool_name",
    "http_method",
    "http_route",
    "retrieval_query",
    "replay_of",
    "error_message",
)
_BOOL_FIELDS = ("streamed", "tool_success", "cache_hit", "blocked")
_JSON_FIELDS = (
    "request_params",
    "tools",
    "tool_calls",
    "variables",
    "input_messages",
    "output_messages",
    "tool_args",
    "tool_result",
    "documents",
)
MAX_TEXT_CHARS = 1_000_000


class BodyError(ValueError):
    """The request body as a whole cannot be decoded (HTTP 400)."""


class BodyTooLarge(BodyError):
    """The body expands past the decompressed-size limit (HTTP 413)."""


class EventError(ValueError):
    """One event is invalid; the message names the field."""


@dataclass(slots=True)
class DecodedEvents:
    spans: list[Span] = field(default_factory=list)
    feedback: list[Feedback] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)
    # Per input index: the message id of an LLM call (generated when absent), else None.
    message_ids: list[str | None] = field(default_factory=list)
    # `{"type": "score"}` events with their input index; not counted in `accepted` until the receiver
    # has stored them (the name's type is checked against the store, see `quality.record_scores`).
    scores: list[tuple[int, Score]] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return len(self.spans) + len(self.feedback)


def decompress(body: bytes, content_encoding: str | None, max_bytes: int = MAX_DECOMPRESSED_BYTES) -> bytes | bytearray:
    """Undo `Content-Encoding` (gzip, deflate), refusing output past `max_bytes` as it is produced:
    BodyTooLarge past it, BodyError for data that is not valid in its encoding."""
    try:
        return decompress_body(body, content_encoding, max_bytes)
    except DecompressedTooLarge as exc:
        raise BodyTooLarge(str(exc)) from None
    except InvalidCompressedBody as exc:
        raise BodyError(str(exc)) from None


def parse_body(
    body: bytes,
    content_type: str | None,
    content_encoding: str | None = None,
    max_decompressed_bytes: int = MAX_DECOMPRESSED_BYTES,
) -> list[Any]:
    """A JSON array, {"events": [...]}, one event object, or NDJSON -> list of raw events.

    `body` is decompressed first when `content_encoding` says so (see `decompress`). An NDJSON line
    that is not JSON becomes a `BodyError` instance in the list, so that the valid lines are still
    kept and the bad one is reported by index.
    """
    ctype = (content_type or "").split(";")[0].strip().lower()
    # Decompressed here, not by the caller, so the decompressed bytes are dropped as soon as they are
    # text: a body near the limit is then held twice at most, not three times.
    data: bytes | bytearray = body
    if content_encoding:
        data = decompress(body, content_encoding, max_decompressed_bytes)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyError(f"body is not UTF-8: {exc}") from None
    del data
    if not text.strip():
        raise BodyError("body is empty")
    if "\\u" in text and _SURROGATE_ESCAPE.search(text):
        # JSON may escape lone UTF-16 surrogates, which are not text: repair them once parsed (after
        # cutting deep values, as the repair walks every level; an event's fields keep MAX_JSON_DEPTH).
        events = _parse_body_text(text, ctype)
        return [_repair_surrogates(bounded_json(e, MAX_JSON_DEPTH + 1)) for e in events]
    return _parse_body_text(text, ctype)


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _repair_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
        return value
    if isinstance(value, dict):
        return {_repair_surrogates(k): _repair_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_repair_surrogates(v) for v in value]
    return value


def _parse_body_text(text: str, ctype: str) -> list[Any]:
    if ctype in ("application/x-ndjson", "application/jsonl", "application/ndjson"):
        return _parse_ndjson(text)
    try:
        doc = loads_untrusted(text)
    except JsonTooDeep as exc:
        raise BodyError(f"body is not valid JSON: {exc}") from None
    except json.JSONDecodeError as exc:
        # NDJSON sent without its content type still works.
        if "\n" in text.strip():
            lines = _parse_ndjson(text)
            if any(not isinstance(x, BodyError) for x in lines):
                return lines
        raise BodyError(f"body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if isinstance(doc, list):
        return doc
    if isinstance(doc, dict):
        events = doc.get("events")
        if isinstance(events, list) and "type" not in doc:
            return events
        return [doc]
    raise BodyError("body must be a JSON array, an object {'events': [...]}, one event object, or NDJSON")


def _parse_ndjson(text: str) -> list[Any]:
    out: list[Any] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(loads_untrusted(line))
        except JsonTooDeep as exc:
            out.append(BodyError(f"line {lineno}: {exc}"))
        except json.JSONDecodeError as exc:
            out.append(BodyError(f"line {lineno} is not JSON: {exc.msg}"))
    return out


def event_type(event: dict[str, Any]) -> str:
    """The explicit `type`, else recognise the article's log shapes by their fields."""
    explicit = event.get("type")
    if isinstance(explicit, str) and explicit:
        return explicit.strip().lower()
    if "feedback_type" in event and "message_id" in event:
        return "feedback"
    if "tool_name" in event:
        return "tool"
    if "model" in event and ("prompt" in event or "response" in event or "prompt_tokens" in event):
        return "llm"
    if "documents" in event and ("query" in event or "retrieval_query" in event):
        return "retrieval"
    if "kind" in event and "trace_id" in event:
        return "span"
    raise EventError(
        "cannot tell the event type: set 'type' (llm, tool, retrieval, feedback, span) or send the fields "
        "of log_llm_call / log_tool_call / log_feedback"
    )


def decode_events(
    raw_events: list[Any], *, project: str | None = None, received_us: int | None = None
) -> DecodedEvents:
    out = DecodedEvents()
    now = received_us if received_us is not None else now_us()
    for index, raw in enumerate(raw_events):
        try:
            if isinstance(raw, BodyError):
                raise EventError(str(raw))
            if not isinstance(raw, dict):
                raise EventError(f"event must be a JSON object, got {type(raw).__name__}")
            # The event itself is a level: each of its fields keeps MAX_JSON_DEPTH levels.
            raw = bounded_json(raw, MAX_JSON_DEPTH + 1)
            kind = event_type(raw)
            if kind == "feedback":
                out.feedback.append(feedback_from_event(raw, project=project, now=now))
                out.message_ids.append(None)
            elif kind == "score":
                out.scores.append((index, score_from_event(raw, project=project, now_us=now)))
                out.message_ids.append(None)
            else:
                span = span_from_event(raw, kind, project=project, now=now)
                out.spans.append(span)
                out.message_ids.append(span.message_id if span.kind == SpanKind.LLM else None)
        except (EventError, ScoreEventError) as exc:
            out.rejected.append((index, str(exc)))
            out.message_ids.append(None)
    return out


# --- field readers -----------------------------------------------------------------------------


def _context(event: dict[str, Any]) -> dict[str, Any]:
    meta = event.get("metadata")
    merged: dict[str, Any] = {}
    if isinstance(meta, dict):
        for key in CONTEXT_FIELDS:
            if key in meta and meta[key] is not None:
                merged[key] = meta[key]
    for key in CONTEXT_FIELDS:
        if event.get(key) is not None:
            merged[key] = event[key]
    return merged


def _metadata(event: dict[str, Any]) -> dict[str, Any]:
    meta = event.get("metadata")
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise EventError(f"metadata must be an object, got {type(meta).__name__}")
    return meta


def _as_str(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value[:MAX_TEXT_CHARS]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise EventError(f"{name} must be a string, got {type(value).__name__}")


def _as_int(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise EventError(f"{name} must be a non-negative integer, got a boolean")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        if len(value.strip()) > 19:
            raise EventError(f"{name} is too large: {_shown(value)}")
        value = int(value)
    if not isinstance(value, int):
        raise EventError(f"{name} must be a non-negative integer, got {_shown(value)}")
    if value < 0:
        raise EventError(f"{name} must be non-negative, got {_shown(value)}")
    if value > 2**62:
        raise EventError(f"{name} is too large: {_shown(value)}")
    return value


def _shown(value: Any) -> str:
    """`value` as an error message shows it: short, and never by converting a huge int to text."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 256:
        return f"a number of about {int(value.bit_length() * 0.30103)} digits"
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:60]}... ({len(text)} chars)"


def _as_float(name: str, value: Any, *, non_negative: bool = True) -> float | None:
    """A finite number, within NUMBER_LIMITS[name] when the field has a limit."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise EventError(f"{name} must be a number, got {type(value).__name__}")
    try:
        x = float(value)
    except ValueError:
        raise EventError(f"{name} must be a number, got {_shown(value)}") from None
    except OverflowError:  # an int too large for a float
        x = math.inf
    if math.isnan(x):
        raise EventError(f"{name} must be a number, got {_shown(value)}")
    if non_negative and x < 0:
        raise EventError(f"{name} must be non-negative, got {_shown(value)}")
    limit = NUMBER_LIMITS.get(name, math.inf)
    if not -limit <= x <= limit or math.isinf(x):
        where = f"at most {limit:g}" if math.isfinite(limit) else "a finite number"
        raise EventError(f"{name} is out of range: must be {where}, got {_shown(value)}")
    return x


def _as_bool(name: str, value: Any) -> bool | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    raise EventError(f"{name} must be a boolean, got {value!r}")


def _timestamp(event: dict[str, Any], now: int) -> int:
    value = event.get("timestamp")
    if value is None:
        return now
    try:
        return parse_timestamp_us(value)
    except ValueError as exc:
        raise EventError(f"timestamp: {exc}") from None


def _ids(span: Span, ctx: dict[str, Any]) -> None:
    try:
        if ctx.get("trace_id") is not None:
            span.trace_id = normalize_trace_id(str(ctx["trace_id"]))
        if ctx.get("parent_span_id") is not None:
            span.parent_span_id = normalize_span_id(str(ctx["parent_span_id"]))
    except ValueError as exc:
        raise EventError(str(exc)) from None
    raw_span_id = ctx.get("span_id")
    if raw_span_id is not None:
        text = str(raw_span_id)
        try:
            span.span_id = normalize_span_id(text)
        except ValueError:
            span.span_id = span_id_from_text(text)


def _messages_text(messages: Any) -> str | None:
    """Flatten chat messages ([{role, content}] with string or part-list content) to text."""
    if messages is None:
        return None
    if isinstance(messages, str):
        return messages
    if not isinstance(messages, list):
        return json.dumps(messages, ensure_ascii=False)
    parts: list[str] = []
    for msg in messages:
        if not isinstance(msg, dict):
            parts.append(str(msg))
            continue
        content = msg.get("content")
        if isinstance(content, list):
            content = "".join(
                str(p.get("text") or p.get("content") or "") if isinstance(p, dict) else str(p) for p in content
            )
        role = msg.get("role")
        text = "" if content is None else str(content)
        parts.append(f"{role}: {text}" if role else text)
    return "\n".join(parts)


def _status(span: Span, event: dict[str, Any], error: Any) -> None:
    status = event.get("status")
    if status is not None and status not in ("ok", "error", "unset"):
        raise EventError(f"status must be 'ok', 'error' or 'unset', got {status!r}")
    error_type = event.get("error_type")
    if error_type is not None:
        try:
            span.error_type = ErrorType(str(error_type)).value
        except ValueError:
            span.error_type = classify_error(str(error_type)).value
    span.error_message = _as_str("error", error if isinstance(error, str) or error is None else json.dumps(error))
    if status is not None:
        span.status = status
    elif span.error_message or span.error_type or span.tool_success is False:
        span.status = Status.ERROR.value
    else:
        span.status = Status.OK.value
    if span.status == Status.ERROR.value and span.error_type is None and span.kind == SpanKind.LLM:
        span.error_type = classify_error(span.error_message, status=span.http_status).value


def span_from_event(event: dict[str, Any], kind: str, *, project: str | None, now: int) -> Span:
    ctx = _context(event)
    span_kind = {"llm": SpanKind.LLM, "tool": SpanKind.TOOL, "retrieval": SpanKind.RETRIEVAL}.get(kind)
    if kind == "span":
        raw_kind = event.get("kind", "other")
        try:
            span_kind = SpanKind(str(raw_kind).lower())
        except ValueError:
            raise EventError(f"kind must be one of {', '.join(k.value for k in SpanKind)}, got {raw_kind!r}") from None
    elif span_kind is None:
        raise EventError(f"unknown event type {kind!r} (use llm, tool, retrieval, feedback, span or score)")

    span = Span(trace_id="", span_id="", kind=span_kind.value)
    span.project = _as_str("project", ctx.get("project") or project) or DEFAULT_PROJECT
    span.start_us = _timestamp(event, now)
    _ids(span, ctx)
    for name in _STR_FIELDS:
        if name in ctx:
            setattr(span, name, _as_str(name, ctx[name]))
        elif name in event:
            setattr(span, name, _as_str(name, event[name]))
    for name in _INT_FIELDS:
        if name in event:
            setattr(span, name, _as_int(name, event[name]))
    for name in _NON_NEGATIVE_FLOATS:
        if name in event:
            setattr(span, name, _as_float(name, event[name]))
    if span.cost_usd is not None:
        span.cost_source = CostSource.CALLER.value
    if "temperature" in event:
        span.temperature = _as_float("temperature", event["temperature"])
    for name in _BOOL_FIELDS:
        if name in event:
            setattr(span, name, _as_bool(name, event[name]))
    for name in _JSON_FIELDS:
        if name in event:
            setattr(span, name, event[name])
    if "variables" in ctx:
        span.variables = ctx["variables"]
    span.metadata = _metadata(event)
    attributes = event.get("attributes")
    if attributes is not None:
        if not isinstance(attributes, dict):
            raise EventError("attributes must be an object")
        span.attributes = attributes

    error: Any = event.get("error", event.get("error_message"))
    if span_kind == SpanKind.LLM:
        _llm_fields(span, event)
    elif span_kind == SpanKind.TOOL:
        if "args" in event:
            span.tool_args = event["args"]
        if "result" in event:
            span.tool_result = event["result"]
        if "success" in event:
            span.tool_success = _as_bool("success", event["success"])
        if span.tool_success is None and "tool_success" not in event:
            span.tool_success = not error
        if not span.tool_name:
            raise EventError("tool_name is required for a tool event")
        span.name = span.name or span.tool_name
    elif span_kind == SpanKind.RETRIEVAL:
        if "query" in event:
            span.retrieval_query = _as_str("query", event["query"])
        _validate_documents(span.documents)
        span.name = span.name or "retrieval"
    else:
        if "prompt" in event or "response" in event:
            _content(span, event)
    _status(span, event, error)

    if not span.trace_id:
        # A log line from the article has no trace: its message id (or span id) anchors one.
        span.trace_id = trace_id_from_text(span.message_id) if span.message_id else new_trace_id()
    if not span.span_id:
        span.span_id = span_id_from_text(span.message_id) if span.message_id else _event_digest(event)[:8].hex()
    return span


def _event_digest(event: dict[str, Any]) -> bytes:
    canonical = json.dumps(event, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.blake2b(canonical.encode(), digest_size=16).digest()


def _content(span: Span, event: dict[str, Any]) -> None:
    prompt = event.get("prompt")
    if isinstance(prompt, list):
        span.input_messages = prompt
        span.prompt = _messages_text(prompt)
    elif prompt is not None:
        span.prompt = _as_str("prompt", prompt)
    response = event.get("response")
    if isinstance(response, list):
        span.output_messages = response
        span.response = _messages_text(response)
    elif isinstance(response, dict):
        span.output_messages = [response]
        span.response = _messages_text([response])
    elif response is not None:
        span.response = _as_str("response", response)
    if span.prompt is None and span.input_messages is not None:
        span.prompt = _messages_text(span.input_messages)
    if span.response is None and span.output_messages is not None:
        span.response = _messages_text(span.output_messages)


def _llm_fields(span: Span, event: dict[str, Any]) -> None:
    _content(span, event)
    if not span.model:
        raise EventError("model is required for an LLM call")
    if span.total_tokens is None and span.prompt_tokens is not None and span.completion_tokens is not None:
        span.total_tokens = span.prompt_tokens + span.completion_tokens
    if span.message_id is None:
        # Derived from the event itself, so re-sending or re-importing the same line stores it once.
        span.message_id = str(uuid.UUID(bytes=_event_digest(event)))
    span.name = span.name or span.model
    if span.tool_calls is not None and not isinstance(span.tool_calls, list):
        raise EventError("tool_calls must be a list")
    if span.provider is None and span.model:
        span.provider = guess_provider(span.model)


def _validate_documents(documents: Any) -> None:
    if documents is None:
        return
    if not isinstance(documents, list):
        raise EventError("documents must be a list of {id, content, score}")
    for i, doc in enumerate(documents):
        if not isinstance(doc, dict | str):
            raise EventError(f"documents[{i}] must be an object or a string")
        if isinstance(doc, dict) and doc.get("score") is not None:
            _as_float(f"documents[{i}].score", doc["score"], non_negative=False)


def guess_provider(model: str) -> str | None:
    m = model.lower()
    if "/" in m:
        return m.split("/", 1)[0]
    if m.startswith(("gpt-", "o1", "o3", "o4", "text-embedding", "chatgpt", "ft:gpt", "davinci", "babbage")):
        return "openai"
    if m.startswith("claude"):
        return "anthropic"
    if m.startswith("gemini"):
        return "google"
    if m.startswith(("mistral", "mixtral", "codestral")):
        return "mistral"
    if m.startswith("command"):
        return "cohere"
    return None


def feedback_from_event(event: dict[str, Any], *, project: str | None, now: int) -> Feedback:
    ctx = _context(event)
    message_id = _as_str("message_id", ctx.get("message_id") or event.get("message_id"))
    if not message_id:
        raise EventError("message_id is required for feedback")
    raw_type = event.get("feedback_type")
    try:
        feedback_type = FeedbackType(str(raw_type)).value
    except ValueError:
        allowed = ", ".join(t.value for t in FeedbackType)
        raise EventError(f"feedback_type must be one of {allowed}, got {raw_type!r}") from None
    fb = Feedback(
        feedback_id=_as_str("feedback_id", event.get("feedback_id")) or str(uuid.UUID(bytes=_event_digest(event))),
        message_id=message_id,
        feedback_type=feedback_type,
        timestamp_us=_timestamp(event, now),
        project=_as_str("project", ctx.get("project") or project) or DEFAULT_PROJECT,
        user_id=_as_str("user_id", ctx.get("user_id")),
        session_id=_as_str("session_id", ctx.get("session_id")),
        feedback_text=_as_str("feedback_text", event.get("feedback_text", event.get("text"))),
        metadata=_metadata(event),
    )
    try:
        if ctx.get("trace_id") is not None:
            fb.trace_id = normalize_trace_id(str(ctx["trace_id"]))
        if ctx.get("span_id") is not None:
            fb.span_id = normalize_span_id(str(ctx["span_id"]))
    except ValueError as exc:
        raise EventError(str(exc)) from None
    return fb


# --- log files ---------------------------------------------------------------------------------


def event_from_log_line(line: str) -> dict[str, Any] | None:
    """The JSON object in one line of the article's logger output, with or without a prefix
    such as `INFO:llm_observability:` or a timestamped formatter. None for blank lines.

    Raises EventError when the line holds no JSON object.
    """
    stripped = line.strip()
    if not stripped:
        return None
    start = stripped.find("{")
    if start < 0:
        raise EventError("no JSON object on this line")
    try:
        obj = loads_untrusted(stripped[start:])
    except JsonTooDeep as exc:
        raise EventError(str(exc)) from None
    except json.JSONDecodeError as exc:
        raise EventError(f"invalid JSON: {exc.msg} at column {start + exc.colno}") from None
    if not isinstance(obj, dict):
        raise EventError("the JSON on this line is not an object")
    return obj
