"""The batch exporter: app threads append to a bounded deque; one daemon thread sends.

Modelled on OpenTelemetry's BatchProcessor. The caller's cost is one `deque.append`. The worker
wakes when a batch is full or `schedule_delay_s` has passed, encodes (JSON lines, gzip), POSTs,
and retries connection errors, 429 and 5xx with exponential backoff and jitter, honouring
Retry-After. A full queue drops the oldest event and counts it. With a spool, batches that cannot
be sent during an outage go to disk and are sent, oldest first, once the server answers again.
Ids make every event idempotent, so a batch retried after a lost answer is stored once.
"""

from __future__ import annotations

import gzip
import os
import random
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._config import SDKConfig
from ._encode import MAX_BATCH_CHARS, EventTooLarge, event_line
from ._internal import forget_warning, logger, report_internal_error, warn_once
from ._spool import DiskSpool, SpooledBatch
from ._transport import SendResult, Transport

_BACKOFF_BASE_S = 0.5
_MAX_RETRY_AFTER_S = 120.0
_CONTENT_FIELDS = (
    "prompt",
    "response",
    "input_messages",
    "output_messages",
    "tool_args",
    "tool_result",
    "retrieval_query",
    "variables",
)


@dataclass(slots=True)
class _Batch:
    body: bytes
    count: int
    spooled: SpooledBatch | None = None


def _strip_content(event: dict[str, Any]) -> None:
    for key in _CONTENT_FIELDS:
        event.pop(key, None)
    documents = event.get("documents")
    if isinstance(documents, list):
        event["documents"] = [
            {k: v for k, v in d.items() if k != "content"} if isinstance(d, dict) else {} for d in documents
        ]


# Event keys that carry what users and models said (ids and names are left alone).
_REDACTED_KEYS = (
    "prompt",
    "response",
    "args",
    "result",
    "tool_args",
    "tool_result",
    "query",
    "retrieval_query",
    "documents",
    "metadata",
    "input_messages",
    "output_messages",
    "tool_calls",
    "error",
    "error_message",
    "feedback_text",
    "comment",
    "variables",
    "attributes",
)


def _redact_content(event: dict[str, Any], redactor: Any) -> None:
    for key in _REDACTED_KEYS:
        value = event.get(key)
        if value:
            event[key] = redactor.redact_value(value)


