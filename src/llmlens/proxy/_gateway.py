"""The gateway as a plain ASGI app: `/proxy/<upstream>/<path>` forwarded over pooled keep-alive connections.

The request path does as little as it can: read the body, split the headers, check the budget,
forward, and pass each upstream chunk to the client as it arrives. Everything the span needs is
kept as raw bytes with arrival times and parsed later by the SpanRecorder.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from llmlens.codec.compressed import MAX_DECOMPRESSED_BYTES, DecompressedTooLarge
from llmlens.model import ErrorType, now_us

from ._attribution import split_headers
from ._bodies import request_content
from ._budgets import BudgetGuard
from ._cache import ResponseCache, cache_key
from ._call import operation_for
from ._config import GatewayConfig
from ._errors import NO_RETRY, provider_error
from ._exchange import Exchange
from ._recorder import SpanRecorder
from ._transport import UpstreamClient, UpstreamError, UpstreamTarget
from ._upstreams import UnsafePath, Upstream, WireFormat, check_relative_path, wire_format

logger = logging.getLogger("llmlens.proxy")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# Response headers not passed back: hop-by-hop ones, and `date`/`server`, which our server sets itself.
_DROP_RESPONSE = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"date",
        b"server",
    }
)


class UpstreamBrokeOff(RuntimeError):
    """The upstream failed after the answer had started: the client's connection is cut the same way."""


class _BodyTooLarge(Exception):
    pass


class _ClientGone(Exception):
    pass


