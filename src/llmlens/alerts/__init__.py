"""Alerts: rules, the evaluator and its schedule, attribution, notifications, and the spend forecast."""

from __future__ import annotations

from typing import Any

from llmlens.store import Store

from .engine import AlertEngine, RunResult, utc_now
from .evaluate import Evaluation, EvaluationContext, evaluate_rule
from .forecast import forecast_month
from .notify import (
    SIGNATURE_HEADER,
    NotificationDispatcher,
    NotifierConfig,
    NotifierError,
    parse_notifiers,
    sign,
    verify_signature,
)
from .rules import DEFAULT_RULES, RULE_TYPES, RuleError, RuleSpec, Scope, effective_rules, parse_rule
from .scheduler import AlertScheduler
from .service import AlertService
from .state import AlertHistory, Transition

__all__ = [
    "DEFAULT_RULES",
    "RULE_TYPES",
    "SIGNATURE_HEADER",
    "AlertEngine",
    "AlertHistory",
    "AlertScheduler",
    "AlertService",
    "Evaluation",
    "EvaluationContext",
    "NotificationDispatcher",
    "NotifierConfig",
    "NotifierError",
    "RuleError",
    "RuleSpec",
    "RunResult",
    "Scope",
    "Transition",
    "active_alerts",
    "effective_rules",
    "evaluate_rule",
    "forecast_month",
    "parse_notifiers",
    "parse_rule",
    "sign",
    "utc_now",
    "verify_signature",
]


def active_alerts(store: Store, project: str) -> list[dict[str, Any]]:
    """Pending and firing alerts of a project, newest first, as JSON-ready dicts (for the overview page)."""
    return [t.to_dict() for t in AlertHistory(store).active(project)]
