"""Fan out committed spans as OTLP/HTTP protobuf to one collector, never slowing ingest.

Modelled on the OpenTelemetry SDK's batch processor: the writer thread only appends to a bounded
deque (dropping the oldest and counting it when full); a daemon thread sends on size or age, retries
with backoff that sleeps on an event (so shutdown cuts it short), logs failures once per outage and
never raises; shutdown flushes what is left within a deadline.
"""

from __future__ import annotations

import gzip
import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from llmlens.model import Feedback, Span

from ._encode import export_request
from ._target import ForwardTarget

logger = logging.getLogger("llmlens.forward")

_RETRYABLE_STATUS = frozenset({408, 429, 502, 503, 504})
_MAX_BACKOFF_S = 30.0


@dataclass(frozen=True, slots=True)
class ForwarderStats:
    target: str
    queued_spans: int
    sent_spans: int
    dropped_queue_full: int
    dropped_failed: int
    failed_requests: int


class SpanForwarder:
    """One target's queue and sender thread. `on_write` is a write listener of the group-commit writer."""

    def __init__(
        self,
        target: ForwardTarget,
        *,
        transport: httpx.BaseTransport | None = None,
        backoff_base_s: float = 0.5,
    ) -> None:
        self.target = target
        self._transport = transport
        self._backoff_base_s = backoff_base_s
        self._queue: deque[Span] = deque()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._oldest_at: float | None = None
        self._failing = False
        self._sent = 0
        self._dropped_full = 0
        self._dropped_failed = 0
        self._failed_requests = 0

    # -- the writer thread ------------------------------------------------------------------

    def on_write(self, spans: Sequence[Span], feedback: Sequence[Feedback]) -> None:
        if not spans:
            return
        with self._cond:
            room = self.target.max_queue
            for span in spans:
                if len(self._queue) >= room:
                    self._queue.popleft()
                    self._dropped_full += 1
                self._queue.append(span)
            if self._oldest_at is None:  # the sender sleeps until the first span: wake it to start the clock
                self._oldest_at = time.monotonic()
                self._cond.notify()
            elif len(self._queue) >= self.target.batch_size:
                self._cond.notify()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="llmlens-forward", daemon=True)
            self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop retrying, send what is queued once, give up at the deadline."""
        self._stop.set()
        with self._cond:
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def stats(self) -> ForwarderStats:
        with self._cond:
            return ForwarderStats(
                target=self.target.label,
                queued_spans=len(self._queue),
                sent_spans=self._sent,
                dropped_queue_full=self._dropped_full,
                dropped_failed=self._dropped_failed,
                failed_requests=self._failed_requests,
            )

    # -- the sender thread -------------------------------------------------------------------

    def _take(self) -> list[Span]:
        target = self.target
        with self._cond:
            while not self._stop.is_set():
                if len(self._queue) >= target.batch_size:
                    break
                if self._queue and self._oldest_at is not None:
                    wait = self._oldest_at + target.max_delay_s - time.monotonic()
                    if wait <= 0:
                        break
                else:
                    wait = None
                self._cond.wait(wait)
            count = min(len(self._queue), target.batch_size)
            batch = [self._queue.popleft() for _ in range(count)]
            self._oldest_at = time.monotonic() if self._queue else None
            return batch

    def _run(self) -> None:
        with httpx.Client(transport=self._transport, timeout=self.target.timeout_s) as client:
            while True:
                batch = self._take()
                if batch:
                    self._deliver(client, batch)
                if self._stop.is_set():
                    self._drain(client)
                    return

    def _drain(self, client: httpx.Client) -> None:
        while True:
            with self._cond:
                count = min(len(self._queue), self.target.batch_size)
                batch = [self._queue.popleft() for _ in range(count)]
            if not batch:
                return
            self._deliver(client, batch)

    def _deliver(self, client: httpx.Client, batch: list[Span]) -> None:
        try:
            body = export_request(batch).SerializeToString()
        except Exception:  # one unencodable batch must not kill the thread
            logger.exception("could not encode %d spans for %s; dropped", len(batch), self.target.label)
            self._count_dropped(len(batch))
            return
        headers = {"Content-Type": "application/x-protobuf", **self.target.headers}
        if self.target.compression == "gzip":
            body = gzip.compress(body, compresslevel=5)
            headers["Content-Encoding"] = "gzip"
        attempts = 1 if self._stop.is_set() else self.target.max_retries + 1
        for attempt in range(attempts):
            delay, reason = self._post(client, body, headers)
            if reason is None:
                with self._cond:
                    self._sent += len(batch)
                if self._failing:
                    self._failing = False
                    logger.info("forwarding to %s works again", self.target.label)
                return
            with self._cond:
                self._failed_requests += 1
            if not self._failing:
                self._failing = True
                logger.warning(
                    "forwarding to %s failed (%s); retrying, later failures are not logged", self.target.label, reason
                )
            if delay is None or attempt == attempts - 1:
                break
            if self._stop.wait(delay if delay > 0 else self._backoff(attempt)):
                break
        self._count_dropped(len(batch))

    def _post(self, client: httpx.Client, body: bytes, headers: dict[str, str]) -> tuple[float | None, str | None]:
        """(retry delay or None if not worth retrying, failure reason or None on success)."""
        try:
            response = client.post(self.target.endpoint, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return 0.0, f"{type(exc).__name__}: {exc}"
        if response.status_code < 300:
            return None, None
        reason = f"HTTP {response.status_code}"
        if response.status_code not in _RETRYABLE_STATUS:
            return None, reason
        retry_after = response.headers.get("retry-after", "")
        if retry_after.isdigit():
            return min(float(retry_after), _MAX_BACKOFF_S), reason
        return 0.0, reason

    def _backoff(self, attempt: int) -> float:
        return float(min(self._backoff_base_s * 2**attempt, _MAX_BACKOFF_S))

    def _count_dropped(self, count: int) -> None:
        with self._cond:
            self._dropped_failed += count
