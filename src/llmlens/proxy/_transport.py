"""The gateway's upstream client: pooled keep-alive HTTP/1.1 connections, answers parsed in C by httptools.

Neither httpx nor aiohttp: at 50 concurrent streams httpcore's pool rescanned every pooled connection on
each event (~10 ms of CPU per streamed request), and aiohttp's request building and StreamReader still
cost about twice the CPU per streamed request of this client (`benchmarks/bench_gateway.py`), which writes
the request as one buffer and hands each body chunk from the socket callback straight to the relay
waiting for it. What goes upstream is the client's own request: no default headers, cookies, redirects
or decompression of our own; Host and Content-Length are set from the URL and the body.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
from collections import deque
from types import TracebackType
from typing import Any, cast
from urllib.parse import quote, urlsplit

import httptools

logger = logging.getLogger("llmlens.proxy")

# Below common server keep-alive timeouts (uvicorn 5 s), so an idle connection is dropped by us before
# the upstream closes it under a request.
KEEPALIVE_S = 4.0
# Body bytes held for a relay that is not reading (a slow client): reading from the upstream pauses above
# the first and resumes below the second, so a large answer is never all in memory.
_HIGH_WATER = 256 * 1024
_LOW_WATER = 64 * 1024
_MAX_TARGETS = 1024
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Characters a path may carry as they are; the rest is percent-encoded, and a % that starts no escape too.
_PATH_SAFE = "/:@!$&'()*+,;=~%"
_LONE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


class UpstreamError(Exception):
    """The upstream could not be reached, did not answer in time, or broke off its answer."""

    def __init__(self, message: str, *, timeout: bool) -> None:
        super().__init__(message)
        self.timeout = timeout


class _Stale(Exception):
    """A pooled connection closed under the request before any byte of an answer: safe to send again."""


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class UpstreamTarget:
    """Where a request goes, worked out once per distinct URL: origin, Host header and request target."""

    __slots__ = ("host", "host_header", "origin", "path", "port", "tls")

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.tls = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or _DEFAULT_PORTS[parts.scheme]
        self.origin = (parts.scheme, self.host, self.port)
        host = f"[{self.host}]" if ":" in self.host else self.host
        if parts.port is not None and parts.port != _DEFAULT_PORTS[parts.scheme]:
            host = f"{host}:{parts.port}"
        self.host_header = host.encode("idna") if not host.isascii() else host.encode()
        path = _LONE_PERCENT.sub("%25", quote(parts.path or "/", safe=_PATH_SAFE))
        self.path = (path + (f"?{parts.query}" if parts.query else "")).encode("latin-1")


class _Connection(asyncio.Protocol):
    """One upstream connection; httptools calls back into it as the answer's bytes arrive."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout_s: float) -> None:
        self._loop = loop
        self._timeout_s = timeout_s
        self._parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._paused = False
        self._timer: asyncio.TimerHandle | None = None
        self._begin(expect_body=True)

    # -- one exchange ------------------------------------------------------------------------------

    def _begin(self, *, expect_body: bool) -> None:
        self.in_flight = False
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.head_done = False
        self.done = False
        self.keep_alive = False
        self.error: UpstreamError | None = None
        self.got_bytes = False
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.waiter: asyncio.Future[None] | None = None
        self.active_at = 0.0
        self._expect_body = expect_body
        self._interim = False
        self._delimited = False  # Content-Length or chunked: the answer's end is in its bytes, not the EOF

    def start(self, request: bytes, *, expect_body: bool) -> None:
        """Send a request; its answer is then read with `wait_head` and `read`."""
        self._begin(expect_body=expect_body)
        self.in_flight = True
        self.active_at = self._loop.time()
        self._arm(self.active_at + self._timeout_s)
        assert self.transport is not None
        self.transport.write(request)

    async def wait_head(self) -> None:
        while not self.head_done and self.error is None:
            await self._wait()
        if self.error is not None and not self.head_done:
            raise self.error

    async def read(self) -> bytes:
        while True:
            chunks = self.chunks
            if chunks:
                data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
                chunks.clear()
                self.buffered = 0
                if self._paused and self.transport is not None:
                    self._paused = False
                    self.transport.resume_reading()
                return data
            if self.error is not None:
                raise self.error
            if self.done:
                return b""
            await self._wait()

    async def _wait(self) -> None:
        # The read timeout counts from when the relay starts waiting, as between two reads of a socket.
        self.active_at = self._loop.time()
        waiter = self.waiter = self._loop.create_future()
        try:
            await waiter
        finally:
            self.waiter = None

    def finish(self) -> None:
        self.in_flight = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def close(self) -> None:
        self.finish()
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    @property
    def reusable(self) -> bool:
        return self.done and self.error is None and self.keep_alive and not self.closed and not self.chunks

    # -- read timeout ------------------------------------------------------------------------------

    def _arm(self, when: float) -> None:
        # One timer per exchange, moved only when it fires: nothing per chunk.
        self._timer = self._loop.call_at(when, self._check_timeout)

    def _check_timeout(self) -> None:
        self._timer = None
        if not self.in_flight or self.done:
            return
        if self.waiter is None:  # the relay is busy passing chunks on: the upstream is not late
            self._arm(self._loop.time() + self._timeout_s)
            return
        due = self.active_at + self._timeout_s
        if self._loop.time() < due:
            self._arm(due)
            return
        self._fail(UpstreamError(f"no answer for {self._timeout_s:g} s (read timeout)", timeout=True))
        self.close()

    # -- asyncio.Protocol --------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        self.active_at = self._loop.time()
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # 101 Switching Protocols: what follows is another protocol, which the gateway does not relay.
            self.done = True
            self.keep_alive = False
            self._wake()
            return
        except httptools.HttpParserError as exc:
            self._fail(UpstreamError(f"the upstream sent an invalid HTTP answer: {exc}", timeout=False))
            self.close()
            return
        if self.buffered > _HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()

    def eof_received(self) -> bool | None:
        return None  # close our side too: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self.in_flight or self.done:
            return
        if self.head_done and not self._delimited:
            self.done = True  # an answer without a length ends with the connection
            self._wake()
            return
        detail = f": {_describe(exc)}" if exc is not None else ""
        what = "broke off the answer" if self.got_bytes else "closed the connection before answering"
        self._fail(UpstreamError(f"the upstream {what}{detail}", timeout=False))

    # -- httptools callbacks -----------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))
        lower = name.lower()
        if lower == b"content-length" or (lower == b"transfer-encoding" and b"chunked" in value.lower()):
            self._delimited = True

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200 and status != 101:  # an interim answer (100 Continue): the real one follows
            self._interim = True
            self.headers = []
            self._delimited = False
            return
        self.status = status
        self.head_done = True
        self.keep_alive = self._parser.should_keep_alive()
        if not self._expect_body:  # the answer to HEAD has no body, whatever its headers say
            self.done = True
            self.keep_alive = False
        self._wake()

    def on_body(self, body: bytes) -> None:
        if not self.done:
            self.chunks.append(body)
            self.buffered += len(body)
            self._wake()

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        self.done = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: UpstreamError) -> None:
        if self.error is None:
            self.error = error
        self._wake()


