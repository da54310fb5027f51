"""Turns finished exchanges into spans off the request path, and ingests them in batches."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from llmlens.model import Feedback, Span

from ._exchange import Exchange, exchange_to_span

logger = logging.getLogger("llmlens.proxy")

Ingest = Callable[[Sequence[Span], Sequence[Feedback]], Awaitable[None]]
PriceSpan = Callable[[Span], None]
_MAX_BATCH = 500


class SpanRecorder:
    """`record(exchange)` returns at once; a single task parses, prices and ingests behind it.

    Parsing happens on the event loop between requests, one exchange at a time, so it never holds the
    GIL for long against the proxy's own work; ingest commits in batches through the group-commit writer,
    gathered for `linger_s` after the first call of a batch (the store's per-commit cost, not the calls,
    dominated the gateway's CPU at 50 concurrent streams).
    """

    def __init__(
        self, ingest: Ingest, price_span: PriceSpan, *, max_pending: int = 100_000, linger_s: float = 0.5
    ) -> None:
        self._ingest = ingest
        self._price_span = price_span
        self._linger_s = linger_s
        self._queue: asyncio.Queue[Exchange | None] = asyncio.Queue(max_pending)
        self._task: asyncio.Task[None] | None = None
        self.recorded = 0
        self.dropped = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="llmlens-gateway-recorder")

    def record(self, exchange: Exchange) -> None:
        try:
            self._queue.put_nowait(exchange)
            self._idle.clear()
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                logger.warning("gateway recorder is behind: %d calls not recorded", self.dropped)

    def to_span(self, exchange: Exchange) -> Span:
        span = exchange_to_span(exchange)
        if exchange.cache_hit:
            # Price what the call would have cost, then record it as saved and the call as free.
            self._price_span(span)
            span.cost_saved_usd = span.cost_usd
            span.cost_usd = 0.0
            span.cost_source = None
        return span

    async def _run(self) -> None:
        stopping = False
        while not stopping:
            item = await self._queue.get()
            if self._linger_s and item is not None:
                # Let a batch gather: each commit has a fixed cost in the store (rollups, transaction),
                # paid by the process's CPU that the proxied streams share.
                await asyncio.sleep(self._linger_s)
            items = [item]
            while not self._queue.empty() and len(items) < _MAX_BATCH:
                items.append(self._queue.get_nowait())
            spans: list[Span] = []
            for exchange in items:
                if exchange is None:
                    stopping = True
                    continue
                try:
                    spans.append(self.to_span(exchange))
                except Exception:
                    logger.exception("could not build the span of a gateway call to %s", exchange.route)
                await asyncio.sleep(0)  # let requests in between
            if spans:
                try:
                    await self._ingest(spans, [])
                    self.recorded += len(spans)
                except Exception:
                    self.dropped += len(spans)
                    logger.exception("could not record %d gateway calls", len(spans))
            if self._queue.empty():
                self._idle.set()

    async def flush(self) -> None:
        """Wait until everything recorded so far is committed (tests, shutdown)."""
        await self._idle.wait()

    async def stop(self, timeout_s: float = 10.0) -> None:
        if self._task is None:
            return
        await self._queue.put(None)
        try:
            await asyncio.wait_for(self._task, timeout_s)
        except TimeoutError:
            logger.warning("gateway recorder did not finish in %g s", timeout_s)
            self._task.cancel()
        self._task = None
