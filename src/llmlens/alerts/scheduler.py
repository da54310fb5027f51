"""Runs the alert engine on a schedule in a background thread (every `alert_interval_s`)."""

from __future__ import annotations

import logging
import threading

from .engine import AlertEngine

logger = logging.getLogger("llmlens.alerts")


class AlertScheduler:
    """A daemon thread calling `engine.run_once()` every `interval_s`; `stop()` returns promptly."""

    def __init__(self, engine: AlertEngine, interval_s: float, *, first_run_delay_s: float | None = None) -> None:
        self.engine = engine
        self.interval_s = max(float(interval_s), 0.05)
        # The first run waits a moment so start-up (and demo loading) is not slowed by it.
        self.first_run_delay_s = min(self.interval_s, 5.0) if first_run_delay_s is None else first_run_delay_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Counted so that a wait for "N more evaluations" can be observed (GET /api/v1/alerts `evaluator`).
        self.runs = 0  # scheduled evaluations that completed
        self.failed_runs = 0  # scheduled evaluations that raised (and were logged)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="llmlens-alerts", daemon=True)
            self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _loop(self) -> None:
        delay = self.first_run_delay_s
        while not self._stop.wait(delay):
            try:
                self.engine.run_once()
            except Exception:
                # Logged, never raised: a broken rule or a busy store must not stop the schedule.
                logger.exception("alert evaluation failed")
                self.failed_runs += 1
            else:
                self.runs += 1
            delay = self.interval_s
