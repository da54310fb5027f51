"""Live spans: a plain dict (the native `span` event) filled in by setters and queued on end.

The hot path is deliberately small: random ids, two clocks, one dict, one deque append.
Serialisation happens later, in the exporter thread.
"""

from __future__ import annotations

from random import getrandbits
from time import perf_counter, time
from types import TracebackType
from typing import Any

from . import _state
from ._context import context_attrs_var, current_span_var
from ._internal import report_internal_error

KINDS = frozenset({"request", "llm", "tool", "retrieval", "embedding", "chain", "agent", "other"})
_MAX_ERROR_MESSAGE = 4000


def new_span_id() -> str:
    return f"{getrandbits(64) or 1:016x}"


def new_trace_id() -> str:
    return f"{getrandbits(128) or 1:032x}"


def apply_context(event: dict[str, Any], attrs: dict[str, Any]) -> None:
    """Copy `llmlens.context(...)` attributes onto an event; the event's own values win."""
    for key, value in attrs.items():
        if key == "metadata":
            metadata = event.get("metadata")
            event["metadata"] = {**value, **metadata} if metadata else dict(value)
        elif key not in event:
            event[key] = value


def error_fields(exc: BaseException) -> tuple[str, str]:
    """(error_type, error_message) for an exception, using the provider's code and status if any."""
    from ..model import ErrorType, classify_error  # the error path only: keeps `import llmlens` light

    code = getattr(exc, "code", None)
    body_type = getattr(exc, "type", None)
    status = getattr(exc, "status_code", None)
    message = str(exc) or type(exc).__name__
    # A content-filter refusal arrives as a plain 400 "invalid request"; only its text tells.
    if classify_error(message[:500]) is ErrorType.CONTENT_FILTER:
        return ErrorType.CONTENT_FILTER.value, message[:_MAX_ERROR_MESSAGE]
    error_type = classify_error(
        code if isinstance(code, str) else None,
        body_type if isinstance(body_type, str) else None,
        type(exc).__name__,
        None if isinstance(status, int) else message[:200],  # a status says more than prose
        status=status if isinstance(status, int) else None,
    )
    return error_type.value, message[:_MAX_ERROR_MESSAGE]


