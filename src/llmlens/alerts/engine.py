"""The alert engine: evaluates every enabled rule of every active project, moves states, records
transitions and hands claimed transitions to the notifiers.

Each project has its own rules: the server-wide ones (defaults, the config file, a server admin's API
changes), then the project's own API changes on top (see `rules.project_rules`). Budget rules read the
project's own budget policy through `budgets_for`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from llmlens.settings import Settings
from llmlens.store import Store

from .evaluate import Evaluation, EvaluationContext, evaluate_rule
from .notify import NotificationDispatcher
from .rules import RuleLayers, RuleSpec, effective_rules, project_rules
from .state import AlertHistory, Transition, next_state

logger = logging.getLogger("llmlens.alerts")

Clock = Callable[[], datetime]
BudgetsFor = Callable[[str], Mapping[str, Any]]  # project -> its `[budgets]`-shaped table


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
        budgets_for: BudgetsFor | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.dispatcher = dispatcher
        self.clock = clock
        self.history = history or AlertHistory(store)
        # Without the server's per-project budgets (e.g. `llmlens alerts check --data`), the config's table.
        self.budgets_for: BudgetsFor = budgets_for or (lambda project: settings.budgets)
        self.last_run: RunResult | None = None
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return self.settings.public_url or self.settings.url

    def rules(self, project: str | None = None, layers: RuleLayers | None = None) -> list[RuleSpec]:
        """The server-wide rules (`project` None), or the rules that apply to one project."""
        layers = layers or self.history.rule_layers()
        server_wide = effective_rules(self.settings.alerts, layers.server)
        if project is None:
            return server_wide
        return project_rules(server_wide, layers.projects.get(project, {}), project)

    def rule(self, name: str, project: str | None = None) -> RuleSpec | None:
        return next((r for r in self.rules(project) if r.name == name), None)

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
        layers = self.history.rule_layers()
        for proj in [project] if project else self.projects(now):
            ctx = EvaluationContext(
                store=self.store, project=proj, now=now, base_url=self.base_url, budgets=self.budgets_for(proj)
            )
            for rule in self.rules(proj, layers):
                if not rule.enabled:
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
            layers = self.history.rule_layers()
            rules_of: dict[str, dict[str, RuleSpec]] = {}
            evaluated = {(e.project, e.rule.name) for e in result.evaluations}
            for evaluation in result.evaluations:
                transition = self._advance(evaluation.rule, evaluation, result.at)
                if transition is not None:
                    result.transitions.append(transition)
            # An active alert whose rule was deleted or disabled (in its project) resolves.
            for active in self.history.active():
                if active.project not in rules_of:
                    rules_of[active.project] = {r.name: r for r in self.rules(active.project, layers)}
                rule = rules_of[active.project].get(active.rule)
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

    def rule_notifiers(self, transition: Transition) -> tuple[str, ...]:
        """The notifiers the transition's rule names, as its project sees the rule (empty: all of them)."""
        rule = self.rule(transition.rule, transition.project)
        return rule.notify if rule is not None else ()
