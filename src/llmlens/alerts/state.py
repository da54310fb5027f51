"""Alert state: the pending -> firing -> resolved machine, cooldown, and the history of every
transition, kept in the store so that restarts and several servers sharing a store agree.

The current state of a rule is its latest transition. A transition is claimed by inserting its row
keyed (project, rule, seq): when two evaluators race, only the one whose row landed notifies.
The SQL is deliberately plain so other backends can adapt it.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from llmlens.store import Store

from .evaluate import Evaluation
from .rules import RuleSpec, parse_rule

logger = logging.getLogger("llmlens.alerts")

PENDING, FIRING, RESOLVED = "pending", "firing", "resolved"
ACTIVE_STATES = (PENDING, FIRING)

_HISTORY_DDL = """
CREATE TABLE IF NOT EXISTS store.alert_history (
  project VARCHAR NOT NULL,
  rule VARCHAR NOT NULL,
  seq BIGINT NOT NULL,
  state VARCHAR NOT NULL,
  previous_state VARCHAR,
  changed_at TIMESTAMP NOT NULL,
  value DOUBLE,
  threshold DOUBLE,
  sample_size BIGINT,
  message VARCHAR,
  details VARCHAR,
  claimed_by VARCHAR,
  PRIMARY KEY (project, rule, seq)
)
"""
_RULES_DDL = """
CREATE TABLE IF NOT EXISTS store.alert_rules (
  name VARCHAR NOT NULL PRIMARY KEY,
  spec VARCHAR,
  updated_at TIMESTAMP
)
"""
_COLUMNS = (
    "project, rule, seq, state, previous_state, changed_at, value, threshold, sample_size, message, details, claimed_by"
)


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


def _transition(row: Mapping[str, Any]) -> Transition:
    details = row.get("details")
    return Transition(
        project=row["project"],
        rule=row["rule"],
        seq=int(row["seq"]),
        state=row["state"],
        previous_state=row["previous_state"],
        at=row["changed_at"],
        value=row["value"],
        threshold=row["threshold"],
        sample_size=None if row["sample_size"] is None else int(row["sample_size"]),
        message=row["message"] or "",
        details=json.loads(details) if details else {},
    )


class AlertHistory:
    """Transitions and API-managed rules in the store (tables created on first use)."""

    def __init__(self, store: Store, *, evaluator_id: str | None = None) -> None:
        self.store = store
        self.evaluator_id = evaluator_id or uuid.uuid4().hex
        self._ready = False

    def ensure_tables(self) -> None:
        if not self._ready:
            self.store.execute("CREATE SCHEMA IF NOT EXISTS store")
            self.store.execute(_HISTORY_DDL)
            self.store.execute(_RULES_DDL)
            self._ready = True

    def _rows(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        try:
            return self.store.query(sql, params).dicts()
        except Exception as exc:
            # A store opened read-only before any alert ran has no tables yet: nothing to read.
            if "alert_" in str(exc) and ("does not exist" in str(exc) or "not found" in str(exc).lower()):
                return []
            raise

    # -- transitions ----------------------------------------------------------------------------

    def latest(self, project: str, rule: str) -> Transition | None:
        found = self._rows(
            f"SELECT {_COLUMNS} FROM store.alert_history WHERE project = ? AND rule = ? ORDER BY seq DESC LIMIT 1",
            [project, rule],
        )
        return _transition(found[0]) if found else None

    def current(self, project: str | None = None) -> list[Transition]:
        """The latest transition of every rule (of one project, or all)."""
        where = " AND h.project = ?" if project is not None else ""
        params = [project] if project is not None else []
        found = self._rows(
            f"SELECT {_COLUMNS} FROM store.alert_history h WHERE h.seq = (SELECT max(m.seq) "
            f"FROM store.alert_history m WHERE m.project = h.project AND m.rule = h.rule){where} "
            "ORDER BY h.changed_at DESC",
            params,
        )
        return [_transition(r) for r in found]

    def active(self, project: str | None = None) -> list[Transition]:
        return [t for t in self.current(project) if t.state in ACTIVE_STATES]

    def recent(self, project: str | None = None, limit: int = 100) -> list[Transition]:
        where = "WHERE project = ?" if project is not None else ""
        params = [project] if project is not None else []
        found = self._rows(
            f"SELECT {_COLUMNS} FROM store.alert_history {where} ORDER BY changed_at DESC, seq DESC LIMIT {int(limit)}",
            params,
        )
        return [_transition(r) for r in found]

    def claim(self, transition: Transition) -> bool:
        """Insert the transition unless another evaluator already did; True when this one won."""
        self.ensure_tables()
        key = [transition.project, transition.rule, transition.seq]
        try:
            self.store.execute(
                f"INSERT INTO store.alert_history ({_COLUMNS}) SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? "
                "WHERE NOT EXISTS (SELECT 1 FROM store.alert_history WHERE project = ? AND rule = ? AND seq = ?)",
                [
                    *key,
                    transition.state,
                    transition.previous_state,
                    transition.at,
                    transition.value,
                    transition.threshold,
                    transition.sample_size,
                    transition.message,
                    to_json(transition.details),
                    self.evaluator_id,
                    *key,
                ],
            )
        except Exception as exc:  # a primary-key conflict: someone else inserted it first
            logger.debug("transition %s not claimed: %s", transition.id, exc)
            return False
        found = self._rows("SELECT claimed_by FROM store.alert_history WHERE project = ? AND rule = ? AND seq = ?", key)
        return bool(found) and found[0]["claimed_by"] == self.evaluator_id

    # -- rules managed through the API ----------------------------------------------------------

    def rule_overrides(self) -> dict[str, RuleSpec | None]:
        """name -> rule (created or replaced through the API), or None (deleted through the API)."""
        found = self._rows("SELECT name, spec FROM store.alert_rules ORDER BY updated_at", [])
        overrides: dict[str, RuleSpec | None] = {}
        for row in found:
            if row["spec"] is None:
                overrides[row["name"]] = None
                continue
            try:
                overrides[row["name"]] = parse_rule(json.loads(row["spec"]))
            except ValueError as exc:
                logger.warning("stored alert rule %r is invalid and ignored: %s", row["name"], exc)
        return overrides

    def save_rule(self, name: str, rule: RuleSpec | None, now: datetime) -> None:
        """Store a rule made through the API; None records a deletion (hides a configured rule too)."""
        self.ensure_tables()
        self.store.execute("DELETE FROM store.alert_rules WHERE name = ?", [name])
        self.store.execute(
            "INSERT INTO store.alert_rules (name, spec, updated_at) VALUES (?, ?, ?)",
            [name, None if rule is None else to_json(rule.to_dict()), now],
        )