class SpanHandle:
    """One span being observed. Use as a context manager (`with llmlens.span(...) as s`) or call `end()`."""

    __slots__ = ("_ended", "_start", "_token", "event", "span_id", "trace_id")

    trace_id: str
    span_id: str

    def __init__(self, kind: str, name: str, parent: SpanHandle | None, start_time: float | None = None) -> None:
        span_id = f"{getrandbits(64) or 1:016x}"
        if parent is None:
            trace_id = f"{getrandbits(128) or 1:032x}"
            self.event: dict[str, Any] = {
                "type": "span",
                "kind": kind,
                "name": name,
                "trace_id": trace_id,
                "span_id": span_id,
                "timestamp": time() if start_time is None else start_time,
                "status": "ok",
            }
        else:
            trace_id = parent.trace_id
            self.event = {
                "type": "span",
                "kind": kind,
                "name": name,
                "trace_id": trace_id,
                "span_id": span_id,
                "parent_span_id": parent.span_id,
                "timestamp": time() if start_time is None else start_time,
                "status": "ok",
            }
        self.trace_id = trace_id
        self.span_id = span_id
        attrs = context_attrs_var.get()
        if attrs:
            apply_context(self.event, attrs)
        self._token: Any = None
        self._ended = False
        self._start = perf_counter()

    # -- lifecycle -------------------------------------------------------------------------------

    def __enter__(self) -> SpanHandle:
        self._token = current_span_var.set(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        token, self._token = self._token, None
        if token is not None:
            try:
                current_span_var.reset(token)
            except ValueError:
                # Exited in another context (e.g. a generator finalised elsewhere): nothing to restore.
                pass
        if exc is not None:
            self.record_exception(exc)
        self.end()

    def end(self) -> None:
        """Stamp the latency and queue the span; later calls do nothing."""
        if self._ended:
            return
        self._ended = True
        self.event["latency_ms"] = (perf_counter() - self._start) * 1000.0
        exporter = _state.exporter
        if exporter is not None:
            exporter.enqueue(self.event)

    @property
    def elapsed_ms(self) -> float:
        return (perf_counter() - self._start) * 1000.0

    # -- setters ---------------------------------------------------------------------------------

    def set(self, **fields: Any) -> SpanHandle:
        """Set any field of `llmlens.model.Span` by name (`feature=`, `cost_usd=`, `http_status=`...)."""
        self.event.update(fields)
        return self

    def set_attribute(self, key: str, value: Any) -> SpanHandle:
        attributes = self.event.get("attributes")
        if attributes is None:
            attributes = self.event["attributes"] = {}
        attributes[key] = value
        return self

    def set_attributes(self, attributes: dict[str, Any] | None = None, /, **more: Any) -> SpanHandle:
        target = self.event.get("attributes")
        if target is None:
            target = self.event["attributes"] = {}
        if attributes:
            target.update(attributes)
        target.update(more)
        return self

    def set_metadata(self, metadata: dict[str, Any] | None = None, /, **more: Any) -> SpanHandle:
        target = self.event.get("metadata")
        if target is None:
            target = self.event["metadata"] = {}
        if metadata:
            target.update(metadata)
        target.update(more)
        return self

    def set_model(self, model: str | None, provider: str | None = None) -> SpanHandle:
        if model is not None:
            self.event["model"] = model
        if provider is not None:
            self.event["provider"] = provider
        return self

    def set_tokens(
        self,
        prompt: int | None = None,
        completion: int | None = None,
        total: int | None = None,
        *,
        cached: int | None = None,
        cache_write: int | None = None,
        reasoning: int | None = None,
    ) -> SpanHandle:
        ev = self.event
        for key, value in (
            ("prompt_tokens", prompt),
            ("completion_tokens", completion),
            ("cached_tokens", cached),
            ("cache_write_tokens", cache_write),
            ("reasoning_tokens", reasoning),
        ):
            if value is not None:
                ev[key] = value
        if total is None and prompt is not None and completion is not None:
            total = prompt + completion
        if total is not None:
            ev["total_tokens"] = total
        return self

    def set_cost(self, cost_usd: float) -> SpanHandle:
        self.event["cost_usd"] = cost_usd
        return self

    def set_prompt(self, prompt: Any) -> SpanHandle:
        """A string, or a list of chat messages (`[{"role", "content"}]`)."""
        if isinstance(prompt, str):
            self.event["prompt"] = prompt
        else:
            self.event["input_messages"] = prompt
        return self

    def set_response(self, response: Any) -> SpanHandle:
        if isinstance(response, str):
            self.event["response"] = response
        else:
            self.event["output_messages"] = response
        return self

    def set_documents(self, documents: list[Any], query: str | None = None) -> SpanHandle:
        """Retrieved chunks: dicts with `id`, `content`, `score`, `metadata`, or plain strings."""
        self.event["documents"] = [d if isinstance(d, dict) else {"content": d} for d in documents]
        if query is not None:
            self.event["retrieval_query"] = query
        return self

    def set_tool_args(self, args: Any, tool_name: str | None = None) -> SpanHandle:
        self.event["tool_args"] = args
        if tool_name is not None:
            self.event["tool_name"] = tool_name
        return self

    def set_tool_result(self, result: Any, success: bool = True) -> SpanHandle:
        self.event["tool_result"] = result
        self.event["tool_success"] = success
        return self

    def set_message_id(self, message_id: str) -> SpanHandle:
        self.event["message_id"] = message_id
        return self

    @property
    def message_id(self) -> str | None:
        value = self.event.get("message_id")
        return value if isinstance(value, str) else None

    def set_error(self, message: str, error_type: str = "other") -> SpanHandle:
        self.event["status"] = "error"
        self.event["error_type"] = error_type
        self.event["error_message"] = message[:_MAX_ERROR_MESSAGE]
        if self.event.get("kind") == "tool":
            self.event["tool_success"] = False
        return self

    def record_exception(self, exc: BaseException) -> SpanHandle:
        try:
            error_type, message = error_fields(exc)
            self.set_error(message, error_type)
        except Exception as internal:
            report_internal_error(internal, "SpanHandle.record_exception")
        return self


class NoopSpan(SpanHandle):
    """What `llmlens.span()` gives when the SDK is off: every setter accepted, nothing recorded."""

    __slots__ = ()

    def __init__(self) -> None:
        self.event = {}
        self.trace_id = ""
        self.span_id = ""
        self._token = None
        self._ended = True
        self._start = 0.0

    def __enter__(self) -> SpanHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def end(self) -> None:
        return None

    def set(self, **fields: Any) -> SpanHandle:
        return self

    def set_attribute(self, key: str, value: Any) -> SpanHandle:
        return self

    def set_attributes(self, attributes: dict[str, Any] | None = None, /, **more: Any) -> SpanHandle:
        return self

    def set_metadata(self, metadata: dict[str, Any] | None = None, /, **more: Any) -> SpanHandle:
        return self

    def set_model(self, model: str | None, provider: str | None = None) -> SpanHandle:
        return self

    def set_tokens(
        self,
        prompt: int | None = None,
        completion: int | None = None,
        total: int | None = None,
        *,
        cached: int | None = None,
        cache_write: int | None = None,
        reasoning: int | None = None,
    ) -> SpanHandle:
        return self

    def set_cost(self, cost_usd: float) -> SpanHandle:
        return self

    def set_prompt(self, prompt: Any) -> SpanHandle:
        return self

    def set_response(self, response: Any) -> SpanHandle:
        return self

    def set_documents(self, documents: list[Any], query: str | None = None) -> SpanHandle:
        return self

    def set_tool_args(self, args: Any, tool_name: str | None = None) -> SpanHandle:
        return self

    def set_tool_result(self, result: Any, success: bool = True) -> SpanHandle:
        return self

    def set_message_id(self, message_id: str) -> SpanHandle:
        return self

    def set_error(self, message: str, error_type: str = "other") -> SpanHandle:
        return self

    def record_exception(self, exc: BaseException) -> SpanHandle:
        return self


NOOP_SPAN = NoopSpan()


def span(name: str, kind: str = "chain", *, start_time: float | None = None) -> SpanHandle:
    """`with llmlens.span("retrieve", kind="retrieval") as s:` - a child of the current span."""
    if _state.exporter is None:
        return NOOP_SPAN
    try:
        if kind not in KINDS:
            raise ValueError(f"span kind must be one of {sorted(KINDS)}, got {kind!r}")
        return SpanHandle(kind, name, current_span_var.get(), start_time)
    except Exception as exc:
        report_internal_error(exc, "llmlens.span")
        return NOOP_SPAN


def current_span() -> SpanHandle:
    """The innermost active span, or a no-op span when there is none."""
    active = current_span_var.get()
    return NOOP_SPAN if active is None else active