class _Pool:
    """The connections to one origin: idle ones to reuse, and a bound on how many are open."""

    def __init__(self, max_connections: int) -> None:
        self.idle: deque[_Connection] = deque()
        self.slots = asyncio.Semaphore(max_connections)
        self.open: set[_Connection] = set()


class UpstreamAnswer:
    """An answer whose head has arrived: status and raw headers now, the body chunk by chunk as it comes."""

    __slots__ = ("_connection", "_pool", "raw_headers", "status")

    def __init__(self, connection: _Connection, pool: _Pool) -> None:
        self._connection = connection
        self._pool = pool
        self.status = connection.status
        self.raw_headers: tuple[tuple[bytes, bytes], ...] = tuple(connection.headers)

    async def read_chunk(self) -> bytes:
        """The body bytes that arrived since the last call, as sent (still compressed, if they were);
        b"" once the body is complete."""
        return await self._connection.read()

    @property
    def complete(self) -> bool:
        """The whole body has arrived and been read: the next `read_chunk` would give b""."""
        connection = self._connection
        return connection.done and connection.error is None and not connection.chunks

    async def __aenter__(self) -> UpstreamAnswer:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        _release(self._pool, self._connection, keep=kind is None)


def _release(pool: _Pool, connection: _Connection, *, keep: bool) -> None:
    if keep and connection.reusable:
        connection.finish()
        connection.idle_since = asyncio.get_running_loop().time()
        pool.idle.append(connection)  # complete: the connection goes back to the pool
    else:
        connection.close()  # cut short: the connection cannot be reused
        pool.open.discard(connection)
    pool.slots.release()


