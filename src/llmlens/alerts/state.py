"""Alert state: the pending -> firing -> resolved machine, cooldown, and the history of every
transition, kept in the store so that restarts and several servers sharing a store agree.

The current state of a rule is its latest transition. A transition is keyed (project, rule, seq) and
claimed through the store (`Store.claim_alert_transition`): when evaluators race, exactly one claim
wins and only its evaluator notifies. Each backend keeps the tables and decides the winner its own
way (see `llmlens/store/_alert_state.py`); nothing here is backend-specific SQL.

Rules changed through the API are kept in two layers: server-wide (a server admin's) and per project.
The store keeps one row per name, so a project's rule is stored under `<project>/<rule name>`; rule
names cannot contain "/", so the last "/" separates the two, and a name without one is server-wide
(as every rule stored before rules belonged to projects was).
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from llmlens.store import AlertRecord, Store

from .evaluate import Evaluation
from .rules import RuleLayers, RuleSpec, parse_rule

logger = logging.getLogger("llmlens.alerts")

PENDING, FIRING, RESOLVED = "pending", "firing", "resolved"
ACTIVE_STATES = (PENDING, FIRING)


def json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.replace(microsecond=0).isoformat() + "Z"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def to_json(value: Any) -> str:
    return json.dumps(value, default=json_default, separators=(",", ":"))


@dataclass(slots=True)
class Transition:
    """One row of the history: a rule entered `state` at `at`."""

    project: str
    rule: str
    seq: int
    state: str
    previous_state: str | None
    at: datetime
    value: float | None = None
    threshold: float | None = None
    sample_size: int | None = None
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.project}:{self.rule}:{self.seq}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "project": self.project,
            "rule": self.rule,
            "seq": self.seq,
            "state": self.state,
            "previous_state": self.previous_state,
            "at": self.at,
            "value": self.value,
            "threshold": self.threshold,
            "sample_size": self.sample_size,
            "message": self.message,
            "details": self.details,
        }


def next_state(rule: RuleSpec, previous: Transition | None, evaluation: Evaluation, now: datetime) -> str | None:
    """The state to move to, or None to stay where it is."""
    current = previous.state if previous else RESOLVED
    if evaluation.firing:
        if current == FIRING:
            return None
        if current == PENDING:
            assert previous is not None
            return FIRING if now - previous.at >= timedelta(seconds=rule.for_s) else None
        if (
            previous is not None
            and previous.previous_state == FIRING
            and now - previous.at < timedelta(seconds=rule.cooldown_s)
        ):
            return None  # just resolved: do not flap
        return PENDING if rule.for_s > 0 else FIRING
    return RESOLVED if current in ACTIVE_STATES else None


def _transition(record: AlertRecord) -> Transition:
    return Transition(
        project=record.project,
        rule=record.rule,
        seq=record.seq,
        state=record.state,
        previous_state=record.previous_state,
        at=record.changed_at,
        value=record.value,
        threshold=record.threshold,
        sample_size=record.sample_size,
        message=record.message,
        details=json.loads(record.details) if record.details else {},
    )


def _record(transition: Transition) -> AlertRecord:
    return AlertRecord(
        project=transition.project,
        rule=transition.rule,
        seq=transition.seq,
        state=transition.state,
        previous_state=transition.previous_state,
        changed_at=transition.at,
        value=transition.value,
        threshold=transition.threshold,
        sample_size=transition.sample_size,
        message=transition.message,
        details=to_json(transition.details),
    )


class AlertHistory:
    """Transitions and API-managed rules, kept by the store (tables created on first use)."""

    def __init__(self, store: Store, *, evaluator_id: str | None = None) -> None:
        self.store = store
        self.evaluator_id = evaluator_id or uuid.uuid4().hex

    def ensure_tables(self) -> None:
        self.store.ensure_alert_tables()

    # -- transitions ----------------------------------------------------------------------------

    def latest(self, project: str, rule: str) -> Transition | None:
        found = self.store.alert_history(project=project, rule=rule, latest_only=True)
        return _transition(found[0]) if found else None

    def current(self, project: str | None = None) -> list[Transition]:
        """The latest transition of every rule (of one project, or all), newest first."""
        return [_transition(r) for r in self.store.alert_history(project=project, latest_only=True)]

    def active(self, project: str | None = None) -> list[Transition]:
        return [t for t in self.current(project) if t.state in ACTIVE_STATES]

    def recent(self, project: str | None = None, limit: int = 100) -> list[Transition]:
        return [_transition(r) for r in self.store.alert_history(project=project, limit=limit)]

    def claim(self, transition: Transition) -> bool:
        """Record the transition for this evaluator; True when its claim won (it then notifies)."""
        won = self.store.claim_alert_transition(_record(transition), self.evaluator_id)
        if not won:
            logger.debug("transition %s was claimed by another evaluator", transition.id)
        return won

    # -- rules managed through the API ----------------------------------------------------------

    def rule_layers(self) -> RuleLayers:
        """Every rule created, replaced (a RuleSpec) or deleted (None) through the API, by layer."""
        layers = RuleLayers()
        for stored in self.store.alert_rules():
            project, _, name = stored.name.rpartition("/")
            layer = layers.projects.setdefault(project, {}) if project else layers.server
            if stored.spec is None:
                layer[name] = None
                continue
            try:
                layer[name] = parse_rule(json.loads(stored.spec))
            except ValueError as exc:
                logger.warning("stored alert rule %r is invalid and ignored: %s", stored.name, exc)
        return layers

    def rule_overrides(self, project: str | None = None) -> dict[str, RuleSpec | None]:
        """name -> rule (created or replaced through the API), or None (deleted through the API), of the
        server-wide layer (`project` None) or of one project."""
        layers = self.rule_layers()
        return layers.server if project is None else layers.projects.get(project, {})

    def save_rule(self, name: str, rule: RuleSpec | None, now: datetime, *, project: str | None = None) -> None:
        """Store a rule made through the API; None records a deletion (hides a configured rule too).
        `project` None changes the server-wide layer, else only that project's."""
        if "/" in name:
            raise ValueError(f"alert rule names cannot contain '/', got {name!r}")
        stored = name if project is None else f"{project}/{name}"
        self.store.save_alert_rule(stored, None if rule is None else to_json(rule.to_dict()), now)
