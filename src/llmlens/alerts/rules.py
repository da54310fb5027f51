"""Alert rule specs: typed, validated, parsed from `llmlens.toml` (`[[alerts]]`) and from the API.

The article's four rules (cost spike, error rate, p95 latency, prompt drift) are on by default; a
configured rule with the same name replaces a default, and `enabled = false` turns one off.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal, get_args

RuleType = Literal[
    "cost_spike", "error_rate", "latency_p95", "prompt_drift", "budget", "tool_success", "forecast_budget", "score"
]
RULE_TYPES: tuple[str, ...] = get_args(RuleType)
BaselineKind = Literal["static", "seasonal"]

# The name each rule type gives its threshold in TOML and JSON, with its default.
THRESHOLD_KEYS: dict[str, tuple[str, float]] = {
    "cost_spike": ("factor", 3.0),  # current window's spend > factor x the average window of the last 7 days
    "error_rate": ("max_error_rate", 0.05),  # errors / calls
    "latency_p95": ("sla_ms", 5000.0),  # p95 latency_ms
    "prompt_drift": ("max_change", 0.30),  # |avg prompt tokens - baseline| / baseline
    "budget": ("limit_usd", 0.0),  # spend of each user or feature in the period; 0 = [budgets] only
    "tool_success": ("max_drop", 0.20),  # baseline success rate - current success rate
    "forecast_budget": ("budget_usd", 0.0),  # projected month-end spend
    "score": ("min_mean", 0.0),  # mean of a score (0: off; `max_drop` against the baseline instead or too)
}

# Evaluation window (minutes) and minimum sample size per rule type.
_DEFAULT_WINDOW_MIN = {
    "cost_spike": 60,
    "error_rate": 15,
    "latency_p95": 15,
    "prompt_drift": 60,
    "budget": 0,
    "tool_success": 60,
    "forecast_budget": 0,
    "score": 60,
}
# An average of prompt tokens settles with fewer calls than an error rate or a p95 does.
_DEFAULT_MIN_SAMPLES = {
    "cost_spike": 10,
    "error_rate": 20,
    "latency_p95": 20,
    "prompt_drift": 15,
    "budget": 1,
    "tool_success": 10,
    "forecast_budget": 1,
    "score": 10,
}
SEASONAL_TYPES = frozenset({"cost_spike", "error_rate", "latency_p95", "prompt_drift"})
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.:-]{0,79}$")


class RuleError(ValueError):
    """A bad rule: the message names the rule and the field."""


@dataclass(frozen=True, slots=True)
class Scope:
    """Restricts a rule to matching calls; None matches everything."""

    model: str | None = None
    feature: str | None = None
    template: str | None = None  # template_id
    template_version: str | None = None
    environment: str | None = None
    user: str | None = None  # user_id
    tool: str | None = None  # tool_name (tool_success rules)

    def is_empty(self) -> bool:
        return all(v is None for v in asdict(self).values())

    def describe(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in asdict(self).items() if v is not None)


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """One alert rule. `threshold` means what THRESHOLD_KEYS says for its type."""

    name: str
    type: str
    threshold: float
    enabled: bool = True
    scope: Scope = field(default_factory=Scope)
    window_minutes: int = 60
    min_samples: int = 20
    baseline: str = "static"  # static | seasonal
    baseline_days: int = 7  # static baselines: the last N days before the window
    seasonal_weeks: int = 4  # seasonal baselines: the same hour of the week over N weeks
    z_threshold: float = 4.0  # seasonal: robust deviation score (median/MAD) to fire
    min_change: float = 0.5  # seasonal: also at least this relative change over the baseline median
    for_s: float = 0.0  # the condition must hold this long (pending) before firing
    cooldown_s: float = 900.0  # after resolving, stay quiet this long
    group_by: str = "template"  # prompt_drift: template | feature | none; budget: user | feature; score: too
    period: str = "month"  # budget: month | day
    limits: dict[str, float] = field(default_factory=dict)  # budget: USD per user, feature or tier name
    project: str | None = None  # only this project (default: every project)
    notify: tuple[str, ...] = ()  # notifier names (default: all)
    description: str = ""
    score: str | None = None  # score rules: the score's name
    max_drop: float = 0.0  # score rules: fire when the mean fell this much below its baseline (0: off)

    @property
    def threshold_key(self) -> str:
        return THRESHOLD_KEYS[self.type][0]

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            self.threshold_key: self.threshold,
            "enabled": self.enabled,
            "window_minutes": self.window_minutes,
            "min_samples": self.min_samples,
            "baseline": self.baseline,
            "baseline_days": self.baseline_days,
            "seasonal_weeks": self.seasonal_weeks,
            "z_threshold": self.z_threshold,
            "min_change": self.min_change,
            "for_s": self.for_s,
            "cooldown_s": self.cooldown_s,
            "description": self.description,
        }
        if self.type in ("prompt_drift", "budget", "score"):
            doc["group_by"] = self.group_by
        if self.type == "score":
            doc["score"] = self.score
            doc["max_drop"] = self.max_drop
        if self.type == "budget":
            doc["period"] = self.period
            doc["limits"] = dict(self.limits)
        if not self.scope.is_empty():
            doc["scope"] = {k: v for k, v in asdict(self.scope).items() if v is not None}
        if self.project:
            doc["project"] = self.project
        if self.notify:
            doc["notify"] = list(self.notify)
        return doc


_INT_FIELDS = ("window_minutes", "min_samples", "baseline_days", "seasonal_weeks")
_FLOAT_FIELDS = ("z_threshold", "min_change", "for_s", "cooldown_s", "max_drop")
_STR_FIELDS = ("group_by", "period", "description", "project", "score")
_KNOWN = {
    "name",
    "type",
    "threshold",
    "enabled",
    "scope",
    "baseline",
    "limits",
    "notify",
    *_INT_FIELDS,
    *_FLOAT_FIELDS,
    *_STR_FIELDS,
    *(key for key, _ in THRESHOLD_KEYS.values()),
    *Scope.__dataclass_fields__,
}


def _number(rule: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RuleError(f"alert rule {rule!r}: {key} must be a number, got {value!r}")
    return float(value)


def parse_rule(doc: Mapping[str, Any]) -> RuleSpec:
    """One rule from a TOML table or JSON object; RuleError names what is wrong."""
    name = doc.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise RuleError(f"alert rule name must be 1-80 letters, digits, spaces or _.:- , got {name!r}")
    kind = doc.get("type")
    if kind not in RULE_TYPES:
        raise RuleError(f"alert rule {name!r}: type must be one of {', '.join(RULE_TYPES)}, got {kind!r}")
    unknown = sorted(set(doc) - _KNOWN)
    if unknown:
        raise RuleError(f"alert rule {name!r}: unknown field(s) {', '.join(unknown)}")
    key, default = THRESHOLD_KEYS[kind]
    raw_threshold = doc.get(key, doc.get("threshold", default))
    values: dict[str, Any] = {
        "name": name,
        "type": kind,
        "threshold": _number(name, key, raw_threshold),
        "window_minutes": _DEFAULT_WINDOW_MIN[kind],
        "min_samples": _DEFAULT_MIN_SAMPLES[kind],
        "group_by": {"budget": "user", "score": "feature"}.get(kind, "template"),
    }
    if "enabled" in doc:
        if not isinstance(doc["enabled"], bool):
            raise RuleError(f"alert rule {name!r}: enabled must be true or false")
        values["enabled"] = doc["enabled"]
    for k in _INT_FIELDS:
        if k in doc:
            number = _number(name, k, doc[k])
            if number < 0 or number != int(number):
                raise RuleError(f"alert rule {name!r}: {k} must be a non-negative integer")
            values[k] = int(number)
    for k in _FLOAT_FIELDS:
        if k in doc:
            values[k] = _number(name, k, doc[k])
            if values[k] < 0:
                raise RuleError(f"alert rule {name!r}: {k} must not be negative")
    for k in _STR_FIELDS:
        if k in doc and doc[k] is not None:
            if not isinstance(doc[k], str):
                raise RuleError(f"alert rule {name!r}: {k} must be a string")
            values[k] = doc[k]
    baseline = doc.get("baseline", "static")
    if baseline not in ("static", "seasonal"):
        raise RuleError(f"alert rule {name!r}: baseline must be 'static' or 'seasonal', got {baseline!r}")
    if baseline == "seasonal" and kind not in SEASONAL_TYPES:
        raise RuleError(f"alert rule {name!r}: a seasonal baseline applies to {', '.join(sorted(SEASONAL_TYPES))}")
    values["baseline"] = baseline
    values["scope"] = _scope(name, doc)
    values["limits"] = _limits(name, doc.get("limits"))
    notify = doc.get("notify", ())
    if isinstance(notify, str):
        notify = (notify,)
    if not isinstance(notify, list | tuple) or not all(isinstance(n, str) for n in notify):
        raise RuleError(f"alert rule {name!r}: notify must be a list of notifier names")
    values["notify"] = tuple(notify)
    rule = RuleSpec(**values)
    _check(rule)
    return rule


def _scope(rule: str, doc: Mapping[str, Any]) -> Scope:
    raw = doc.get("scope", {})
    if not isinstance(raw, Mapping):
        raise RuleError(f"alert rule {rule!r}: scope must be a table such as {{feature = 'chat'}}")
    merged = {**raw, **{k: doc[k] for k in Scope.__dataclass_fields__ if k in doc}}
    unknown = sorted(set(merged) - set(Scope.__dataclass_fields__))
    if unknown:
        raise RuleError(f"alert rule {rule!r}: unknown scope field(s) {', '.join(unknown)}")
    for k, v in merged.items():
        if v is not None and not isinstance(v, str):
            raise RuleError(f"alert rule {rule!r}: scope {k} must be a string")
    return Scope(**merged)


def _limits(rule: str, raw: Any) -> dict[str, float]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise RuleError(f"alert rule {rule!r}: limits must be a table of name = USD")
    return {str(k): _number(rule, f"limits.{k}", v) for k, v in raw.items()}


def _check(rule: RuleSpec) -> None:
    if rule.type in ("cost_spike", "error_rate", "latency_p95", "prompt_drift", "tool_success"):
        if rule.window_minutes < 1:
            raise RuleError(f"alert rule {rule.name!r}: window_minutes must be at least 1")
        if rule.threshold <= 0:
            raise RuleError(f"alert rule {rule.name!r}: {rule.threshold_key} must be positive")
    if rule.type == "prompt_drift" and rule.group_by not in ("template", "feature", "none"):
        raise RuleError(f"alert rule {rule.name!r}: group_by must be template, feature or none")
    if rule.type == "forecast_budget" and rule.threshold <= 0:
        raise RuleError(f"alert rule {rule.name!r}: budget_usd must be a positive monthly budget in USD")
    if rule.type == "score":
        if not rule.score:
            raise RuleError(f"alert rule {rule.name!r}: score must name the score to watch, e.g. helpfulness")
        if rule.threshold <= 0 and rule.max_drop <= 0:
            raise RuleError(
                f"alert rule {rule.name!r}: give min_mean (fire below it), max_drop (fire on a drop against the "
                "baseline), or both"
            )
        if rule.group_by not in ("feature", "template", "none"):
            raise RuleError(f"alert rule {rule.name!r}: group_by must be feature, template or none")
        if rule.window_minutes < 1:
            raise RuleError(f"alert rule {rule.name!r}: window_minutes must be at least 1")
    if rule.type == "budget":
        if rule.group_by not in ("user", "feature"):
            raise RuleError(f"alert rule {rule.name!r}: group_by must be user or feature")
        if rule.period not in ("month", "day"):
            raise RuleError(f"alert rule {rule.name!r}: period must be month or day")


DEFAULT_RULES: tuple[RuleSpec, ...] = (
    parse_rule(
        {
            "name": "cost spike",
            "type": "cost_spike",
            "description": "Hourly spend over 3x the hourly average of the last 7 days.",
        }
    ),
    parse_rule({"name": "error rate", "type": "error_rate", "description": "More than 5% of LLM calls failed."}),
    parse_rule(
        {"name": "p95 latency", "type": "latency_p95", "description": "p95 latency of LLM calls over the 5 s SLA."}
    ),
    parse_rule(
        {
            "name": "prompt drift",
            "type": "prompt_drift",
            "description": "Average prompt tokens of a template changed more than 30% against the last 7 days.",
        }
    ),
)


def budget_limit(
    rule: RuleSpec, budgets: Mapping[str, Any], name: str, tier_hint: str | None
) -> tuple[float | None, str | None]:
    """(USD limit, tier) of one user or feature: the rule's `limits`/`limit_usd`, else `[budgets]`.

    `[budgets]` is the gateway's table: `tiers` (USD per user by tier), `default_tier`, `users`
    (user -> tier), `user_limits` (user -> USD) and `features` (feature -> USD), all per month.
    """
    if name in rule.limits:
        return rule.limits[name], None
    if rule.group_by == "feature":
        features = budgets.get("features") or {}
        found = features.get(name) if isinstance(features, Mapping) else None
        if found is not None:
            return float(found), None
        return (rule.threshold or None), None
    users = budgets.get("users") or {}
    tiers = budgets.get("tiers") or {}
    user_limits = budgets.get("user_limits") or {}
    tier = users.get(name) if isinstance(users, Mapping) else None
    known_tiers = set(tiers) if isinstance(tiers, Mapping) else set()
    if tier is None and tier_hint is not None and (tier_hint in known_tiers or tier_hint in rule.limits):
        tier = tier_hint
    tier = tier or budgets.get("default_tier")
    if isinstance(user_limits, Mapping) and name in user_limits:
        return float(user_limits[name]), tier
    if tier is not None and tier in rule.limits:
        return rule.limits[tier], tier
    if tier is not None and isinstance(tiers, Mapping) and tier in tiers:
        return float(tiers[tier]), tier
    return (rule.threshold or None), tier


@dataclass(slots=True)
class RuleLayers:
    """Rules changed through the API: name -> rule, or None where the API deleted (hid) one."""

    server: dict[str, RuleSpec | None] = field(default_factory=dict)  # a server admin's, for every project
    projects: dict[str, dict[str, RuleSpec | None]] = field(default_factory=dict)  # each project's own


def effective_rules(
    configured: Iterable[Mapping[str, Any]],
    overrides: Mapping[str, RuleSpec | None] | None = None,
) -> list[RuleSpec]:
    """The server-wide rules: defaults, then the config file's rules (same name replaces), then a server
    admin's API changes (None deletes)."""
    rules: dict[str, RuleSpec] = {r.name: r for r in DEFAULT_RULES}
    for doc in configured:
        parsed = parse_rule(doc)
        rules[parsed.name] = parsed
    for name, override in (overrides or {}).items():
        if override is None:
            rules.pop(name, None)
        else:
            rules[name] = override
    return list(rules.values())


def project_rules(server_wide: Iterable[RuleSpec], own: Mapping[str, RuleSpec | None], project: str) -> list[RuleSpec]:
    """The rules of one project: the server-wide rules meant for every project or for this one, then the
    project's own API changes: a rule of the same name replaces the server-wide one here only, None hides
    it here only. A project's own rule applies to that project whatever its body said."""
    rules = {r.name: r for r in server_wide if r.project in (None, project)}
    for name, override in own.items():
        if override is None:
            rules.pop(name, None)
        else:
            rules[name] = replace(override, project=project)
    return list(rules.values())


def with_enabled(rule: RuleSpec, enabled: bool) -> RuleSpec:
    return replace(rule, enabled=enabled)
