"""Large OTLP trace bodies decoded in worker processes, so decoding does not hold the server's GIL.

Parsing protobuf, mapping the conventions, redacting and truncating are ~60 % of the server's CPU
per ingested span, and threads cannot run them beside the writer and the trace assembler: one
interpreter runs one thread at a time. `decode_workers` processes (spawned on the first large body,
stopped after `idle_s` without one, so an idle server stays small) do that work
(`ingest.otlp_worker`) and hand the spans back packed (`codec.span_batch`). Until the workers are up
(~0.5 s to spawn and import) large bodies are decoded in threads, so nothing waits for them. A pool
that breaks (a worker killed) is replaced, and that body is decoded in a thread instead.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import time
from collections.abc import Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from llmlens.codec.otlp import MAX_DECOMPRESSED_BYTES, DecodedTraces, decode_traces
from llmlens.codec.span_batch import unpack_spans
from llmlens.ingest import otlp_worker

from ._state import AppState

logger = logging.getLogger("llmlens.server")

SERVICE = "decode_pool"
# Smaller bodies decode faster than a round trip to a worker (~1 ms); they stay in a thread.
MIN_BODY_BYTES = 64 * 1024
# Bodies up to this size are decoded on the event loop: a thread hop costs more than the decoding.
INLINE_BODY_BYTES = 32 * 1024


def worker_count(setting: int) -> int:
    """`decode_workers` resolved: -1 is one fewer than the CPU cores (the server keeps one), at most 4."""
    if setting >= 0:
        return setting
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(0, min(4, cores - 1))


class DecodePool:
    def __init__(
        self, workers: int, redaction: Mapping[str, Any] | bool | None, max_field_chars: int, idle_s: float = 60.0
    ) -> None:
        self.workers = workers
        self._worker_config = (redaction, max_field_chars)
        self.idle_s = idle_s
        self._executor: ProcessPoolExecutor | None = None
        self._ready = False  # the workers have started and imported what they need
        self._in_flight = 0
        self._last_used = time.monotonic()
        self._reaper: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._executor is not None

    def wants(self, body: bytes) -> bool:
        """Whether the workers should decode `body`: a large one, once they are up (this starts them)."""
        if self.workers <= 0 or len(body) < MIN_BODY_BYTES:
            return False
        self._last_used = time.monotonic()
        self._start()
        return self._ready

    async def decode_traces(
        self,
        body: bytes,
        content_type: str,
        encoding: str | None,
        max_decompressed_bytes: int = MAX_DECOMPRESSED_BYTES,
    ) -> DecodedTraces | None:
        """Spans already through the content transforms; None if the pool broke (decode elsewhere).

        Raises what `decode_traces` raises (OtlpDecodeError, UnsupportedContentType).
        """
        executor = self._start()
        self._in_flight += 1
        self._last_used = time.monotonic()
        try:
            future = executor.submit(
                otlp_worker.decode_transformed, body, content_type, encoding, max_decompressed_bytes
            )
            packed, rejected = await asyncio.wrap_future(future)
        except BrokenProcessPool:
            logger.warning("a decode worker died; restarting the pool, decoding this body in a thread")
            self._stop(executor)
            return None
        finally:
            self._in_flight -= 1
            self._last_used = time.monotonic()
        return DecodedTraces(spans=unpack_spans(packed), rejected=rejected)

    def _start(self) -> ProcessPoolExecutor:
        if self._executor is None:
            # spawn, not fork: the server has threads (writer, DuckDB) that a fork would copy mid-flight.
            self._executor = ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=otlp_worker.init,
                initargs=(*self._worker_config, os.getpid()),
            )
            self._ready = False
            warm_up = self._executor.submit(otlp_worker.ready)
            executor = self._executor
            warm_up.add_done_callback(lambda done: self._started(executor, done))
            if self._reaper is None or self._reaper.done():
                self._reaper = asyncio.get_running_loop().create_task(self._stop_when_idle())
        return self._executor

    def _started(self, executor: ProcessPoolExecutor, warm_up: Future[bool]) -> None:
        # Runs in the executor's manager thread: only flips a flag read on the event loop.
        if executor is self._executor and not warm_up.cancelled() and warm_up.exception() is None:
            self._ready = True
            logger.info("OTLP decode workers ready: %d", self.workers)

    def _stop(self, executor: ProcessPoolExecutor | None = None) -> None:
        executor = executor or self._executor
        if executor is None:
            return
        if executor is self._executor:
            self._executor = None
            self._ready = False
        executor.shutdown(wait=False, cancel_futures=True)

    async def _stop_when_idle(self) -> None:
        while self._executor is not None:
            await asyncio.sleep(min(10.0, self.idle_s))
            if not self._in_flight and time.monotonic() - self._last_used >= self.idle_s:
                self._stop()

    def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        self._stop()


def decode_pool(state: AppState) -> DecodePool:
    """The app's one pool (created at start-up; lazily for apps built without a lifespan)."""
    found = state.services.get(SERVICE)
    if found is None:
        settings = state.settings
        found = state.services[SERVICE] = DecodePool(
            worker_count(settings.decode_workers), settings.redaction, settings.max_field_chars
        )
    assert isinstance(found, DecodePool)
    return found


async def decode_traces_off_loop(
    state: AppState, body: bytes, content_type: str, encoding: str | None
) -> tuple[DecodedTraces, bool]:
    """An OTLP trace body decoded by a worker process, a thread or inline, by size; and whether its
    spans went through the content transforms already (a worker's did). Raises what `decode_traces` raises."""
    pool = decode_pool(state)
    limit = state.settings.max_decompressed_bytes
    if pool.wants(body):
        decoded = await pool.decode_traces(body, content_type, encoding, limit)
        if decoded is not None:
            return decoded, True
    if len(body) <= INLINE_BODY_BYTES and not encoding:
        return decode_traces(body, content_type, encoding, limit), False
    # Compressed bodies go to a thread whatever their size, and count as large: they may expand up to `limit`.
    size = None if encoding else len(body)
    return await state.pipeline.cpu.run(decode_traces, body, content_type, encoding, limit, input_bytes=size), False
