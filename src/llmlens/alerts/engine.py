"""The alert engine: evaluates every enabled rule for every active project, moves states, records
transitions and hands claimed transitions to the notifiers."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from llmlens.settings import Settings
from llmlens.store import Store

from .evaluate import Evaluation, EvaluationContext, evaluate_rule
from .notify import NotificationDispatcher
from .rules import RuleSpec, effective_rules
from .state import AlertHistory, Transition, next_state

logger = logging.getLogger("llmlens.alerts")

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """Naive UTC, like the stored timestamps."""
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(slots=True)
class RunResult:
    at: datetime
    evaluations: list[Evaluation] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)

    @property
    def firing(self) -> list[Evaluation]:
        return [e for e in self.evaluations if e.firing]


class AlertEngine:
    """Rules from settings + API, evaluated over one store. `run_once` is safe to call from any thread."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        dispatcher: NotificationDispatcher | None = None,
        clock: Clock = utc_now,
        history: AlertHistory | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.dispatcher = dispatcher
        self.clock = clock
        self.history = history or AlertHistory(store)
        self.last_run: RunResult | None = None
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return self.settings.public_url or self.settings.url

    def rules(self) -> list[RuleSpec]:
        return effective_rules(self.settings.alerts, self.history.rule_overrides())

    def rule(self, name: str) -> RuleSpec | None:
        return next((r for r in self.rules() if r.name == name), None)

    def projects(self, now: datetime) -> list[str]:
        """Projects with traffic in the last day, the default project, and any with an active alert."""
        found = {self.settings.project}
        try:
            rows = self.store.query(
                "SELECT DISTINCT project FROM spans WHERE timestamp >= ?", [now - timedelta(days=1)]
            ).rows
            found.update(str(r[0]) for r in rows)
        except Exception:
            logger.exception("cannot list projects for alerts")
        found.update(t.project for t in self.history.active())
        return sorted(found)

    def evaluate_all(self, now: datetime | None = None, *, project: str | None = None) -> RunResult:
        """Evaluate every enabled rule once, without changing state or notifying (dry run)."""
        now = now or self.clock()
        result = RunResult(at=now)
        rules = [r for r in self.rules() if r.enabled]
        for proj in [project] if project else self.projects(now):
            ctx = EvaluationContext(
                store=self.store, project=proj, now=now, base_url=self.base_url, budgets=self.settings.budgets
            )
            for rule in rules:
                if rule.project and rule.project != proj:
                    continue
                try:
                    result.evaluations.append(evaluate_rule(rule, ctx))
                except Exception as exc:
                    logger.exception("alert rule %r failed on project %r", rule.name, proj)
                    result.errors.append({"rule": rule.name, "project": proj, "error": f"{type(exc).__name__}: {exc}"})
        return result

    def run_once(self, now: datetime | None = None) -> RunResult:
        """Evaluate, move each rule's state, record and notify the transitions this evaluator claimed."""
        with self._lock:
            result = self.evaluate_all(now)
            rules = {r.name: r for r in self.rules()}
            evaluated = {(e.project, e.rule.name) for e in result.evaluations}
            for evaluation in result.evaluations:
                transition = self._advance(evaluation.rule, evaluation, result.at)
                if transition is not None:
                    result.transitions.append(transition)
            # An active alert whose rule was deleted or disabled resolves.
            for active in self.history.active():
                rule = rules.get(active.rule)
                if (active.project, active.rule) in evaluated or (rule is not None and rule.enabled):
                    continue
                transition = self._resolve_orphan(active, result.at)
                if transition is not None:
                    result.transitions.append(transition)
            self.last_run = result
            return result

    def _advance(self, rule: RuleSpec, evaluation: Evaluation, now: datetime) -> Transition | None:
        previous = self.history.latest(evaluation.project, rule.name)
        state = next_state(rule, previous, evaluation, now)
        if state is None:
            return None
        details = evaluation.to_dict()
        details["rule_spec"] = rule.to_dict()
        transition = Transition(
            project=evaluation.project,
            rule=rule.name,
            seq=(previous.seq + 1) if previous else 1,
            state=state,
            previous_state=previous.state if previous else None,
            at=now,
            value=evaluation.value,
            threshold=evaluation.threshold,
            sample_size=evaluation.sample_size,
            message=evaluation.message if state != "resolved" else f"resolved: {evaluation.message}",
            details=details,
        )
        return self._commit(transition)

    def _resolve_orphan(self, active: Transition, now: datetime) -> Transition | None:
        transition = Transition(
            project=active.project,
            rule=active.rule,
            seq=active.seq + 1,
            state="resolved",
            previous_state=active.state,
            at=now,
            message=f"resolved: rule {active.rule!r} was removed or disabled",
            details={"rule_spec": active.details.get("rule_spec", {"name": active.rule})},
        )
        return self._commit(transition)

    def _commit(self, transition: Transition) -> Transition | None:
        if not self.history.claim(transition):
            return None  # another evaluator sharing this store recorded it (and notifies it)
        logger.info("alert %s: %s -> %s", transition.id, transition.previous_state or "ok", transition.state)
        if self.dispatcher is not None:
            self.dispatcher.submit(transition)
        return transition

    def rule_notifiers(self, name: str) -> tuple[str, ...]:
        rule = self.rule(name)
        return rule.notify if rule is not None else ()
