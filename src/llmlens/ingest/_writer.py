"""Group commit: concurrent ingest requests share one store transaction.

Requests append their batch to a bounded queue and wait on a future; one writer thread drains
everything queued, writes it in a single transaction and resolves every future. Acknowledging after
the commit makes a 2xx mean durable; sharing the commit makes that cheap under concurrency. Work a
store keeps out of its commits (the DuckDB store's rollup folds) runs in this thread too, after the
requests of a commit are answered or when no request is waiting, never between a request and its answer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from llmlens.model import Feedback, Span
from llmlens.store import Store, WriteResult

logger = logging.getLogger("llmlens.ingest")

WriteListener = Callable[[Sequence[Span], Sequence[Feedback]], None]
# With nothing to write for this long, the store is given its deferred work.
IDLE_S = 0.5
# A commit costs the same few milliseconds whether it holds one event or a hundred. When the last one
# held several requests (clients are sending concurrently) and fewer than GATHER_EVENTS are queued, the
# writer waits for more to join, so small requests share commits instead of each paying for one: up to
# GATHER_S in all, and no longer than GATHER_GAP_S without a new request (the clients that were sending
# have all been heard). A lone client, whose commits hold one request each, never waits.
GATHER_S = 0.005
GATHER_GAP_S = 0.0015
GATHER_EVENTS = 256


class Backpressure(RuntimeError):
    """The writer is behind: the caller should retry after `retry_after_s`."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"ingest queue is full; retry after {retry_after_s:g} s")
        self.retry_after_s = retry_after_s


@dataclass(slots=True)
class _Pending:
    spans: Sequence[Span]
    feedback: Sequence[Feedback]
    future: Future[None] = field(default_factory=Future)

    @property
    def size(self) -> int:
        return len(self.spans) + len(self.feedback)


@dataclass(slots=True)
class WriterStats:
    commits: int = 0
    events_written: int = 0
    duplicates: int = 0
    failures: int = 0
    rejected_backpressure: int = 0
    last_commit_ms: float = 0.0
    total_commit_ms: float = 0.0


class GroupCommitWriter:
    def __init__(self, store: Store, *, max_queued_events: int = 200_000, max_commit_events: int = 50_000) -> None:
        self._store = store
        self._max_queued = max_queued_events
        self._max_commit = max_commit_events
        self._queue: deque[_Pending] = deque()
        self._queued_events = 0
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._listeners: list[WriteListener] = []
        # The store's deferred work, done when due; a store without any has no such method.
        self._between_commits: Callable[[], None] | None = getattr(store, "fold_due_rollups", None)
        self._deferred_work_failing = False
        self._last_commit_requests = 0
        self.stats = WriterStats()

    @property
    def queued_events(self) -> int:
        return self._queued_events

    @property
    def max_queued_events(self) -> int:
        return self._max_queued

    @property
    def full(self) -> bool:
        """No room for another batch: `submit` would refuse it. A reading without the lock, for callers
        that turn requests away before decoding them; `submit` still decides under the lock."""
        queued = self._queued_events
        return queued > 0 and queued >= self._max_queued

    def add_listener(self, listener: WriteListener) -> None:
        """Called in the writer thread after each commit with what was committed."""
        self._listeners.append(listener)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="llmlens-writer", daemon=True)
            self._thread.start()

    def submit(self, spans: Sequence[Span], feedback: Sequence[Feedback]) -> Future[None]:
        pending = _Pending(spans, feedback)
        with self._cond:
            if self._stopping:
                raise RuntimeError("the writer is shutting down")
            if self._queued_events and self._queued_events + pending.size > self._max_queued:
                self.stats.rejected_backpressure += 1
                raise Backpressure(retry_after_s=1.0)
            self._queue.append(pending)
            self._queued_events += pending.size
            self._cond.notify()
        return pending.future

    def write_now(self, spans: Sequence[Span], feedback: Sequence[Feedback]) -> None:
        """Submit and wait (for CLI imports and tests that run without an event loop)."""
        self.submit(spans, feedback).result()

    def stop(self, timeout_s: float = 10.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _take(self) -> list[_Pending] | None:
        """The next commit's requests; [] after IDLE_S without any; None once stopping and drained."""
        with self._cond:
            while not self._queue and not self._stopping:
                if self._between_commits is None:
                    self._cond.wait()
                elif not self._cond.wait(IDLE_S):
                    return []
            if not self._queue:
                return None
            if self._last_commit_requests > 1:
                self._gather()
            taken: list[_Pending] = []
            count = 0
            while self._queue and (not taken or count + self._queue[0].size <= self._max_commit):
                item = self._queue.popleft()
                taken.append(item)
                count += item.size
            self._queued_events -= count
            self._last_commit_requests = len(taken)
            return taken

    def _gather(self) -> None:
        """Wait (holding the condition, woken by each submit) for GATHER_EVENTS queued events, at most
        GATHER_S, and at most GATHER_GAP_S since the last request joined."""
        deadline = time.monotonic() + GATHER_S
        while self._queued_events < GATHER_EVENTS and not self._stopping:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            waiting = len(self._queue)
            self._cond.wait(min(remaining, GATHER_GAP_S))
            if len(self._queue) == waiting:
                return

    def _run(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return  # stopping and drained
            if not batch:
                self._do_deferred_work()
                continue
            spans = [s for p in batch for s in p.spans]
            feedback = [f for p in batch for f in p.feedback]
            started = time.perf_counter()
            try:
                result = self._store.write(spans, feedback)
            except Exception as exc:  # reported to the waiting requests, never kills the thread
                if len(batch) > 1:
                    # One bad request must not sink the others that shared its commit: write each alone.
                    for p in batch:
                        self._write_alone(p)
                    continue
                self.stats.failures += 1
                logger.exception("write of %d events failed", len(spans) + len(feedback))
                batch[0].future.set_exception(exc)
                continue
            elapsed = (time.perf_counter() - started) * 1000
            self._record(result, elapsed)
            for p in batch:
                p.future.set_result(None)
            self._notify(spans, feedback)
            self._do_deferred_work()

    def _do_deferred_work(self) -> None:
        if self._between_commits is None:
            return
        try:
            self._between_commits()
        except Exception:  # retried when next due; the commits themselves are unaffected
            if not self._deferred_work_failing:  # once until it works again, not after every commit
                logger.exception("deferred store work failed; retrying after each commit")
            self._deferred_work_failing = True
        else:
            self._deferred_work_failing = False

    def _write_alone(self, pending: _Pending) -> None:
        started = time.perf_counter()
        try:
            result = self._store.write(pending.spans, pending.feedback)
        except Exception as exc:
            self.stats.failures += 1
            logger.exception("write of %d events failed", pending.size)
            pending.future.set_exception(exc)
            return
        self._record(result, (time.perf_counter() - started) * 1000)
        pending.future.set_result(None)
        self._notify(pending.spans, pending.feedback)

    def _notify(self, spans: Sequence[Span], feedback: Sequence[Feedback]) -> None:
        for listener in self._listeners:
            try:
                listener(spans, feedback)
            except Exception:
                logger.exception("write listener %r failed", listener)

    def _record(self, result: WriteResult, elapsed_ms: float) -> None:
        s = self.stats
        s.commits += 1
        s.events_written += result.spans_written + result.feedback_written
        s.duplicates += result.spans_duplicate + result.feedback_duplicate
        s.last_commit_ms = elapsed_ms
        s.total_commit_ms += elapsed_ms
