"""What every provider integration shares: one `llm` span per call, streams observed in place.

The user's code must see exactly what it would without llmlens: the same return value, the
same exception, the same stream object. So recording is guarded (an SDK bug is reported, never
raised) and streams are observed by swapping the stream's private iterator for one that watches
the chunks go by, rather than by wrapping the stream in a proxy.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from time import perf_counter
from typing import Any

from .. import _state
from .._context import current_span_var
from .._internal import report_internal_error
from .._span import SpanHandle, error_fields

# Keyword arguments that are transport settings or content, not model parameters.
NOT_PARAMS = frozenset(
    {
        "messages",
        "input",
        "instructions",
        "prompt",
        "system",
        "tools",
        "extra_headers",
        "extra_query",
        "extra_body",
        "timeout",
    }
)


def given(value: Any) -> bool:
    """False for the provider SDKs' `NOT_GIVEN` / `omit` sentinels."""
    return value is not None and type(value).__name__ not in ("NotGiven", "Omit")


def request_params(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in kwargs.items() if k not in NOT_PARAMS and given(v)}


def content_text(content: Any) -> str | None:
    """The text of a message's content: a string, or a list of parts with `text`."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            text = part.get("text") if isinstance(part, dict) else getattr(part, "text", None)
            if isinstance(text, str):
                texts.append(text)
        return "\n".join(texts) if texts else None
    return None


def flatten_messages(messages: Any) -> str | None:
    if not isinstance(messages, list):
        return None
    texts = []
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else getattr(message, "content", None)
        text = content_text(content)
        if text:
            texts.append(text)
    return "\n".join(texts) if texts else None


def get(obj: Any, name: str, default: Any = None) -> Any:
    """Attribute or key: provider objects are pydantic models, request params are dicts."""
    if obj is None:
        return default
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def retry_after_seconds(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    try:
        ms = headers.get("retry-after-ms")
        if ms:
            return float(ms) / 1000.0
        value = headers.get("retry-after")
        return float(value) if value else None
    except (TypeError, ValueError):
        return None


def with_cause(message: str, exc: BaseException) -> str:
    """The message plus what caused it: the SDKs say only "Connection error." and keep the reason
    (refused, unresolvable host, TLS failure...) on the exception they wrap."""
    cause = exc.__cause__
    text = str(cause) if cause is not None else ""
    if not text or text in message:
        return message
    return f"{message} ({type(cause).__name__}: {text})"


class LLMCall:
    """One provider call being observed. Subclasses read the provider's responses and chunks."""

    provider = ""
    operation = ""

    def __init__(self, kwargs: dict[str, Any]) -> None:
        config = _state.config
        self.capture_content = config is None or config.capture_content
        model = kwargs.get("model")
        model = model if isinstance(model, str) else None
        self.span = SpanHandle("llm", f"{self.operation} {model or ''}".strip(), current_span_var.get())
        self.event = self.span.event
        ev = self.event
        ev["provider"] = self.provider
        if model:
            ev["model"] = model
        params = request_params(kwargs)
        ev["request_params"] = params
        ev["streamed"] = bool(params.get("stream"))
        temperature = params.get("temperature")
        if isinstance(temperature, int | float):
            ev["temperature"] = float(temperature)
        max_tokens = params.get("max_tokens", params.get("max_completion_tokens", params.get("max_output_tokens")))
        if isinstance(max_tokens, int):
            ev["max_tokens"] = max_tokens
        tools: Any = kwargs.get("tools")
        if given(tools):
            ev["tools"] = list(tools)
        if self.capture_content:
            self.record_input(kwargs)
        self.first_token_at: float | None = None
        self.finished = False

    # -- provider specific -------------------------------------------------------------------------

    def record_input(self, kwargs: dict[str, Any]) -> None:
        raise NotImplementedError

    def record_response(self, response: Any) -> None:
        raise NotImplementedError

    def record_chunk(self, chunk: Any) -> None:
        raise NotImplementedError

    def record_stream_end(self) -> None:
        raise NotImplementedError

    # -- shared ------------------------------------------------------------------------------------

    def mark_first_token(self) -> None:
        if self.first_token_at is None:
            self.first_token_at = perf_counter()
            self.event["ttft_ms"] = self.span.elapsed_ms

    def set_output(self, text: str | None, tool_calls: list[dict[str, Any]] | None) -> None:
        ev = self.event
        if tool_calls:
            ev["tool_calls"] = tool_calls
        if self.capture_content:
            if text is not None:
                ev["response"] = text
            message: dict[str, Any] = {"role": "assistant", "content": text}
            if tool_calls:
                message["tool_calls"] = tool_calls
            ev["output_messages"] = [message]

    def set_finish_reason(self, reason: Any, filtered: bool) -> None:
        if not isinstance(reason, str):
            return
        self.event["finish_reason"] = reason
        if filtered:
            self.span.set_error(f"the provider's content filter stopped the response ({reason})", "content_filter")

    def fail(self, exc: BaseException) -> None:
        if self.finished:
            return
        self.finished = True
        try:
            error_type, message = error_fields(exc)
            if error_type == "connection_error":
                message = with_cause(message, exc)
            self.span.set_error(message, error_type)
            status = getattr(exc, "status_code", None)
            if isinstance(status, int):
                self.span.set_attribute("http_status", status)
            retry_after = retry_after_seconds(exc)
            if retry_after is not None:
                self.span.set_attribute("retry_after_s", retry_after)
            self.span.end()
        except Exception as internal:
            report_internal_error(internal, f"{self.provider} integration")

    def finish(self, response: Any) -> None:
        if self.finished:
            return
        self.finished = True
        try:
            self.record_response(response)
        except Exception as internal:
            report_internal_error(internal, f"{self.provider} integration")
        self.span.end()

    def finish_stream(self) -> None:
        if self.finished:
            return
        self.finished = True
        try:
            self.record_stream_end()
            completion = self.event.get("completion_tokens")
            if self.first_token_at is not None and isinstance(completion, int) and completion > 0:
                seconds = perf_counter() - self.first_token_at
                if seconds > 0:
                    self.event["tokens_per_second"] = completion / seconds
        except Exception as internal:
            report_internal_error(internal, f"{self.provider} integration")
        self.span.end()

    def on_chunk(self, chunk: Any) -> None:
        try:
            self.record_chunk(chunk)
        except Exception as internal:
            report_internal_error(internal, f"{self.provider} integration")


