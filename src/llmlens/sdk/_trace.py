"""`@llmlens.trace`: one span per call of a sync or async function, generator or async generator."""

from __future__ import annotations

import functools
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any, TypeVar, overload

from . import _state
from ._context import current_span_var
from ._internal import report_internal_error
from ._span import KINDS, SpanHandle

F = TypeVar("F", bound=Callable[..., Any])


def _start(kind: str, name: str, tool_params: tuple[str, ...] | None, args: Any, kwargs: Any) -> SpanHandle:
    span = SpanHandle(kind, name, current_span_var.get())
    if tool_params is not None:
        span.event["tool_name"] = name
        config = _state.config
        if config is None or config.capture_content:
            tool_args = dict(zip(tool_params, args, strict=False))
            tool_args.update(kwargs)
            span.event["tool_args"] = tool_args
    return span


def _finish_ok(span: SpanHandle, result: Any, is_tool: bool) -> None:
    if is_tool:
        config = _state.config
        if config is None or config.capture_content:
            span.event["tool_result"] = result
        span.event["tool_success"] = True
    span.end()


def _wrap_function(fn: Callable[..., Any], kind: str, name: str, tool_params: tuple[str, ...] | None) -> Any:
    is_tool = tool_params is not None

    @functools.wraps(fn)
    def traced(*args: Any, **kwargs: Any) -> Any:
        if _state.exporter is None:
            return fn(*args, **kwargs)
        try:
            span = _start(kind, name, tool_params, args, kwargs)
            token = current_span_var.set(span)
        except Exception as exc:
            report_internal_error(exc, "@trace")
            return fn(*args, **kwargs)
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            current_span_var.reset(token)
            span.record_exception(exc)
            span.end()
            raise
        current_span_var.reset(token)
        try:
            _finish_ok(span, result, is_tool)
        except Exception as exc:
            report_internal_error(exc, "@trace")
        return result

    return traced


def _wrap_coroutine(fn: Callable[..., Any], kind: str, name: str, tool_params: tuple[str, ...] | None) -> Any:
    is_tool = tool_params is not None

    @functools.wraps(fn)
    async def traced(*args: Any, **kwargs: Any) -> Any:
        if _state.exporter is None:
            return await fn(*args, **kwargs)
        try:
            span = _start(kind, name, tool_params, args, kwargs)
            token = current_span_var.set(span)
        except Exception as exc:
            report_internal_error(exc, "@trace")
            return await fn(*args, **kwargs)
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            current_span_var.reset(token)
            span.record_exception(exc)
            span.end()
            raise
        current_span_var.reset(token)
        try:
            _finish_ok(span, result, is_tool)
        except Exception as exc:
            report_internal_error(exc, "@trace")
        return result

    return traced


def _wrap_generator(fn: Callable[..., Any], kind: str, name: str) -> Any:
    """The span covers the whole iteration; the span is current while the generator body runs."""

    @functools.wraps(fn)
    def traced(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        if _state.exporter is None:
            return (yield from fn(*args, **kwargs))
        span = SpanHandle(kind, name, current_span_var.get())
        token = current_span_var.set(span)
        try:
            gen = fn(*args, **kwargs)
        finally:
            current_span_var.reset(token)
        to_send: Any = None
        to_throw: BaseException | None = None
        while True:
            token = current_span_var.set(span)
            try:
                if to_throw is not None:
                    exc, to_throw = to_throw, None
                    item = gen.throw(exc)
                else:
                    item = gen.send(to_send)
            except StopIteration as stop:
                span.end()
                return stop.value
            except BaseException as exc:
                span.record_exception(exc)
                span.end()
                raise
            finally:
                current_span_var.reset(token)
            try:
                to_send = yield item
            except GeneratorExit:
                # The consumer stopped early: close the inner generator, keep the span "ok".
                try:
                    gen.close()
                finally:
                    span.end()
                raise
            except BaseException as exc:
                to_throw = exc

    return traced


def _wrap_async_generator(fn: Callable[..., Any], kind: str, name: str) -> Any:
    @functools.wraps(fn)
    async def traced(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        if _state.exporter is None:
            async for item in fn(*args, **kwargs):
                yield item
            return
        span = SpanHandle(kind, name, current_span_var.get())
        token = current_span_var.set(span)
        try:
            agen = fn(*args, **kwargs)
        finally:
            current_span_var.reset(token)
        to_send: Any = None
        to_throw: BaseException | None = None
        while True:
            token = current_span_var.set(span)
            try:
                if to_throw is not None:
                    exc, to_throw = to_throw, None
                    item = await agen.athrow(exc)
                else:
                    item = await agen.asend(to_send)
            except StopAsyncIteration:
                span.end()
                return
            except BaseException as exc:
                span.record_exception(exc)
                span.end()
                raise
            finally:
                current_span_var.reset(token)
            try:
                to_send = yield item
            except GeneratorExit:
                try:
                    await agen.aclose()
                finally:
                    span.end()
                raise
            except BaseException as exc:
                to_throw = exc

    return traced


@overload
def trace(fn: F, /) -> F: ...


@overload
def trace(*, kind: str = "chain", name: str | None = None) -> Callable[[F], F]: ...


def trace(fn: Any = None, /, *, kind: str = "chain", name: str | None = None) -> Any:
    """`@llmlens.trace(kind="tool")`: each call becomes a span, nested under the current one.

    Works on plain and async functions, generators and async generators. Tool spans record the
    arguments and the return value (unless `capture_content=False`).
    """
    if kind not in KINDS:
        raise ValueError(f"trace kind must be one of {sorted(KINDS)}, got {kind!r}")

    def decorate(func: F) -> F:
        import inspect  # only at decoration time: it is slow to import

        span_name = name or getattr(func, "__qualname__", None) or repr(func)
        if inspect.isasyncgenfunction(func):
            return _wrap_async_generator(func, kind, span_name)  # type: ignore[no-any-return]
        if inspect.isgeneratorfunction(func):
            return _wrap_generator(func, kind, span_name)  # type: ignore[no-any-return]
        tool_params: tuple[str, ...] | None = None
        if kind == "tool":
            try:
                tool_params = tuple(inspect.signature(func).parameters)
            except (TypeError, ValueError):
                tool_params = ()
        if inspect.iscoroutinefunction(func):
            return _wrap_coroutine(func, kind, span_name, tool_params)  # type: ignore[no-any-return]
        return _wrap_function(func, kind, span_name, tool_params)  # type: ignore[no-any-return]

    if fn is not None:
        return decorate(fn)
    return decorate