class UpstreamClient:
    """`send` a request to a URL and get its answer's head; pooled connections per upstream origin."""

    def __init__(self, *, timeout_s: float, connect_timeout_s: float, max_connections: int) -> None:
        self._timeout_s = timeout_s  # waiting for a pooled connection, and between two reads
        self._connect_timeout_s = connect_timeout_s
        self._max_connections = max_connections
        self._pools: dict[tuple[str, str, int], _Pool] = {}
        self._targets: dict[str, UpstreamTarget] = {}
        self._tls: ssl.SSLContext | None = None

    def target(self, url: Any) -> UpstreamTarget:
        """The parsed target of a URL (a str, or any URL object whose str() is the URL), kept per URL."""
        if isinstance(url, UpstreamTarget):
            return url
        text = str(url)
        found = self._targets.get(text)
        if found is None:
            if len(self._targets) >= _MAX_TARGETS:
                self._targets.clear()
            found = self._targets[text] = UpstreamTarget(text)
        return found

    async def send(
        self, method: str, url: Any, headers: list[tuple[bytes, bytes]] | list[tuple[str, str]], body: bytes
    ) -> UpstreamAnswer:
        """Send, retrying once when a pooled keep-alive connection turns out to be closed by the upstream
        (no response byte was read: the upstream dropped the idle connection as the request went out)."""
        target = self.target(url)
        pool = self._pools.get(target.origin)
        if pool is None:
            pool = self._pools[target.origin] = _Pool(self._max_connections)
        await self._take_slot(pool)
        request = _request_bytes(method, target, headers, body)
        expect_body = method != "HEAD"
        try:
            connection = self._idle_connection(pool)
            if connection is not None:
                try:
                    return await self._exchange(pool, connection, request, expect_body=expect_body)
                except _Stale:
                    logger.debug("retrying on a fresh connection: the pooled one was closed by the upstream")
            connection = await self._connect(pool, target)
            try:
                return await self._exchange(pool, connection, request, expect_body=expect_body)
            except _Stale:
                raise UpstreamError("the upstream closed the connection before answering", timeout=False) from None
        except BaseException:
            pool.slots.release()
            raise

    async def _take_slot(self, pool: _Pool) -> None:
        if not pool.slots.locked():
            await pool.slots.acquire()
            return
        try:
            await asyncio.wait_for(pool.slots.acquire(), self._timeout_s)
        except TimeoutError:
            raise UpstreamError(
                f"no free connection to the upstream within {self._timeout_s:g} s ({self._max_connections} in use)",
                timeout=True,
            ) from None

    def _idle_connection(self, pool: _Pool) -> _Connection | None:
        now = asyncio.get_running_loop().time()
        while pool.idle:
            connection = pool.idle.pop()  # the most recently used: the least likely to be closed
            transport = connection.transport
            fresh = now - connection.idle_since < KEEPALIVE_S and not connection.closed
            if fresh and transport is not None and not transport.is_closing():
                return connection
            connection.close()
            pool.open.discard(connection)
        return None

    async def _connect(self, pool: _Pool, target: UpstreamTarget) -> _Connection:
        loop = asyncio.get_running_loop()
        connection = _Connection(loop, self._timeout_s)
        tls = self._tls_context() if target.tls else None
        try:
            await asyncio.wait_for(
                loop.create_connection(
                    lambda: connection,
                    target.host,
                    target.port,
                    ssl=tls,
                    server_hostname=target.host if tls is not None else None,
                ),
                self._connect_timeout_s,
            )
        except TimeoutError:
            connection.close()
            raise UpstreamError(
                f"cannot connect to {target.host}:{target.port} within {self._connect_timeout_s:g} s", timeout=True
            ) from None
        except OSError as exc:  # refused, unresolvable, reset, TLS refused (ssl.SSLError is an OSError)
            connection.close()
            raise UpstreamError(
                f"cannot connect to {target.host}:{target.port}: {_describe(exc)}", timeout=False
            ) from None
        pool.open.add(connection)
        return connection

    async def _exchange(
        self, pool: _Pool, connection: _Connection, request: bytes, *, expect_body: bool
    ) -> UpstreamAnswer:
        reused = connection.idle_since > 0
        connection.start(request, expect_body=expect_body)
        try:
            await connection.wait_head()
        except UpstreamError:
            connection.close()
            pool.open.discard(connection)
            timed_out = connection.error is not None and connection.error.timeout
            if reused and not connection.got_bytes and not timed_out:
                raise _Stale from None
            raise
        except BaseException:
            connection.close()
            pool.open.discard(connection)
            raise
        return UpstreamAnswer(connection, pool)

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            for connection in list(pool.open):
                connection.close()
            pool.open.clear()
            pool.idle.clear()


def _request_bytes(
    method: str, target: UpstreamTarget, headers: list[tuple[bytes, bytes]] | list[tuple[str, str]], body: bytes
) -> bytes:
    lines = [method.encode("ascii"), b" ", target.path, b" HTTP/1.1\r\nHost: ", target.host_header, b"\r\n"]
    for name, value in headers:
        lines += (_bytes(name), b": ", _bytes(value), b"\r\n")
    if body or method not in ("GET", "HEAD", "OPTIONS", "DELETE", "TRACE"):
        lines.append(b"Content-Length: %d\r\n" % len(body))
    lines.append(b"\r\n")
    lines.append(body)
    return b"".join(lines)


def _bytes(text: bytes | str) -> bytes:
    return text if isinstance(text, bytes) else text.encode("latin-1")
