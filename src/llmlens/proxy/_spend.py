"""Month-to-date spend per user and per feature, from the store, kept current by the writer.

Every ingestion path (gateway, native API, OTLP, import) ends in the same writer, so a listener on it
sees every cost. A total is read from the store once per key, then incremented on each commit and
re-read in the background every `refresh_s` (which also heals the rare commit that lands while the
first read is running).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from llmlens.model import Feedback, Span
from llmlens.store import Store

logger = logging.getLogger("llmlens.proxy")

Dimension = Literal["user_id", "feature"]
_COSTED_KINDS = frozenset({"llm", "embedding"})


def month_start(now_s: float) -> dt.datetime:
    """The first instant of the current calendar month, UTC, naive (as the store keeps timestamps)."""
    now = dt.datetime.fromtimestamp(now_s, tz=dt.UTC)
    return dt.datetime(now.year, now.month, 1)


def _to_us(value: dt.datetime) -> int:
    return int((value - dt.datetime(1970, 1, 1)).total_seconds()) * 1_000_000


@dataclass(slots=True)
class _Total:
    month_us: int
    usd: float
    read_at: float
    refreshing: bool = False


class MonthToDateSpend:
    def __init__(self, store: Store, *, refresh_s: float = 60.0, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._refresh_s = refresh_s
        self._clock = clock
        self._totals: dict[tuple[str, Dimension, str], _Total] = {}
        self._lock = threading.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    def _read(self, project: str, dimension: Dimension, value: str, since: dt.datetime) -> float:
        result = self._store.query(
            f"SELECT COALESCE(SUM(cost_usd), 0) FROM spans WHERE project = ? AND {dimension} = ? "
            "AND kind IN ('llm', 'embedding') AND timestamp >= ?",
            [project, value, since],
        )
        return float(result.rows[0][0] or 0.0) if result.rows else 0.0

    async def spent(self, project: str, dimension: Dimension, value: str) -> float:
        """USD spent this calendar month (UTC) by one user or feature of a project."""
        now = self._clock()
        since = month_start(now)
        month_us = _to_us(since)
        key = (project, dimension, value)
        total = self._totals.get(key)
        if total is not None and total.month_us == month_us:
            if now - total.read_at > self._refresh_s and not total.refreshing:
                total.refreshing = True
                task = asyncio.create_task(self._refresh(key, since, month_us))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            return total.usd
        usd = await asyncio.to_thread(self._read, project, dimension, value, since)
        with self._lock:
            current = self._totals.get(key)
            if current is None or current.month_us != month_us:
                self._totals[key] = _Total(month_us, usd, now)
            return self._totals[key].usd

    async def _refresh(self, key: tuple[str, Dimension, str], since: dt.datetime, month_us: int) -> None:
        try:
            usd = await asyncio.to_thread(self._read, *key, since)
        except Exception:
            logger.exception("reading month-to-date spend of %s failed", key)
            usd = None
        with self._lock:
            total = self._totals.get(key)
            if total is not None:
                total.refreshing = False
                if usd is not None:
                    total.usd, total.read_at, total.month_us = usd, self._clock(), month_us

    def on_write(self, spans: Sequence[Span], feedback: Sequence[Feedback]) -> None:
        """Writer listener (writer thread): add committed costs to the totals already read."""
        if not self._totals:
            return
        with self._lock:
            for span in spans:
                cost = span.cost_usd
                if not cost or span.kind not in _COSTED_KINDS:
                    continue
                for dimension, value in (("user_id", span.user_id), ("feature", span.feature)):
                    if value is None:
                        continue
                    total = self._totals.get((span.project, dimension, value))  # type: ignore[arg-type]
                    if total is not None and span.start_us >= total.month_us:
                        total.usd += cost

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
