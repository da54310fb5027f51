"""Request-layer spans: one `request` span per HTTP request, parent of the spans inside it.

Pure ASGI (not Starlette's BaseHTTPMiddleware, which breaks contextvars) and plain WSGI, so
they work with FastAPI, Starlette, Django, Flask... without importing any of them.

    app.add_middleware(llmlens.sdk.middleware.LLMLensASGIMiddleware)   # FastAPI / Starlette
    app.wsgi_app = LLMLensWSGIMiddleware(app.wsgi_app)                   # Flask
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping
from typing import Any

from . import _state
from ._context import current_span_var
from ._internal import report_internal_error
from ._span import SpanHandle

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _route_of(scope: Scope) -> str | None:
    """The route template when the framework put one in the scope (Starlette/FastAPI do)."""
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return path if isinstance(path, str) else None


def _flush_before_shutdown_completes(send: Send) -> Send:
    """Send what is queued when the server stops the app: uvicorn re-raises SIGTERM after its shutdown,
    so the process then dies without running the exit hook that would otherwise flush."""

    async def flushing_send(message: Message) -> None:
        if message.get("type") == "lifespan.shutdown.complete":
            try:
                from ._runtime import flush

                config = _state.config
                await asyncio.to_thread(flush, config.exit_timeout_s if config is not None else 5.0)
            except Exception as exc:
                report_internal_error(exc, "ASGI middleware shutdown")
        await send(message)

    return flushing_send


class LLMLensASGIMiddleware:
    """ASGI middleware: wraps each HTTP request in a `request` span."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") == "lifespan" and _state.exporter is not None:
            await self.app(scope, receive, _flush_before_shutdown_completes(send))
            return
        if scope.get("type") != "http" or _state.exporter is None:
            await self.app(scope, receive, send)
            return
        try:
            method = scope.get("method", "GET")
            span = SpanHandle("request", f"{method} {scope.get('path', '')}", current_span_var.get())
            span.event["http_method"] = method
            token = current_span_var.set(span)
        except Exception as exc:
            report_internal_error(exc, "ASGI middleware")
            await self.app(scope, receive, send)
            return
        sizes = [0, 0]  # request bytes, response bytes

        async def counting_receive() -> Message:
            message = await receive()
            if message.get("type") == "http.request":
                sizes[0] += len(message.get("body", b""))
            return message

        async def counting_send(message: Message) -> None:
            message_type = message.get("type")
            if message_type == "http.response.start":
                span.event["http_status"] = message.get("status")
            elif message_type == "http.response.body":
                sizes[1] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, counting_receive, counting_send)
        except BaseException as exc:
            span.record_exception(exc)
            span.event.setdefault("http_status", 500)
            raise
        finally:
            current_span_var.reset(token)
            self._finish(span, scope, sizes)

    @staticmethod
    def _finish(span: SpanHandle, scope: Scope, sizes: list[int]) -> None:
        try:
            ev = span.event
            route = _route_of(scope)
            ev["http_route"] = route or scope.get("path", "")
            ev["name"] = f"{ev['http_method']} {ev['http_route']}"
            ev["http_request_bytes"] = sizes[0]
            ev["http_response_bytes"] = sizes[1]
            status = ev.get("http_status")
            if isinstance(status, int) and status >= 500 and ev.get("status") != "error":
                span.set_error(f"HTTP {status}", "server_error")
            span.end()
        except Exception as exc:
            report_internal_error(exc, "ASGI middleware")


class LLMLensWSGIMiddleware:
    """WSGI middleware: wraps each request in a `request` span, ended when the body is closed."""

    def __init__(self, app: Callable[..., Iterable[bytes]], route_key: str | None = None) -> None:
        self.app = app
        self.route_key = route_key  # an environ key holding the route template, if the framework sets one

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if _state.exporter is None:
            return self.app(environ, start_response)
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "")
        span = SpanHandle("request", f"{method} {path}", current_span_var.get())
        span.event["http_method"] = method
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        span.event["http_request_bytes"] = length

        def observing_start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
            try:
                span.event["http_status"] = int(status.split(" ", 1)[0])
            except ValueError:
                pass
            if exc_info is None:
                return start_response(status, headers)
            return start_response(status, headers, exc_info)

        token = current_span_var.set(span)
        try:
            body = self.app(environ, observing_start_response)
        except BaseException as exc:
            span.record_exception(exc)
            span.event.setdefault("http_status", 500)
            self._finish(span, environ, path, 0)
            raise
        finally:
            current_span_var.reset(token)
        return _ObservedBody(body, lambda n: self._finish(span, environ, path, n))

    def _finish(self, span: SpanHandle, environ: dict[str, Any], path: str, sent: int) -> None:
        try:
            ev = span.event
            route = environ.get(self.route_key) if self.route_key else None
            ev["http_route"] = route if isinstance(route, str) else path
            ev["name"] = f"{ev['http_method']} {ev['http_route']}"
            ev["http_response_bytes"] = sent
            status = ev.get("http_status")
            if isinstance(status, int) and status >= 500 and ev.get("status") != "error":
                span.set_error(f"HTTP {status}", "server_error")
            span.end()
        except Exception as exc:
            report_internal_error(exc, "WSGI middleware")


class _ObservedBody:
    """The app's response iterable, counting bytes; the span ends on `close()` as WSGI promises."""

    def __init__(self, body: Iterable[bytes], on_close: Callable[[int], None]) -> None:
        self._body = body
        self._on_close = on_close
        self._sent = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._body:
            self._sent += len(chunk)
            yield chunk

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._on_close(self._sent)
