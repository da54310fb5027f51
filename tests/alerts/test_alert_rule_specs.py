"""Rule specs from TOML/JSON: defaults, validation that names the field, overrides; the public names."""

from __future__ import annotations

from pathlib import Path

import pytest

import llmlens.alerts
from llmlens.alerts import (
    DEFAULT_RULES,
    RuleError,
    effective_rules,
    parse_notifiers,
    parse_rule,
    sign,
    verify_signature,
)
from llmlens.alerts.notify import NotifierError
from llmlens.alerts.rules import budget_limit
from llmlens.settings import load_settings


def test_public_names() -> None:
    assert llmlens.alerts.__all__ == [
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


def test_the_articles_four_rules_are_on_by_default() -> None:
    assert [(r.name, r.type, r.threshold, r.enabled) for r in DEFAULT_RULES] == [
        ("cost spike", "cost_spike", 3.0, True),
        ("error rate", "error_rate", 0.05, True),
        ("p95 latency", "latency_p95", 5000.0, True),
        ("prompt drift", "prompt_drift", 0.30, True),
    ]


def test_toml_rules_replace_defaults_by_name(tmp_path: Path) -> None:
    config = tmp_path / "llmlens.toml"
    config.write_text(
        """
[[alerts]]
name = "cost spike"
type = "cost_spike"
factor = 5.0
baseline = "seasonal"
seasonal_weeks = 6

[[alerts]]
name = "p95 latency"
type = "latency_p95"
enabled = false

[[alerts]]
name = "chat budget"
type = "budget"
group_by = "feature"
limits = {chat = 100.0}
scope = {environment = "production"}
"""
    )
    settings = load_settings(config, env={})
    rules = {r.name: r for r in effective_rules(settings.alerts)}
    assert rules["cost spike"].threshold == 5.0 and rules["cost spike"].baseline == "seasonal"
    assert rules["cost spike"].seasonal_weeks == 6
    assert not rules["p95 latency"].enabled
    assert rules["chat budget"].scope.environment == "production"
    assert rules["chat budget"].limits == {"chat": 100.0}
    assert rules["error rate"].threshold == 0.05
    # The JSON form round-trips.
    assert parse_rule(rules["chat budget"].to_dict()) == rules["chat budget"]
    assert parse_rule(rules["cost spike"].to_dict()) == rules["cost spike"]


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"name": "x", "type": "spike"}, "type must be one of"),
        ({"name": "", "type": "cost_spike"}, "name"),
        ({"name": "x", "type": "cost_spike", "factor": "3"}, "factor must be a number"),
        ({"name": "x", "type": "cost_spike", "colour": "red"}, "unknown field(s) colour"),
        ({"name": "x", "type": "cost_spike", "scope": {"team": "a"}}, "unknown scope field(s) team"),
        ({"name": "x", "type": "budget", "baseline": "seasonal"}, "seasonal baseline applies to"),
        ({"name": "x", "type": "error_rate", "window_minutes": 0}, "window_minutes must be at least 1"),
        ({"name": "x", "type": "prompt_drift", "group_by": "user"}, "group_by must be"),
        ({"name": "x", "type": "error_rate", "min_samples": -1}, "min_samples must be a non-negative integer"),
    ],
)
def test_bad_rules_name_the_field(doc: dict[str, object], message: str) -> None:
    with pytest.raises(RuleError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_rule(doc)


def test_budget_limits_follow_the_gateway_budgets_table() -> None:
    budgets = {
        "tiers": {"free": 1.0, "pro": 50.0},
        "default_tier": "free",
        "users": {"user-vip": "pro"},
        "user_limits": {"user-huge": 500.0},
        "features": {"chat": 200.0},
    }
    users = parse_rule({"name": "u", "type": "budget"})
    assert budget_limit(users, budgets, "user-vip", None) == (50.0, "pro")
    assert budget_limit(users, budgets, "user-x", "pro") == (50.0, "pro")
    assert budget_limit(users, budgets, "user-x", None) == (1.0, "free")
    assert budget_limit(users, budgets, "user-huge", None) == (500.0, "free")
    features = parse_rule({"name": "f", "type": "budget", "group_by": "feature"})
    assert budget_limit(features, budgets, "chat", None) == (200.0, None)
    assert budget_limit(features, budgets, "other", None) == (None, None)
    own = parse_rule({"name": "o", "type": "budget", "limit_usd": 7.0})
    assert budget_limit(own, {}, "anyone", None) == (7.0, None)


def test_notifiers() -> None:
    assert [n.type for n in parse_notifiers([])] == ["log"]
    hooks = parse_notifiers(
        [
            {"type": "webhook", "url": "https://x.test/h", "secret": "k"},
            {"type": "slack", "url": "https://hooks.slack.com/a"},
        ]
    )
    assert [(n.name, n.events) for n in hooks] == [
        ("webhook", ("firing", "resolved")),
        ("slack-1", ("firing", "resolved")),
    ]
    with pytest.raises(NotifierError, match="url must be"):
        parse_notifiers([{"type": "webhook"}])
    with pytest.raises(NotifierError, match="type must be one of"):
        parse_notifiers([{"type": "pager"}])
    body = b'{"a":1}'
    assert sign(body, "k") == "sha256=" + __import__("hmac").new(b"k", body, "sha256").hexdigest()
    assert verify_signature(body, "k", sign(body, "k")) and not verify_signature(body, "other", sign(body, "k"))