def make_client(config: GatewayConfig) -> UpstreamClient:
    """The gateway's upstream client: keep-alive connections per upstream, no headers of its own."""
    return UpstreamClient(
        timeout_s=config.timeout_s,
        connect_timeout_s=config.connect_timeout_s,
        max_connections=config.max_connections,
    )


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise _BodyTooLarge
            chunks.append(chunk)
        if not message.get("more_body"):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class Gateway:
    def __init__(
        self,
        *,
        upstreams: dict[str, Upstream],
        client: UpstreamClient,
        recorder: SpanRecorder,
        budgets: BudgetGuard,
        config: GatewayConfig,
        cache: ResponseCache | None,
        default_project: str,
        max_body_bytes: int,
        max_decompressed_bytes: int = MAX_DECOMPRESSED_BYTES,
        cached_features: Callable[[str, str | None], bool] | None = None,
    ) -> None:
        self.upstreams = upstreams
        self.client = client
        self.recorder = recorder
        self.budgets = budgets
        self.config = config
        self.cache = cache
        self.default_project = default_project
        self.max_body_bytes = max_body_bytes
        self.max_decompressed_bytes = max_decompressed_bytes
        # (project, feature) -> cache its calls even when the upstream is not cached (the Insights action).
        self.cached_features = cached_features
        self._in_flight: dict[str, int] = {}
        self._targets: dict[tuple[str, str, bytes], UpstreamTarget] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        params = scope.get("path_params") or {}
        name, rest = str(params.get("upstream", "")), str(params.get("path", ""))
        upstream = self.upstreams.get(name)
        if upstream is None:
            wire: WireFormat = "anthropic" if rest.rstrip("/").endswith("messages") else "openai"
            known = ", ".join(sorted(self.upstreams))
            message = f"llmlens gateway: no upstream named {name!r}; configured: {known}"
            await _answer(send, *provider_error(wire, 404, message, code="unknown_upstream"))
            return
        wire = wire_format(upstream, rest)
        try:
            check_relative_path(rest)
        except UnsafePath as exc:
            await _answer(send, *provider_error(wire, 400, f"llmlens gateway: {exc}", code="invalid_path"))
            return
        try:
            body = await _read_body(receive, self.max_body_bytes)
        except _ClientGone:
            return
        except _BodyTooLarge:
            message = f"llmlens gateway: request body is over the {self.max_body_bytes}-byte limit"
            await _answer(send, *provider_error(wire, 413, message, code="request_too_large"))
            return
        encoding = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"content-encoding"), None)
        content = None
        if encoding:
            try:  # off the event loop: a small body may expand up to the limit
                content = await asyncio.to_thread(request_content, body, encoding, self.max_decompressed_bytes)
            except DecompressedTooLarge as exc:
                await _answer(send, *provider_error(wire, 413, f"llmlens gateway: {exc}", code="request_too_large"))
                return
        attribution, forward_headers = split_headers(scope["headers"])
        ex = Exchange(
            upstream=upstream,
            wire=wire,
            operation=operation_for(rest),
            method=scope["method"],
            route=scope["path"],
            request_body=body,
            attribution=attribution,
            project=attribution.project or self.default_project,
            trace_id=attribution.trace_id or _new_id(128),
            span_id=_new_id(64),
            start_us=now_us(),
            started=time.perf_counter(),
            request_content=content,
            max_decompressed_bytes=self.max_decompressed_bytes,
        )
        if await self._blocked_by_budget(ex, send):
            return
        user = attribution.user_id
        limit = self.config.max_concurrent_per_user
        if limit and user is not None:
            if self._in_flight.get(user, 0) >= limit:
                message = f"llmlens gateway: user {user!r} already has {limit} calls in flight; retry shortly"
                await self._refuse(ex, send, 429, message, "concurrency_limit", retry_after=True)
                return
            self._in_flight[user] = self._in_flight.get(user, 0) + 1
        try:
            key = self._cache_key(ex, rest, scope)
            if key is not None and self.cache is not None:
                hit = self.cache.get(key)
                if hit is not None:
                    await self._replay(ex, send, hit.status, list(hit.headers), hit.chunks)
                    return
            await self._forward(ex, scope, receive, send, forward_headers, rest, key)
        finally:
            if limit and user is not None:
                left = self._in_flight[user] - 1
                if left:
                    self._in_flight[user] = left
                else:
                    del self._in_flight[user]

    # -- budget, cache -----------------------------------------------------------------------------------

    async def _blocked_by_budget(self, ex: Exchange, send: Send) -> bool:
        a = ex.attribution
        if not self.budgets.enabled_for(ex.project) or (a.user_id is None and a.feature is None):
            return False
        decision = await self.budgets.check(ex.project, a.user_id, a.tier, a.feature)
        if not decision.blocked:
            return False
        await self._refuse(ex, send, 429, decision.message, "budget_exceeded", retry_after=False)
        return True

    async def _refuse(
        self, ex: Exchange, send: Send, status: int, message: str, code: str, *, retry_after: bool
    ) -> None:
        """Answer without calling the upstream, and record the call as blocked."""
        status, headers, body = provider_error(ex.wire, status, message, code=code)
        headers.append((b"retry-after", b"1") if retry_after else NO_RETRY)
        headers.append((b"x-llmlens-span-id", ex.span_id.encode()))
        await _answer(send, status, headers, body)
        ex.ended = time.perf_counter()
        ex.status = status
        ex.blocked = True
        ex.error_type = ErrorType.RATE_LIMIT.value
        ex.error_message = message
        self.recorder.record(ex)

    def _cache_key(self, ex: Exchange, rest: str, scope: Scope) -> bytes | None:
        if self.cache is None or ex.method != "POST":
            return None
        wanted = ex.attribution.cache
        if wanted is None:
            wanted = self.config.caches(ex.upstream.name) or (
                self.cached_features is not None and self.cached_features(ex.project, ex.attribution.feature)
            )
        if not wanted:
            return None
        query = scope.get("query_string", b"").decode("latin-1")
        return cache_key(ex.project, ex.upstream.name, rest, query, ex.request_body, ex.attribution.credential)

    async def _replay(
        self, ex: Exchange, send: Send, status: int, headers: list[tuple[bytes, bytes]], chunks: tuple[bytes, ...]
    ) -> None:
        headers = [*headers, (b"x-llmlens-cache", b"HIT"), (b"x-llmlens-span-id", ex.span_id.encode())]
        ex.cache_hit = True
        _note_response(ex, status, headers)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        for chunk in chunks:
            ex.chunk_times.append(time.perf_counter())
            ex.chunks.append(chunk)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        ex.ended = time.perf_counter()
        self.recorder.record(ex)

    # -- forwarding --------------------------------------------------------------------------------------

    async def _forward(
        self,
        ex: Exchange,
        scope: Scope,
        receive: Receive,
        send: Send,
        headers: list[tuple[bytes, bytes]],
        rest: str,
        key: bytes | None,
    ) -> None:
        a = ex.attribution
        headers.append((b"traceparent", f"00-{ex.trace_id}-{ex.span_id}-{a.trace_flags}".encode("latin-1")))
        target = self._target(ex.upstream, rest, scope.get("query_string", b""))
        watcher = _DisconnectWatcher(receive)
        started_response = False
        try:
            try:
                answer = await self.client.send(ex.method, target, headers, ex.request_body)
            except UpstreamError as exc:
                watcher.finish()
                if exc.timeout:
                    await self._upstream_failed(ex, send, 504, f"did not answer in time: {exc}")
                else:
                    await self._upstream_failed(ex, send, 502, f"is unreachable: {exc}")
                return
            async with answer:
                out_headers = [(k, v) for k, v in answer.raw_headers if k.lower() not in _DROP_RESPONSE]
                if key is not None:
                    out_headers.append((b"x-llmlens-cache", b"MISS"))
                out_headers.append((b"x-llmlens-span-id", ex.span_id.encode()))
                _note_response(ex, answer.status, out_headers)
                await send({"type": "http.response.start", "status": answer.status, "headers": out_headers})
                started_response = True
                # The hot loop: each chunk goes on as it arrived, kept as the same bytes object for the span.
                # The chunk that completes the answer ends the response too: one write to the client, not
                # two (a non-streamed answer is usually that one chunk).
                chunks, times = ex.chunks, ex.chunk_times
                clock, read = time.perf_counter, answer.read_chunk
                last = False
                while not last and (chunk := await read()):
                    times.append(clock())
                    chunks.append(chunk)
                    last = answer.complete
                    if last:
                        watcher.finish()
                    await send({"type": "http.response.body", "body": chunk, "more_body": not last})
                if not last:
                    watcher.finish()
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                ex.ended = clock()
        except asyncio.CancelledError:
            if not watcher.gone:
                raise
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
            ex.ended = time.perf_counter()
            if _stream_finished(ex.chunks):
                # The client read the stream's last event and hung up before the upstream's EOF reached us:
                # that is the normal end of a stream, not a cancel.
                self.recorder.record(ex)
                return
            ex.error_type = ErrorType.TIMEOUT.value
            waited = ex.ended - ex.started
            ex.error_message = (
                f"the client closed the connection after {waited:.3f} s, before the answer was complete "
                "(client-side timeout or cancel)"
            )
            self.recorder.record(ex)
            return
        except UpstreamError as exc:
            ex.ended = time.perf_counter()
            ex.error_type = ErrorType.TIMEOUT.value if exc.timeout else ErrorType.CONNECTION_ERROR.value
            ex.error_message = f"upstream {ex.upstream.name!r} broke off the answer: {exc}"
            self.recorder.record(ex)
            if started_response:
                raise UpstreamBrokeOff(ex.error_message) from None
            return
        finally:
            watcher.finish()
        self.recorder.record(ex)
        if key is not None and self.cache is not None and ex.status is not None and 200 <= ex.status < 300:
            self.cache.put(key, ex.status, [h for h in out_headers if h[0] not in _PER_CALL_HEADERS], ex.chunks)

    def _target(self, upstream: Upstream, rest: str, query: bytes) -> UpstreamTarget:
        """The upstream URL of a proxied path, parsed once per distinct path (clients call few)."""
        cache_key = (upstream.name, rest, query)
        target = self._targets.get(cache_key)
        if target is None:
            target = UpstreamTarget(upstream.url_for(rest, query.decode("latin-1")))
            if len(self._targets) >= _MAX_URLS:
                self._targets.clear()
            self._targets[cache_key] = target
        return target

    async def _upstream_failed(self, ex: Exchange, send: Send, status: int, what: str) -> None:
        message = f"llmlens gateway: upstream {ex.upstream.name!r} ({ex.upstream.base_url}) {what}"
        code = "upstream_timeout" if status == 504 else "upstream_unreachable"
        status, headers, body = provider_error(ex.wire, status, message, code=code)
        headers.append((b"x-llmlens-span-id", ex.span_id.encode()))
        await _answer(send, status, headers, body)
        ex.ended = time.perf_counter()
        ex.status = status
        ex.error_type = ErrorType.TIMEOUT.value if status == 504 else ErrorType.CONNECTION_ERROR.value
        ex.error_message = message
        self.recorder.record(ex)