class BatchExporter:
    """Owns the queue, the worker thread and the counters behind `llmlens.stats()`."""

    def __init__(
        self,
        config: SDKConfig,
        transport_factory: Callable[[], Transport],
        *,
        spool: DiskSpool | None = None,
    ) -> None:
        self._config = config
        self._transport_factory = transport_factory
        self._spool = spool
        self._max_queue = config.max_queue_size
        self._batch_size = config.max_batch_size
        self._defaults = {k: v for k, v in (("service", config.service), ("environment", config.environment)) if v}
        self._redactor: Any = None
        if config.redact:
            from llmlens.redaction import Redactor  # stdlib only: cheap, and only when asked for

            self._redactor = Redactor.from_config(config.redact)
        self._closed = False
        self._init_runtime_state()
        self._start_worker()
        if hasattr(os, "register_at_fork"):
            weak_self = weakref.ref(self)

            def _after_fork_in_child() -> None:
                exporter = weak_self()
                if exporter is not None:
                    exporter._reinit_after_fork()

            os.register_at_fork(after_in_child=_after_fork_in_child)

    def _init_runtime_state(self) -> None:
        self._queue: deque[dict[str, Any]] = deque(maxlen=self._max_queue)
        self._transport = self._transport_factory()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._retry_now = threading.Event()
        self._progress = threading.Condition()
        self._count_lock = threading.Lock()
        self._pending: _Batch | None = None
        self._carry: str | None = None  # an encoded event that did not fit in the last batch
        self._busy = False
        self._cycles = 0
        self._failures = 0
        self._deadline: float | None = None
        self._sent = 0
        self._dropped = 0
        self._retried = 0
        self._failed = 0
        self._rejected = 0
        self._batches = 0
        self._spooled = 0
        self._last_body_bytes = 0

    def _start_worker(self) -> None:
        self._worker = threading.Thread(target=self._run, name="llmlens-exporter", daemon=True)
        self._worker.start()

    def _reinit_after_fork(self) -> None:
        # The parent's queue and connection belong to the parent; the child starts clean.
        if self._closed:
            return
        self._init_runtime_state()
        self._start_worker()

    # -- app side: must stay tiny ----------------------------------------------------------------

    def enqueue(self, event: dict[str, Any]) -> None:
        queue = self._queue
        if len(queue) >= self._max_queue:
            self._record_drop()
        queue.append(event)  # a full deque drops its oldest item
        if len(queue) >= self._batch_size and not self._wake.is_set():
            self._wake.set()

    def _record_drop(self) -> None:
        with self._count_lock:
            self._dropped += 1
        warn_once(
            "queue-full",
            "llmlens: export queue full (%d events); dropping the oldest. See llmlens.stats().",
            self._max_queue,
        )

    # -- control ---------------------------------------------------------------------------------

    def stats(self) -> dict[str, int]:
        pending = self._pending
        return {
            "queued": len(self._queue)
            + (pending.count if pending is not None and not pending.spooled else 0)
            + (self._carry is not None),
            "spooled": self._spooled_events(),
            "sent": self._sent,
            "dropped": self._dropped,
            "retried": self._retried,
            "failed": self._failed,
            "rejected": self._rejected,
            "batches": self._batches,
        }

    def _spooled_events(self) -> int:
        spool = self._spool
        if spool is None:
            return 0
        try:
            return spool.event_count()
        except OSError:
            return 0  # the folder went away: the worker notices and carries on without it

    def flush(self, timeout_s: float) -> bool:
        """Send everything queued now; True when done within the timeout."""
        deadline = time.monotonic() + timeout_s
        with self._progress:
            start = self._cycles
            self._retry_now.set()
            self._wake.set()
            while self._cycles <= start or self._busy or self._queue or self._carry is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._worker.is_alive():
                    return False
                self._progress.wait(min(remaining, 0.05))
                if self._queue and not self._busy:
                    self._wake.set()
        return True

    def shutdown(self, timeout_s: float) -> None:
        """Stop the worker after a last drain; what is left at the deadline is spooled or dropped."""
        self._closed = True
        self._deadline = time.monotonic() + timeout_s
        self._stop.set()
        self._wake.set()
        self._worker.join(timeout_s + 0.5)
        self._transport.close()

    # -- worker ----------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            stopping = self._stop.is_set()
            if not stopping:
                self._wake.wait(self._config.schedule_delay_s)
                self._wake.clear()
            with self._progress:
                self._busy = True
            try:
                self._export_available()
                if self._stop.is_set():
                    self._give_up_remaining()
            except Exception as exc:
                report_internal_error(exc, "exporter thread", reraise=False)
            finally:
                with self._progress:
                    self._busy = False
                    self._cycles += 1
                    self._progress.notify_all()
            if stopping or self._stop.is_set():
                return

    def _past_deadline(self) -> bool:
        return self._deadline is not None and time.monotonic() >= self._deadline

    def _export_available(self) -> None:
        while not self._past_deadline():
            if self._pending is None:
                self._pending = self._take_batch()
                if self._pending is None:
                    return
            try:
                result = self._transport.send(self._pending.body)
            except Exception as exc:
                # The transport maps network and HTTP failures to results; an exception is a bug (or a
                # library patching http.client). Retrying would repeat it forever: count the batch failed.
                report_internal_error(exc, "sending a batch", reraise=False)
                self._failed += self._pending.count
                self._forget_spooled(self._pending)
                self._pending = None
                continue
            if result.ok or not result.retryable:
                self._settle(self._pending, result)
                self._pending = None
                if self._failures:
                    logger.info("llmlens: delivering to %s again", self._config.url)
                    forget_warning("server-unreachable")  # warn again on the next outage
                self._failures = 0
                with self._progress:
                    self._progress.notify_all()
                continue
            self._retried += 1
            self._failures += 1
            warn_once(
                "server-unreachable",
                "llmlens: cannot deliver to %s (%s); retrying with backoff, events are kept in the queue",
                self._config.url,
                result.error or result.status,
            )
            if self._spool is not None:
                self._park_pending()
            if not self._wait_before_retry(self._retry_delay(result)):
                return

    def _retry_delay(self, result: SendResult) -> float:
        if result.retry_after_s is not None:
            return min(result.retry_after_s, _MAX_RETRY_AFTER_S)
        ceiling = min(self._config.max_backoff_s, _BACKOFF_BASE_S * 2 ** (self._failures - 1))
        return float(ceiling * (0.5 + random.random() / 2))

    def _wait_before_retry(self, delay_s: float) -> bool:
        """Sleep on events so flush cuts the wait short; spill to disk meanwhile.

        False means give up for now: shutting down with a spool (spill instead of waiting) or
        past the shutdown deadline.
        """
        end = time.monotonic() + delay_s
        while True:
            if self._stop.is_set() and (self._spool is not None or self._past_deadline()):
                return False
            if self._retry_now.is_set():
                self._retry_now.clear()
                return True
            remaining = end - time.monotonic()
            if remaining <= 0:
                return True
            if self._stop.is_set():
                time.sleep(min(remaining, 0.05))  # shutting down: retry until the deadline
            else:
                self._stop.wait(min(remaining, 0.1))
            if self._spool is not None and len(self._queue) >= self._batch_size:
                self._spill_queue(full_batches_only=True)

    def _spool_failed(self, exc: OSError) -> None:
        """The spool folder stopped working (removed, read-only, full disk): carry on without it."""
        warn_once(
            "spool-unusable",
            "llmlens: the spool folder cannot be used any more (%s); events now wait in memory during an outage",
            exc,
        )
        self._spool = None

    def _take_batch(self) -> _Batch | None:
        if self._spool is not None:
            try:
                spooled = self._spool.take()
            except OSError as exc:
                self._spool_failed(exc)
                spooled = None
            if spooled is not None:
                return _Batch(body=spooled.body, count=spooled.count, spooled=spooled)
        return self._encode_from_queue()

    def _encode_from_queue(self) -> _Batch | None:
        queue = self._queue
        lines: list[str] = []
        size = 0
        if self._carry is not None:
            lines.append(self._carry)
            size = len(self._carry) + 1
            self._carry = None
        while queue and len(lines) < self._batch_size:
            try:
                event = queue.popleft()
            except IndexError:
                break
            try:
                line = self._encode_event(event)
            except EventTooLarge as exc:
                self._failed += 1
                warn_once("event-too-large", "llmlens: %s; it was not sent (reported once)", exc)
                continue
            except Exception as exc:
                self._failed += 1
                report_internal_error(exc, "encoding an event", reraise=False)
                continue
            if lines and size + len(line) + 1 > MAX_BATCH_CHARS:
                self._carry = line  # starts the next batch: one large event must not push a batch past the limit
                break
            lines.append(line)
            size += len(line) + 1
        if not lines:
            return None
        body = gzip.compress("\n".join(lines).encode("utf-8"), compresslevel=6)
        self._last_body_bytes = len(body)
        return _Batch(body=body, count=len(lines))

    def _encode_event(self, event: dict[str, Any]) -> str:
        if "type" in event:  # made by this SDK; the article's log lines go out unchanged
            for key, value in self._defaults.items():
                if event.get(key) is None:
                    event[key] = value
            if not self._config.capture_content:
                _strip_content(event)
            if self._redactor is not None:
                _redact_content(event, self._redactor)
        return event_line(event)

    def _settle(self, batch: _Batch, result: SendResult) -> None:
        if result.ok:
            rejected = result.answer.get("rejected")
            n_rejected = len(rejected) if isinstance(rejected, list) else 0
            self._sent += batch.count - n_rejected
            self._rejected += n_rejected
            self._batches += 1
            if n_rejected:
                warn_once(
                    "rejected",
                    "llmlens: the server rejected %d event(s) of a batch, first: %s",
                    n_rejected,
                    rejected[0] if isinstance(rejected, list) else "",
                )
        else:
            self._failed += batch.count
            warn_once(
                f"failed-{result.status}",
                "llmlens: the server refused a batch of %d events with HTTP %s: %s",
                batch.count,
                result.status,
                result.error,
            )
        self._forget_spooled(batch)

    def _forget_spooled(self, batch: _Batch) -> None:
        """A spooled batch that was sent or given up: its file goes."""
        if batch.spooled is not None and self._spool is not None:
            self._spool.done(batch.spooled)

    def _park_pending(self) -> None:
        """Outage with a spool: the failed batch goes to disk so memory keeps draining."""
        spool, batch = self._spool, self._pending
        if spool is None or batch is None:
            return
        if batch.spooled is not None:
            spool.release(batch.spooled)
            self._pending = None
            return
        try:
            parked = spool.put(batch.body, batch.count)
        except OSError as exc:
            self._spool_failed(exc)  # the batch stays in memory
            return
        if parked:
            self._spooled += batch.count
            self._pending = None

    def _spill_queue(self, *, full_batches_only: bool) -> None:
        while (self._queue or self._carry is not None) and (
            not full_batches_only or len(self._queue) >= self._batch_size
        ):
            spool = self._spool
            if spool is None:
                return
            try:
                room = spool.has_room(self._last_body_bytes)
            except OSError as exc:
                self._spool_failed(exc)
                return
            if not room:
                # Spool full: leave the events in memory, where the queue bound applies.
                warn_once("spool-full", "llmlens: spool full (%s); keeping events in memory", spool)
                return
            batch = self._encode_from_queue()
            if batch is None:
                return
            try:
                parked = spool.put(batch.body, batch.count)
            except OSError as exc:
                self._spool_failed(exc)
                parked = None
            if not parked:
                with self._count_lock:
                    self._dropped += batch.count
                if parked is not None:
                    warn_once("spool-full", "llmlens: spool full; dropping events")
                return
            self._spooled += batch.count

    def _give_up_remaining(self) -> None:
        """At shutdown past the deadline: spool what is left if we can, else count it dropped."""
        if self._pending is not None:
            if self._spool is not None:
                self._park_pending()
            if self._pending is not None:
                if self._pending.spooled is None:
                    with self._count_lock:
                        self._dropped += self._pending.count
                self._pending = None
        if self._spool is not None:
            self._spill_queue(full_batches_only=False)
        left = len(self._queue) + (self._carry is not None)
        self._carry = None
        if left:
            self._queue.clear()
            with self._count_lock:
                self._dropped += left
