"""The gateway's upstream HTTP client: one keep-alive aiohttp session per upstream, errors mapped to ours.

Not httpx: at 50 concurrent streams httpcore's pool rescans every pooled connection on each event, and
with its pure-Python parsing cost ~10 ms of CPU per streamed request. aiohttp's connector hands out a
pooled connection in O(1) and parses the answer in C. What goes upstream is the client's own request:
no default headers, cookies, redirects or decompression of our own.
"""

from __future__ import annotations

import logging
from types import TracebackType

import aiohttp
from yarl import URL

logger = logging.getLogger("llmlens.proxy")

# Headers aiohttp would add on its own; the client's request is forwarded as it came (Host and
# Content-Length are still set, from the URL and the body).
_NO_AUTO_HEADERS = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")
# Below common server keep-alive timeouts (uvicorn 5 s), so an idle connection is dropped by us before
# the upstream closes it under a request.
KEEPALIVE_S = 4.0


class UpstreamError(Exception):
    """The upstream could not be reached, did not answer in time, or broke off its answer."""

    def __init__(self, message: str, *, timeout: bool) -> None:
        super().__init__(message)
        self.timeout = timeout


def _describe(exc: BaseException) -> str:
    text = str(exc)
    cause = exc.__cause__ or exc.__context__
    if not text and cause is not None:
        text = str(cause) or type(cause).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _mapped(exc: BaseException) -> UpstreamError:
    return UpstreamError(_describe(exc), timeout=isinstance(exc, TimeoutError))


class UpstreamAnswer:
    """An answer whose head has arrived: status and raw headers now, the body chunk by chunk as it comes."""

    __slots__ = ("_content", "_response", "raw_headers", "status")

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self._content = response.content
        self.status = response.status
        self.raw_headers: tuple[tuple[bytes, bytes], ...] = response.raw_headers

    async def read_chunk(self) -> bytes:
        """The body bytes that arrived since the last call, as sent (still compressed, if they were);
        b"" once the body is complete."""
        try:
            return await self._content.readany()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _mapped(exc) from exc

    async def __aenter__(self) -> UpstreamAnswer:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if kind is None and self._content.at_eof():
            self._response.release()  # complete: the connection goes back to the pool
        else:
            self._response.close()  # cut short: the connection cannot be reused


class UpstreamClient:
    """`send` a request to a URL and get its answer's head; one pooled session per upstream origin."""

    def __init__(self, *, timeout_s: float, connect_timeout_s: float, max_connections: int) -> None:
        self._timeout = aiohttp.ClientTimeout(
            total=None,
            connect=timeout_s,  # waiting for a pooled connection, connecting included
            sock_connect=connect_timeout_s,
            sock_read=timeout_s,  # between two reads, the answer's head included
        )
        self._max_connections = max_connections
        self._sessions: dict[tuple[str, str | None, int | None], aiohttp.ClientSession] = {}

    def _session(self, url: URL) -> aiohttp.ClientSession:
        origin = (url.scheme, url.raw_host, url.port)
        session = self._sessions.get(origin)
        if session is None:
            connector = aiohttp.TCPConnector(limit=self._max_connections, keepalive_timeout=KEEPALIVE_S)
            session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                skip_auto_headers=_NO_AUTO_HEADERS,
                auto_decompress=False,
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,
            )
            self._sessions[origin] = session
        return session

    async def send(self, method: str, url: URL, headers: list[tuple[str, str]], body: bytes) -> UpstreamAnswer:
        """Send, retrying once when a pooled keep-alive connection turns out to be closed by the upstream
        (no response byte was read: the upstream dropped the idle connection as the request went out)."""
        session = self._session(url)
        try:
            try:
                response = await self._request(session, method, url, headers, body)
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
                if isinstance(exc, aiohttp.ClientConnectorError):
                    raise
                logger.debug("retrying on a fresh connection after %s", _describe(exc))
                response = await self._request(session, method, url, headers, body)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _mapped(exc) from exc
        return UpstreamAnswer(response)

    @staticmethod
    async def _request(
        session: aiohttp.ClientSession, method: str, url: URL, headers: list[tuple[str, str]], body: bytes
    ) -> aiohttp.ClientResponse:
        return await session.request(method, url, headers=headers, data=body or None, allow_redirects=False)

    async def aclose(self) -> None:
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            await session.close()
