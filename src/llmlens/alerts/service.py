"""The alerts subsystem as the server runs it: engine, notifiers and schedule, started and stopped together."""

from __future__ import annotations

import logging
from typing import Any

from llmlens.settings import Settings
from llmlens.store import Store

from .engine import AlertEngine, BudgetsFor, Clock, utc_now
from .notify import NotificationDispatcher, parse_notifiers
from .scheduler import AlertScheduler

logger = logging.getLogger("llmlens.alerts")


class AlertService:
    """Kept in `AppState.services["alerts"]`; pages read `active_alerts(project)` from it."""

    def __init__(
        self, store: Store, settings: Settings, *, clock: Clock = utc_now, budgets_for: BudgetsFor | None = None
    ) -> None:
        self.store_url = store.url
        self.engine = AlertEngine(store, settings, clock=clock, budgets_for=budgets_for)
        self.engine.rules()  # a bad [[alerts]] table stops start-up with its message
        self.dispatcher = NotificationDispatcher(
            parse_notifiers(settings.notifiers), rule_notifiers=self.engine.rule_notifiers
        )
        self.engine.dispatcher = self.dispatcher
        interval = settings.alert_interval_s
        self.scheduler = AlertScheduler(self.engine, interval) if interval > 0 else None

    def start(self) -> None:
        try:
            self.engine.history.ensure_tables()
        except Exception:
            # A backend whose DDL differs must not stop the server: alerts then evaluate (API, CLI)
            # but cannot record transitions until the tables exist.
            logger.exception("cannot create the alert tables in %s; alert states will not be recorded", self.store_url)
        if self.scheduler is not None:
            self.scheduler.start()

    def stop(self) -> None:
        if self.scheduler is not None:
            self.scheduler.stop()
        self.dispatcher.flush(timeout_s=5.0)
        self.dispatcher.close()

    def evaluator_status(self, project: str) -> dict[str, int]:
        """How far the schedule got: evaluations done (or failed) since start, and the project's
        notifications still on their way. A check that nothing more was sent waits on these."""
        scheduler = self.scheduler
        return {
            "runs": scheduler.runs if scheduler is not None else 0,
            "failed_runs": scheduler.failed_runs if scheduler is not None else 0,
            "notifications_pending": self.dispatcher.pending(project),
        }

    def active_alerts(self, project: str) -> list[dict[str, Any]]:
        return [t.to_dict() for t in self.engine.history.active(project)]
