"""Retention: delete spans, feedback and scores older than each project's limit, in a background thread.

`settings.retention_days` is the default (0 keeps everything); a project's own `retention_days`
(`llmlens projects create P --retention-days N`, `llmlens projects set-retention P N`) wins over it.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from llmlens.store import Store

logger = logging.getLogger("llmlens.retention")


@dataclass(frozen=True, slots=True)
class RetentionRun:
    """What one pass did: project -> cutoff applied (naive UTC)."""

    cutoffs: dict[str, dt.datetime]


def retention_cutoffs(
    projects: list[str], default_days: int, overrides: Mapping[str, int | None], now: dt.datetime
) -> dict[str, dt.datetime]:
    cutoffs: dict[str, dt.datetime] = {}
    for project in projects:
        days = overrides.get(project)
        days = default_days if days is None else days
        if days > 0:
            cutoffs[project] = now - dt.timedelta(days=days)
    return cutoffs


def enforce_retention(
    store: Store, default_days: int, overrides: Mapping[str, int | None], *, now: dt.datetime | None = None
) -> RetentionRun:
    """Delete what is older than each project's retention. Trusted: runs outside any request."""
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    if default_days <= 0 and not any(days and days > 0 for days in overrides.values()):
        return RetentionRun({})  # everything is kept: nothing to look up (a start-up scan of a big store)
    # Two plain queries: ClickHouse 18.16 has UNION ALL only. Its store turns the DELETEs below into
    # ALTER TABLE ... DELETE mutations and waits for them. The tables, not the `feedback_events` view: that
    # joins every feedback event to its call (seconds and hundreds of MB at 10M calls) for one column.
    found: set[str] = set()
    for relation in ("store.spans", "store.feedback"):
        found.update(str(r[0]) for r in store.query(f"SELECT DISTINCT project FROM {relation}").rows)
    projects = sorted(found)
    cutoffs = retention_cutoffs(projects, default_days, overrides, now)
    # A store that keeps rollups it cannot subtract from exactly under concurrent passes (ClickHouse)
    # deletes whole days of spans with their rollup buckets instead.
    delete_spans_before = getattr(store, "delete_spans_before", None)
    for project, cutoff in cutoffs.items():
        if delete_spans_before is not None:
            delete_spans_before(project, cutoff)
        else:
            store.execute("DELETE FROM store.spans WHERE project = ? AND timestamp < ?", [project, cutoff])
        store.execute("DELETE FROM store.feedback WHERE project = ? AND timestamp < ?", [project, cutoff])
        store.execute("DELETE FROM store.scores WHERE project = ? AND timestamp < ?", [project, cutoff])
    return RetentionRun(cutoffs)


class RetentionJob:
    """Runs `enforce_retention` at start-up and then every `interval_s`; stops promptly."""

    def __init__(
        self,
        store: Store,
        default_days: int,
        overrides: Callable[[], Mapping[str, int | None]],
        *,
        interval_s: float = 3600.0,
    ) -> None:
        self.store = store
        self.default_days = default_days
        self.overrides = overrides
        self.interval_s = interval_s
        self.runs = 0
        self.last: RetentionRun | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def run_once(self) -> RetentionRun:
        with self._lock:
            run = enforce_retention(self.store, self.default_days, self.overrides())
            self.runs += 1
            self.last = run
            return run

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="llmlens-retention", daemon=True)
            self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # logged, retried next interval; never kills the thread
                logger.exception("retention pass failed")
            self._stop.wait(self.interval_s)
