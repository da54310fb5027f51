"""Pure ASGI middleware: an ingest request the server has no room for is answered 503 + Retry-After
before a byte of its body is read.

Without it a flood was told to back off only after its batches had been read, decoded and priced:
64 clients re-sending 10,000-event batches waited up to a minute for their 503, and the decoding
starved everything else the server does (most /healthz probes timed out). Two checks run first:

- the writer's queue is full (`max_queued_events`): 503 at once;
- the bodies already being read, decoded or committed add up to `MAX_IN_FLIGHT_BYTES`: the request
  waits up to `WAIT_S` for room, else 503. Bytes, not requests: decoding costs CPU in proportion to
  the body, while small batches (the SDK's) cost little beyond waiting for their shared commit, so
  they keep flowing past a queue of large ones. Decoding runs under one interpreter lock: admitting
  more at once would not go faster, only make every request slower.

A client is therefore told within half a second whether the server will take its batch. The
routes keep their own check at submit time (a batch larger than the room left is still refused).
"""

from __future__ import annotations

import asyncio
import json

from starlette.types import ASGIApp, Receive, Scope, Send

from ._state import AppState

INGEST_PATHS = frozenset({"/api/v1/ingest", "/v1/traces", "/v1/logs"})
_OTLP_PATHS = frozenset({"/v1/traces", "/v1/logs"})
# A few seconds of decoding at most; a larger body is let in alone.
MAX_IN_FLIGHT_BYTES = 8 * 1024 * 1024
# Compressed bodies cost CPU for what they expand to; bodies of unknown length are counted as this.
_COMPRESSION_FACTOR = 4
_UNKNOWN_LENGTH_BYTES = 1024 * 1024
WAIT_S = 0.5
RETRY_AFTER_S = 1
_UNAVAILABLE = 14  # google.rpc.Code, as the OTLP receivers answer when busy


class IngestAdmission:
    def __init__(self, app: ASGIApp, state: AppState) -> None:
        self.app = app
        self.state = state
        self._in_flight = _ByteBudget(MAX_IN_FLIGHT_BYTES)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in INGEST_PATHS:
            await self.app(scope, receive, send)
            return
        writer = self.state.writer
        if writer.full:
            await _busy(scope, send, f"ingest queue is full ({writer.queued_events} events wait for the writer)")
            return
        cost = _body_cost(scope)
        if not await self._in_flight.acquire(cost, WAIT_S):
            mib = self._in_flight.used / (1024 * 1024)
            await _busy(scope, send, f"ingest queue is full ({mib:.0f} MiB of batches are being decoded or written)")
            return
        try:
            if writer.full:  # it filled up while this request waited
                await _busy(scope, send, f"ingest queue is full ({writer.queued_events} events wait for the writer)")
                return
            await self.app(scope, receive, send)
        finally:
            self._in_flight.release(cost)


class _ByteBudget:
    """Bytes admitted at once, up to `limit`; one request over the limit is admitted alone."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._released: asyncio.Event | None = None

    def _fits(self, cost: int) -> bool:
        return self.used == 0 or self.used + cost <= self.limit

    async def acquire(self, cost: int, wait_s: float) -> bool:
        """Whether `cost` bytes were admitted within `wait_s`."""
        if not self._fits(cost):
            try:
                async with asyncio.timeout(wait_s):
                    while not self._fits(cost):
                        await self._release_event().wait()
            except TimeoutError:
                return False
        self.used += cost
        return True

    def release(self, cost: int) -> None:
        self.used -= cost
        if self._released is not None:
            # Wake every waiter to re-check; a fresh event for the next wait.
            self._released.set()
            self._released = None

    def _release_event(self) -> asyncio.Event:
        loop = asyncio.get_running_loop()
        if self._released is None or self._loop is not loop:
            self._loop, self._released = loop, asyncio.Event()
        return self._released


def _body_cost(scope: Scope) -> int:
    length: int | None = None
    compressed = False
    for name, value in scope["headers"]:
        name = name.lower()
        if name == b"content-length" and value.strip().isdigit():
            length = int(value)
        elif name == b"content-encoding" and value.strip().lower() not in (b"", b"identity"):
            compressed = True
    if length is None:
        return _UNKNOWN_LENGTH_BYTES
    return max(1, length * (_COMPRESSION_FACTOR if compressed else 1))


async def _busy(scope: Scope, send: Send, reason: str) -> None:
    message = f"{reason}; retry after {RETRY_AFTER_S} s"
    content_type = b"application/json"
    if scope["path"] in _OTLP_PATHS:
        # OTLP/HTTP clients expect a google.rpc.Status in the request's own encoding.
        if _wants_json(scope):
            body = json.dumps({"code": _UNAVAILABLE, "message": message}).encode()
        else:
            content_type = b"application/x-protobuf"
            body = _status_protobuf(_UNAVAILABLE, message)
    else:
        body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(RETRY_AFTER_S).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _wants_json(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name.lower() == b"content-type":
            media: bytes = value.split(b";", 1)[0].strip().lower()
            return media == b"application/json" or media.endswith(b"+json")
    return False


def _status_protobuf(code: int, message: str) -> bytes:
    """`google.rpc.Status{code, message}` written by hand: two fields do not need the protobuf runtime."""
    text = message.encode()
    return b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)