def _observe_sync(call: LLMCall, inner: Iterator[Any]) -> Iterator[Any]:
    try:
        for chunk in inner:
            call.on_chunk(chunk)
            yield chunk
    except GeneratorExit:
        call.finish_stream()  # closed before the end: keep what was seen
        raise
    except BaseException as exc:
        call.fail(exc)
        raise
    call.finish_stream()


async def _observe_async(call: LLMCall, inner: AsyncIterator[Any]) -> AsyncIterator[Any]:
    try:
        async for chunk in inner:
            call.on_chunk(chunk)
            yield chunk
    except GeneratorExit:
        call.finish_stream()
        raise
    except BaseException as exc:
        call.fail(exc)
        raise
    call.finish_stream()


def observe_stream(call: LLMCall, stream: Any, *, is_async: bool) -> None:
    """Watch a provider stream in place: the caller keeps the very same object."""
    inner = stream._iterator  # built on first access by some SDK versions
    observed = _observe_async(call, inner) if is_async else _observe_sync(call, inner)
    stream.__dict__["_iterator"] = observed
    # A stream dropped unread and unclosed still ends its span when it is collected.
    weakref.finalize(stream, call.finish_stream)
    original_close = stream.close
    if is_async:

        async def close_async() -> None:
            try:
                await original_close()
            finally:
                call.finish_stream()

        stream.__dict__["close"] = close_async
    else:

        def close() -> None:
            try:
                original_close()
            finally:
                call.finish_stream()

        stream.__dict__["close"] = close


def start_call(factory: Callable[[dict[str, Any]], LLMCall], kwargs: dict[str, Any]) -> LLMCall | None:
    if _state.exporter is None:
        return None
    try:
        return factory(kwargs)
    except Exception as exc:
        report_internal_error(exc, "starting an llm span")
        return None


def settle(call: LLMCall, result: Any, stream_types: tuple[type, ...], async_stream_types: tuple[type, ...]) -> None:
    try:
        if isinstance(result, async_stream_types):
            observe_stream(call, result, is_async=True)
        elif isinstance(result, stream_types):
            observe_stream(call, result, is_async=False)
        else:
            call.finish(result)
    except Exception as exc:
        report_internal_error(exc, "observing an llm response")


def make_sync_wrapper(
    factory: Callable[[dict[str, Any]], LLMCall],
    stream_types: tuple[type, ...],
    async_stream_types: tuple[type, ...],
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def make(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def observed(*args: Any, **kwargs: Any) -> Any:
            call = start_call(factory, kwargs)
            if call is None:
                return original(*args, **kwargs)
            try:
                result = original(*args, **kwargs)
            except BaseException as exc:
                call.fail(exc)
                raise
            settle(call, result, stream_types, async_stream_types)
            return result

        return observed

    return make


def make_async_wrapper(
    factory: Callable[[dict[str, Any]], LLMCall],
    stream_types: tuple[type, ...],
    async_stream_types: tuple[type, ...],
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def make(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        async def observed(*args: Any, **kwargs: Any) -> Any:
            call = start_call(factory, kwargs)
            if call is None:
                return await original(*args, **kwargs)
            try:
                result = await original(*args, **kwargs)
            except BaseException as exc:
                call.fail(exc)
                raise
            settle(call, result, stream_types, async_stream_types)
            return result

        return observed

    return make
