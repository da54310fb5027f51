"""The CPU-bound steps of ingest (decoding bodies, pricing and redacting batches) in threads, a few at once.

They hold the interpreter lock: two threads already keep a core busy beside the writer, and each
thread more only makes the lock change hands more often. Forty of them (the default thread pool)
left the event loop waiting ~40 switch intervals for every step it took, so under a flood /healthz
and every other request crawled. Large jobs beyond the slots wait their turn on the event loop,
costing nothing; small ones (a few milliseconds at most) skip the line, so a queue of large batches
does not hold up the SDK's small ones.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

CPU_SLOTS = 2
# Bodies below this decode in about a millisecond: not worth a slot.
SMALL_JOB_BYTES = 64 * 1024

T = TypeVar("T")


class CpuLimiter:
    def __init__(self, slots: int = CPU_SLOTS) -> None:
        self.slots = slots
        # asyncio primitives belong to one event loop; apps in tests may be served by several in turn.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._semaphore: asyncio.Semaphore | None = None

    async def run(self, fn: Callable[..., T], /, *args: Any, input_bytes: int | None = None) -> T:
        """`fn(*args)` in a thread (context variables go with it), once a slot is free unless
        `input_bytes` says the job is small."""
        if input_bytes is not None and input_bytes < SMALL_JOB_BYTES:
            return await asyncio.to_thread(fn, *args)
        loop = asyncio.get_running_loop()
        if self._semaphore is None or self._loop is not loop:
            self._loop, self._semaphore = loop, asyncio.Semaphore(self.slots)
        async with self._semaphore:
            return await asyncio.to_thread(fn, *args)
