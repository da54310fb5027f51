"""Alert rules in layers: server-wide rules (built in, config file, a server admin's API changes) apply to
every project, and each project's own API changes apply to it alone; budget rules use each project's budgets."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from tests.alerts._traffic import Traffic, new_store

from llmlens.alerts import AlertEngine, Transition, parse_rule
from llmlens.settings import Settings
from llmlens.store import Store

NOW = datetime(2026, 3, 18, 14, 30)
CONFIG_RULES = [{"name": "beta only", "type": "error_rate", "project": "beta"}]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = new_store(tmp_path / "data")
    yield opened
    opened.close()


def _names(engine: AlertEngine, project: str) -> set[str]:
    return {r.name for r in engine.rules(project)}


def test_a_projects_own_changes_apply_to_it_alone(store: Store) -> None:
    engine = AlertEngine(store, Settings(alerts=CONFIG_RULES))
    # A body naming another project still makes a rule of the project it was saved in.
    own = parse_rule({"name": "mine", "type": "cost_spike", "factor": 9.0, "project": "beta", "notify": ["ops"]})
    engine.history.save_rule("mine", own, NOW, project="alpha")
    engine.history.save_rule("error rate", None, NOW, project="alpha")
    engine.history.save_rule(
        "p95 latency", parse_rule({"name": "p95 latency", "type": "latency_p95", "sla_ms": 1}), NOW, project="alpha"
    )

    assert _names(engine, "alpha") == {"cost spike", "p95 latency", "prompt drift", "mine"}
    assert _names(engine, "beta") == {"cost spike", "error rate", "p95 latency", "prompt drift", "beta only"}
    assert engine.rule("p95 latency", "alpha").threshold == 1.0  # type: ignore[union-attr]
    assert engine.rule("p95 latency", "beta").threshold == 5000.0  # type: ignore[union-attr]
    assert engine.rule("mine", "alpha").project == "alpha"  # type: ignore[union-attr]
    # The server-wide layer is untouched by a project's changes.
    assert {r.name for r in engine.rules()} == {"cost spike", "error rate", "p95 latency", "prompt drift", "beta only"}

    for project in ("alpha", "beta"):
        evaluated = {e.rule.name for e in engine.evaluate_all(NOW, project=project).evaluations}
        assert evaluated == _names(engine, project)

    def transition(project: str) -> Transition:
        return Transition(project=project, rule="mine", seq=1, state="firing", previous_state=None, at=NOW)

    assert engine.rule_notifiers(transition("alpha")) == ("ops",)
    assert engine.rule_notifiers(transition("beta")) == ()


def test_a_server_wide_change_applies_to_every_project(store: Store) -> None:
    engine = AlertEngine(store, Settings(alerts=CONFIG_RULES))
    engine.history.save_rule("prompt drift", None, NOW)
    engine.history.save_rule("everyone", parse_rule({"name": "everyone", "type": "error_rate"}), NOW)
    for project in ("alpha", "beta", "gamma"):
        assert "prompt drift" not in _names(engine, project) and "everyone" in _names(engine, project)
    with pytest.raises(ValueError, match="cannot contain"):
        engine.history.save_rule("a/b", None, NOW)


def test_budget_rules_use_each_projects_budgets(store: Store) -> None:
    traffic = Traffic()
    for project in ("alpha", "beta"):
        traffic.llm(NOW - timedelta(hours=1), project=project, user_id="user-big", cost_usd=5.0)
    traffic.write(store)
    limits = {"alpha": 1.0, "beta": 100.0}
    engine = AlertEngine(
        store,
        Settings(alerts=[{"name": "user budgets", "type": "budget"}]),
        budgets_for=lambda project: {"tiers": {"free": limits[project]}, "default_tier": "free"},
    )
    firing = {
        project: {e.rule.name: e for e in engine.evaluate_all(NOW, project=project).evaluations}["user budgets"].firing
        for project in ("alpha", "beta")
    }
    assert firing == {"alpha": True, "beta": False}
