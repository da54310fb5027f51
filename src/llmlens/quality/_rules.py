"""Online evaluator rules: an evaluator × a filter of calls × a sample rate × a daily budget, per project.

From `[[evaluators]]` in llmlens.toml (every project, or the one a rule names) and from the API and the
UI (the caller's project only). Parsing names the rule and the field of every mistake.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ._evaluators import Evaluator, EvaluatorSpecError, build_evaluator, normalize_spec
from ._judge_templates import BUILTIN_TEMPLATES

RULE_KINDS = ("llm", "retrieval")
FILTER_FIELDS = ("feature", "model", "template", "template_version", "kind", "environment")
DEFAULT_DAILY_BUDGET_USD = 1.0
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.:-]{0,79}$")
_KNOWN = {
    "name",
    "evaluator",
    "filter",
    "sample_rate",
    "daily_budget_usd",
    "enabled",
    "project",
    "score_name",
    "description",
    *FILTER_FIELDS,
}


class RuleError(ValueError):
    """A rule that cannot be used: the message names the rule and the field."""


@dataclass(frozen=True, slots=True)
class RuleFilter:
    """Which calls a rule looks at; None matches any. `kind` is llm (default) or retrieval."""

    feature: str | None = None
    model: str | None = None
    template: str | None = None  # template_id
    template_version: str | None = None
    kind: str = "llm"
    environment: str | None = None

    def to_dict(self) -> dict[str, str]:
        return {k: v for k in FILTER_FIELDS if (v := getattr(self, k)) is not None}

    def sql(self) -> tuple[str, list[Any]]:
        """` AND column = ?` per set field (over `store.spans` columns)."""
        columns = {"template": "template_id"}
        parts: list[str] = []
        params: list[Any] = []
        for name in FILTER_FIELDS:
            value = getattr(self, name)
            if value is None:
                continue
            parts.append(f" AND {columns.get(name, name)} = ?")
            params.append(value)
        return "".join(parts), params


@dataclass(frozen=True, slots=True)
class EvaluatorRule:
    name: str
    evaluator: dict[str, Any]  # the spec, in table form
    filter: RuleFilter = field(default_factory=RuleFilter)
    sample_rate: float = 1.0
    daily_budget_usd: float = DEFAULT_DAILY_BUDGET_USD  # judge spend per UTC day; 0: no limit
    enabled: bool = True
    project: str | None = None  # None: every project (config rules only)
    score_name: str | None = None
    description: str = ""
    source: str = "config"  # config | api

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "name": self.name,
            "evaluator": self.evaluator,
            "filter": self.filter.to_dict(),
            "sample_rate": self.sample_rate,
            "daily_budget_usd": self.daily_budget_usd,
            "enabled": self.enabled,
            "source": self.source,
        }
        if self.project is not None:
            doc["project"] = self.project
        if self.score_name:
            doc["score_name"] = self.score_name
        if self.description:
            doc["description"] = self.description
        return doc

    def build(
        self, templates: Collection[str] = BUILTIN_TEMPLATES, allowed_functions: Collection[str] | None = None
    ) -> Evaluator:
        try:
            return build_evaluator(
                self.evaluator,
                known_templates=templates,
                allowed_functions=allowed_functions,
                score_name=self.score_name,
            )
        except EvaluatorSpecError as exc:
            raise RuleError(f"evaluator rule {self.name!r}: evaluator: {exc}") from None


def _fraction(rule: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RuleError(f"evaluator rule {rule!r}: {key} must be a number, got {value!r}")
    return float(value)


def parse_rule(
    doc: Mapping[str, Any],
    *,
    source: str = "config",
    templates: Collection[str] = BUILTIN_TEMPLATES,
    allowed_functions: Collection[str] | None = None,
) -> EvaluatorRule:
    """One rule from a TOML table or a JSON object; RuleError names what is wrong. The evaluator is built
    once here, so a rule that cannot run is refused when it is made, not when it first meets a call."""
    if not isinstance(doc, Mapping):
        raise RuleError("an evaluator rule is a table (TOML) or an object (JSON)")
    name = doc.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise RuleError(f"evaluator rule name must be 1-80 letters, digits, spaces or _.:- , got {name!r}")
    unknown = sorted(set(doc) - _KNOWN)
    if unknown:
        raise RuleError(f"evaluator rule {name!r}: unknown field(s) {', '.join(unknown)}")
    if "evaluator" not in doc:
        raise RuleError(f"evaluator rule {name!r}: evaluator is required (e.g. helpfulness, json_valid, rag)")
    try:
        spec = normalize_spec(doc["evaluator"], templates)
    except EvaluatorSpecError as exc:
        raise RuleError(f"evaluator rule {name!r}: evaluator: {exc}") from None
    values: dict[str, Any] = {"name": name, "evaluator": spec, "source": source}
    values["filter"] = _filter(name, doc)
    if "sample_rate" in doc:
        rate = _fraction(name, "sample_rate", doc["sample_rate"])
        if not 0.0 < rate <= 1.0:
            raise RuleError(f"evaluator rule {name!r}: sample_rate must be above 0 and at most 1, got {rate:g}")
        values["sample_rate"] = rate
    if "daily_budget_usd" in doc:
        budget = _fraction(name, "daily_budget_usd", doc["daily_budget_usd"])
        if budget < 0:
            raise RuleError(f"evaluator rule {name!r}: daily_budget_usd must not be negative")
        values["daily_budget_usd"] = budget
    if "enabled" in doc:
        if not isinstance(doc["enabled"], bool):
            raise RuleError(f"evaluator rule {name!r}: enabled must be true or false")
        values["enabled"] = doc["enabled"]
    for key in ("project", "score_name", "description"):
        if doc.get(key) is not None:
            if not isinstance(doc[key], str):
                raise RuleError(f"evaluator rule {name!r}: {key} must be a string")
            values[key] = doc[key]
    rule = EvaluatorRule(**values)
    evaluator = rule.build(templates, allowed_functions)
    if rule.filter.kind not in evaluator.kinds:
        raise RuleError(
            f"evaluator rule {name!r}: filter.kind {rule.filter.kind!r} does not suit evaluator "
            f"{evaluator.name} (it judges {', '.join(sorted(evaluator.kinds))} spans)"
        )
    return rule


def _filter(rule: str, doc: Mapping[str, Any]) -> RuleFilter:
    raw = doc.get("filter", {})
    if not isinstance(raw, Mapping):
        raise RuleError(f"evaluator rule {rule!r}: filter must be a table such as {{feature = 'chat'}}")
    merged = {**raw, **{k: doc[k] for k in FILTER_FIELDS if k in doc}}
    unknown = sorted(set(merged) - set(FILTER_FIELDS))
    if unknown:
        raise RuleError(f"evaluator rule {rule!r}: unknown filter field(s) {', '.join(unknown)}")
    for key, value in merged.items():
        if value is not None and (not isinstance(value, str) or not value):
            raise RuleError(f"evaluator rule {rule!r}: filter.{key} must be a non-empty string")
    kind = merged.get("kind") or "llm"
    if kind not in RULE_KINDS:
        raise RuleError(f"evaluator rule {rule!r}: filter.kind must be llm or retrieval, got {kind!r}")
    merged["kind"] = kind
    return RuleFilter(**merged)


def config_rules(raw: list[dict[str, Any]]) -> list[EvaluatorRule]:
    """The `[[evaluators]]` rules; RuleError on the first bad one, or two of one name and project."""
    out: list[EvaluatorRule] = []
    seen: set[tuple[str | None, str]] = set()
    for doc in raw:
        rule = parse_rule(doc, source="config")
        key = (rule.project, rule.name)
        if key in seen:
            raise RuleError(f"evaluator rule {rule.name!r} is defined twice in [[evaluators]]")
        seen.add(key)
        out.append(rule)
    return out


def for_project(rule: EvaluatorRule, project: str) -> EvaluatorRule:
    return replace(rule, project=project)
