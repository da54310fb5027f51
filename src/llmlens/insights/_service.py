"""The insights service the server runs: findings cached per project and window, refreshed in the background.

A report is computed off the request path, in one worker thread, and kept keyed by (project, window).
Requests read the cache. A report is stale when its project has had writes since it was computed (the
writer tells the service after each commit) or when it is older than the refresh interval (the window
has moved on); a request for a stale report starts its refresh and waits a little for it, then answers
with what there is. A schedule refreshes stale reports that were read in the last day, so a page that
people look at is ready before they ask.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from llmlens.model import Feedback, Span
from llmlens.pricing import PriceBook
from llmlens.query import DEFAULT_RANGE, parse_window, utc_now
from llmlens.store import Store

from ._embeddings import Embeddings
from ._model import InsightsReport
from ._runner import DEFAULT_CACHE_TTL_S, DEFAULT_MAX_CALLS, compute_insights

logger = logging.getLogger("llmlens.insights")

WindowKey = tuple[str | None, str | None, str | None]  # (range, from, to) as the request gave them
Status = Literal["fresh", "stale", "computing"]
_KEEP_READ_S = 24 * 3600.0
WARM_DELAY_S = 2.0  # reports not read for this long are not refreshed by the schedule


@dataclass(slots=True)
class _Entry:
    report: InsightsReport
    generation: int
    refreshed_at: float  # monotonic
    last_read: float


@dataclass(frozen=True, slots=True)
class Answer:
    report: InsightsReport | None
    status: Status


class InsightsService:
    """Kept in `AppState.services["insights"]`; thread-safe."""

    def __init__(
        self,
        store: Store,
        *,
        prices: Callable[[], PriceBook | None],
        interval_s: float = 300.0,
        max_calls: int = DEFAULT_MAX_CALLS,
        cache_ttl_s: float = DEFAULT_CACHE_TTL_S,
        wait_s: float = 10.0,
        max_entries: int = 256,
        clock: Callable[[], dt.datetime] = utc_now,
        embeddings: Embeddings | None = None,
    ) -> None:
        self.store = store
        self.embeddings = embeddings
        self.prices = prices
        self.interval_s = interval_s
        self.max_calls = max_calls
        self.cache_ttl_s = cache_ttl_s
        self.wait_s = wait_s
        self.max_entries = max_entries
        self.clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, WindowKey], _Entry] = OrderedDict()
        self._pending: dict[tuple[str, WindowKey], concurrent.futures.Future[_Entry]] = {}
        self._generations: dict[str, int] = {}
        self._worker = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="llmlens-insights")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.refreshes = 0

    # -- what changed ------------------------------------------------------------------------------

    def on_write(self, spans: Sequence[Span], feedback: Sequence[Feedback]) -> None:
        """Writer listener (writer thread): the projects written to have stale reports now."""
        projects = {s.project for s in spans} | {f.project for f in feedback}
        with self._lock:
            for project in projects:
                self._generations[project] = self._generations.get(project, 0) + 1

    def _generation(self, project: str) -> int:
        return self._generations.get(project, 0)

    # -- reading -----------------------------------------------------------------------------------

    def report(self, project: str, key: WindowKey, *, wait_s: float | None = None) -> Answer:
        """The findings of `project` over the window `key`; WindowError for a bad window (checked first)."""
        parse_window(*key, now=self.clock())  # a bad range is the caller's error, before anything is queued
        wait = self.wait_s if wait_s is None else wait_s
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get((project, key))
            if entry is not None:
                entry.last_read = now
                self._entries.move_to_end((project, key))
                if not self._stale(project, entry, now):
                    return Answer(entry.report, "fresh")
        future = self.refresh(project, key)
        done, _ = concurrent.futures.wait([future], timeout=wait)
        if done and future.exception() is None:
            return Answer(future.result().report, "fresh")
        if done and entry is None:
            raise RuntimeError(f"insights could not be computed: {future.exception()}")
        return Answer(entry.report if entry is not None else None, "stale" if entry is not None else "computing")

    def cached(self, project: str, key: WindowKey) -> InsightsReport | None:
        """The kept report, as it is, without refreshing it."""
        with self._lock:
            entry = self._entries.get((project, key))
            return entry.report if entry is not None else None

    def _stale(self, project: str, entry: _Entry, now: float) -> bool:
        if entry.generation != self._generation(project):
            return True
        return self.interval_s > 0 and now - entry.refreshed_at >= self.interval_s

    # -- computing ---------------------------------------------------------------------------------

    def refresh(self, project: str, key: WindowKey) -> concurrent.futures.Future[_Entry]:
        """Start computing the report (once: a refresh already queued for it is shared)."""
        with self._lock:
            pending = self._pending.get((project, key))
            if pending is not None:
                return pending
            future = self._worker.submit(self._compute, project, key)
            self._pending[(project, key)] = future
        future.add_done_callback(lambda _: self._forget(project, key, future))
        return future

    def _forget(self, project: str, key: WindowKey, future: concurrent.futures.Future[_Entry]) -> None:
        with self._lock:
            if self._pending.get((project, key)) is future:
                del self._pending[(project, key)]

    def _compute(self, project: str, key: WindowKey) -> _Entry:
        with self._lock:
            generation = self._generation(project)  # writes from here on make the result stale
        window = parse_window(*key, now=self.clock())
        report = compute_insights(
            self.store,
            project,
            window,
            prices=self.prices(),
            max_calls=self.max_calls,
            cache_ttl_s=self.cache_ttl_s,
            clock=self.clock,
            cancelled=self._stop.is_set,
            embeddings=self.embeddings,
        )
        now = time.monotonic()
        entry = _Entry(report, generation, now, now)
        with self._lock:
            old = self._entries.get((project, key))
            if old is not None:
                entry.last_read = old.last_read
            self._entries[(project, key)] = entry
            self._entries.move_to_end((project, key))
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
            self.refreshes += 1
        return entry

    # -- the schedule ------------------------------------------------------------------------------

    def start(self, warm: Sequence[str] = ()) -> None:
        """Compute the default range of the `warm` projects shortly, then refresh on the interval (when positive)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._loop, args=(tuple(warm),), name="llmlens-insights-schedule", daemon=True
            )
            self._thread.start()

    def _loop(self, warm: tuple[str, ...]) -> None:
        # A moment after start-up, not during it: the server is ready first, its first pages are not slowed.
        if self._stop.wait(WARM_DELAY_S):
            return
        for project in warm:
            self.refresh(project, (DEFAULT_RANGE, None, None))
        while self.interval_s > 0 and not self._stop.wait(min(self.interval_s, 60.0)):
            try:
                self.refresh_stale()
            except Exception:
                logger.exception("insights: scheduled refresh failed")

    def refresh_stale(self) -> int:
        """Queue a refresh of every stale report read in the last day; returns how many were queued."""
        now = time.monotonic()
        with self._lock:
            due = [
                key
                for key, entry in self._entries.items()
                if now - entry.last_read < _KEEP_READ_S and self._stale(key[0], entry, now)
            ]
        for project, window in due:
            self.refresh(project, window)
        return len(due)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None
        # The embeddings' file and client stay open: a refresh still running may be using them.
        self._worker.shutdown(wait=False, cancel_futures=True)