def _new_id(bits: int) -> str:
    """A random trace or span id, as OpenTelemetry's SDK makes them: from the `random` module (seeded from
    the OS, and again in a forked child), not one `getrandom` system call per id on the request path."""
    while True:
        value = random.getrandbits(bits)
        if value:  # an all-zero id is invalid
            return f"{value:0{bits // 4}x}"


_PER_CALL_HEADERS = frozenset({b"x-llmlens-cache", b"x-llmlens-span-id"})
_MAX_URLS = 1024


def _note_response(ex: Exchange, status: int, headers: list[tuple[bytes, bytes]]) -> None:
    ex.status = status
    for k, v in headers:
        lower = k.lower()
        if lower == b"content-type":
            ex.content_type = v.decode("latin-1").lower()
        elif lower == b"content-encoding":
            ex.content_encoding = v.decode("latin-1")


# The last event of an OpenAI chat/completions stream, an Anthropic messages stream, a Responses stream.
_STREAM_ENDS = (b"data: [DONE]", b"event: message_stop", b"event: response.completed")


def _stream_finished(chunks: list[bytes]) -> bool:
    tail = b"".join(chunks[-3:])[-512:]
    return any(end in tail for end in _STREAM_ENDS)


async def _answer(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class _DisconnectWatcher:
    """Cancels the request's task when the client goes away, so a client's timeout or cancel stops the
    upstream call too (as it would have stopped a direct call). No cost per chunk: one task per call."""

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._owner = asyncio.current_task()
        self._done = False
        self.gone = False
        self._task: asyncio.Task[None] | None = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                if not self._done and self._owner is not None:
                    self.gone = True
                    self._owner.cancel()
                return

    def finish(self) -> None:
        """The answer is complete: a disconnect from now on is the normal end of the exchange."""
        self._done = True
        if self._task is not None:
            self._task.cancel()
            self._task = None
