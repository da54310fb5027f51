"""Each anomaly over 8 days of steady traffic fires the right rule with the right attribution; the
baseline alone fires nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from tests.alerts._traffic import Traffic, new_store

from llmlens.alerts import AlertEngine, Evaluation
from llmlens.settings import Settings
from llmlens.store import Store

NOW = datetime(2026, 3, 18, 14, 30)  # a Wednesday afternoon

EXTRA_RULES = [
    {"name": "search tool", "type": "tool_success"},
    {"name": "free tier budget", "type": "budget", "group_by": "user", "limits": {"free": 1000.0}},
    {"name": "seasonal spend", "type": "cost_spike", "baseline": "seasonal"},
    {"name": "seasonal errors", "type": "error_rate", "baseline": "seasonal"},
]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = new_store(tmp_path / "data")
    yield store
    store.close()


def _baseline(store: Store, **kwargs: object) -> Traffic:
    traffic = Traffic()
    traffic.baseline(NOW, **kwargs)  # type: ignore[arg-type]
    return traffic


def _engine(store: Store, rules: list[dict[str, object]] | None = None) -> AlertEngine:
    return AlertEngine(store, Settings(alerts=EXTRA_RULES + (rules or []), public_url="https://lens.example"))


def _by_rule(engine: AlertEngine) -> dict[str, Evaluation]:
    result = engine.evaluate_all(NOW)
    assert result.errors == []
    return {e.rule.name: e for e in result.evaluations}


def _firing(engine: AlertEngine) -> set[str]:
    return {name for name, e in _by_rule(engine).items() if e.firing}


def test_baseline_alone_fires_nothing(store: Store) -> None:
    _baseline(store).write(store)
    engine = _engine(store)
    evaluations = _by_rule(engine)
    assert set(evaluations) >= {
        "cost spike",
        "error rate",
        "p95 latency",
        "prompt drift",
        *(r["name"] for r in EXTRA_RULES),
    }
    assert [e.message for e in evaluations.values() if e.firing] == []
    # The rules really measured something: enough samples, sensible values.
    assert evaluations["error rate"].enough_samples and evaluations["error rate"].value is not None
    assert evaluations["error rate"].value < 0.05
    assert evaluations["cost spike"].enough_samples
    assert evaluations["p95 latency"].value is not None and evaluations["p95 latency"].value < 2000
    assert engine.run_once(NOW).transitions == []


def test_cost_spike_names_the_user_who_drove_it(store: Store) -> None:
    traffic = _baseline(store)
    # One user, in the last hour, spends about 3x what everyone spends in a usual hour.
    for i in range(30):
        traffic.llm(NOW - timedelta(minutes=55) + timedelta(minutes=i * 1.8), user_id="user-whale", cost_usd=0.10)
    traffic.write(store)
    evaluations = _by_rule(_engine(store))
    spike = evaluations["cost spike"]
    assert spike.firing, spike.message
    assert spike.value is not None and spike.threshold is not None
    assert spike.value > 3.5 * spike.threshold / 3  # about 4x the usual hour
    users = spike.attribution["drivers"]["user"]
    assert users[0]["name"] == "user-whale"
    assert users[0]["share"] > 0.9
    assert users[0]["excess_usd"] == pytest.approx(3.0, rel=0.05)
    assert spike.attribution["top"][0] == {"dimension": "user", **users[0]}
    assert "user user-whale" in spike.message
    assert "user_id=user-whale" in spike.links["traces"]
    assert spike.links["traces"].startswith("https://lens.example/traces?")
    assert len(spike.links["examples"]) == 5
    # The learning baseline sees it too: same hour of the day over the last week.
    assert evaluations["seasonal spend"].firing
    assert evaluations["seasonal spend"].attribution["drivers"]["user"][0]["name"] == "user-whale"
    assert _firing(_engine(store)) == {"cost spike", "seasonal spend"}


def test_error_burst_names_error_types_and_models(store: Store) -> None:
    traffic = _baseline(store)
    for i in range(24):
        traffic.llm(
            NOW - timedelta(minutes=12) + timedelta(seconds=i * 25),
            model="claude-3-5-haiku-20241022",
            status="error",
            error_type="rate_limit" if i % 4 else "timeout",
            error_message="429 Too Many Requests" if i % 4 else "timed out",
        )
    traffic.write(store)
    evaluations = _by_rule(_engine(store))
    errors = evaluations["error rate"]
    assert errors.firing, errors.message
    types = errors.attribution["by_error_type"]
    assert types[0]["name"] == "rate_limit" and types[0]["share"] > 0.6
    assert {t["name"] for t in types} == {"rate_limit", "timeout"}
    assert errors.attribution["by_model"][0]["name"] == "claude-3-5-haiku-20241022"
    assert "rate_limit" in errors.message and "claude-3-5-haiku-20241022" in errors.message
    assert "status=error" in errors.links["traces"]
    assert errors.links["examples"]
    assert evaluations["seasonal errors"].firing
    assert _firing(_engine(store)) == {"error rate", "seasonal errors"}


def test_slow_model_breaks_the_latency_sla(store: Store) -> None:
    traffic = _baseline(store)
    for i in range(30):
        traffic.llm(NOW - timedelta(minutes=14) + timedelta(seconds=i * 27), model="gpt-4o", latency_ms=9000.0 + i)
    traffic.write(store)
    evaluations = _by_rule(_engine(store))
    latency = evaluations["p95 latency"]
    assert latency.firing, latency.message
    assert latency.value is not None and latency.value > 5000
    assert latency.attribution["by_model"][0]["name"] == "gpt-4o"
    assert latency.attribution["by_model"][0]["p95_ms"] > 9000
    assert "model=gpt-4o" in latency.links["traces"]
    assert _firing(_engine(store)) == {"p95 latency"}


def test_template_change_doubling_prompts_is_drift(store: Store) -> None:
    traffic = Traffic()
    traffic.baseline(NOW, until=NOW - timedelta(minutes=60))
    t = NOW - timedelta(minutes=60)
    while t < NOW:
        traffic.llm(t, template_version="v2", prompt_tokens=int(traffic.rng.uniform(1900, 2100)))
        t += timedelta(seconds=36)
    traffic.write(store)
    evaluations = _by_rule(_engine(store))
    drift = evaluations["prompt drift"]
    assert drift.firing, drift.message
    assert drift.value == pytest.approx(1.0, abs=0.1)
    lead = drift.attribution["versions"][0]
    assert (lead["template"], lead["version"], lead["new"]) == ("answer", "v2", True)
    assert lead["change"] == pytest.approx(1.0, abs=0.1)
    assert "answer@v2" in drift.message
    assert drift.links["prompt"].startswith("https://lens.example/prompts/answer?")
    assert "a=v1" in drift.links["prompt"] and "b=v2" in drift.links["prompt"]
    assert _firing(_engine(store)) == {"prompt drift"}


def test_no_alert_on_a_handful_of_calls(store: Store) -> None:
    traffic = _baseline(store)
    for i in range(3):
        traffic.llm(NOW - timedelta(minutes=5 - i), feature="beta", status="error", error_type="server_error")
    traffic.write(store)
    engine = _engine(store, [{"name": "beta errors", "type": "error_rate", "scope": {"feature": "beta"}}])
    beta = _by_rule(engine)["beta errors"]
    assert beta.value == 1.0 and beta.sample_size == 3
    assert not beta.enough_samples and not beta.firing


def test_tool_success_drop_names_the_tool(store: Store) -> None:
    traffic = _baseline(store)
    for i in range(30):
        traffic.tool(NOW - timedelta(minutes=50) + timedelta(minutes=i * 1.5), success=i % 3 == 0)
    traffic.write(store)
    tools = _by_rule(_engine(store))["search tool"]
    assert tools.firing, tools.message
    assert tools.attribution["tools"][0]["tool"] == "search"
    assert tools.attribution["tools"][0]["top_errors"][0]["error"] == "backend returned 503"
    assert "search" in tools.message


def test_budget_by_tier_names_the_user(store: Store) -> None:
    traffic = _baseline(store)
    traffic.llm(NOW - timedelta(hours=2), user_id="user-pro-big", cost_usd=60.0, metadata={"tier": "pro"})
    traffic.llm(NOW - timedelta(hours=2), user_id="user-pro-small", cost_usd=5.0, metadata={"tier": "pro"})
    traffic.write(store)
    settings = Settings(
        alerts=[{"name": "user budgets", "type": "budget"}],
        budgets={"tiers": {"free": 100.0, "pro": 50.0}},
    )
    budget = {e.rule.name: e for e in AlertEngine(store, settings).evaluate_all(NOW).evaluations}["user budgets"]
    assert budget.firing, budget.message
    assert [o["name"] for o in budget.attribution["over_budget"]] == ["user-pro-big"]
    assert budget.attribution["over_budget"][0]["tier"] == "pro"


def test_scope_limits_a_rule(store: Store) -> None:
    traffic = _baseline(store)
    for i in range(30):
        traffic.llm(NOW - timedelta(minutes=14) + timedelta(seconds=i * 27), model="gpt-4o", latency_ms=9000.0)
    traffic.write(store)
    engine = _engine(
        store,
        [
            {"name": "haiku latency", "type": "latency_p95", "scope": {"model": "claude-3-5-haiku-20241022"}},
            {"name": "4o latency", "type": "latency_p95", "model": "gpt-4o", "sla_ms": 10000},
        ],
    )
    evaluations = _by_rule(engine)
    assert not evaluations["haiku latency"].firing
    assert not evaluations["4o latency"].firing  # under its own 10 s SLA
    assert evaluations["p95 latency"].firing


MONDAY = datetime(2026, 3, 16, 10, 30)


def _monday_peaks(t: datetime) -> float:
    return 4.0 if t.weekday() == 0 and 9 <= t.hour < 11 else 1.0


def test_a_learning_baseline_knows_the_monday_morning_peak(store: Store) -> None:
    traffic = Traffic()
    traffic.baseline(MONDAY, days=29, per_hour=40, rate_factor=_monday_peaks)
    traffic.write(store)
    rules = [{"name": "learning spend", "type": "cost_spike", "baseline": "seasonal"}]
    engine = AlertEngine(store, Settings(alerts=rules))
    evaluations = {e.rule.name: e for e in engine.evaluate_all(MONDAY).evaluations}
    # The article's static rule sees 4x the weekly average: a false alarm every Monday.
    assert evaluations["cost spike"].firing
    learning = evaluations["learning spend"]
    assert not learning.firing, learning.message
    assert learning.baseline["pattern"] == "weekly" and learning.baseline["windows"] == 4
    assert learning.value == pytest.approx(learning.baseline["median"], rel=0.2)

    # A real spike on top of the Monday peak still fires, with its driver.
    more = Traffic(seed=99)
    for i in range(30):
        more.llm(MONDAY - timedelta(minutes=55) + timedelta(minutes=i * 1.8), user_id="user-whale", cost_usd=0.15)
    more.write(store)
    learning = {e.rule.name: e for e in engine.evaluate_all(MONDAY).evaluations}["learning spend"]
    assert learning.firing, learning.message
    assert learning.baseline["score"] > 4
    assert learning.attribution["drivers"]["user"][0]["name"] == "user-whale"
