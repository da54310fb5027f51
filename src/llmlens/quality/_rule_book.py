"""Where evaluator rules and judge templates live: the config file's, and each project's own in the shared
settings store (`llmlens.state`: SQLite in the data folder, or the ClickHouse the servers share).

A project's rule of the same name as a config rule replaces it in that project only (so `enabled = false`
turns a config rule off there); a project's template of a built-in name replaces its wording there only.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import replace
from typing import Any

from llmlens.state import SettingsSnapshot, SharedSettings

from ._judge import JudgeSettings
from ._judge_templates import BUILTIN_TEMPLATES, PLACEHOLDERS, JudgeTemplate, unknown_placeholders
from ._rules import EvaluatorRule, RuleError, for_project, parse_rule

RULE_KIND = "evaluator_rule"
TEMPLATE_KIND = "judge_template"
_TEMPLATE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,59}$")
_MAX_TEMPLATE_CHARS = 20_000


class TemplateError(ValueError):
    """A template that cannot be used; names the field."""


def template_from_text(
    name: str,
    text: str,
    *,
    base: JudgeTemplate | None = None,
    score_name: str | None = None,
    higher_is_better: bool | None = None,
    description: str | None = None,
) -> JudgeTemplate:
    """A user's template: the built-in of that name with new wording, or a new one (its placeholders say
    what it needs)."""
    if not _TEMPLATE_NAME.match(name):
        raise TemplateError(f"template name must be lower-case letters, digits and _ (1-60), got {name!r}")
    if not isinstance(text, str) or not text.strip():
        raise TemplateError("text must be the template's prompt, with placeholders such as {{answer}}")
    if len(text) > _MAX_TEMPLATE_CHARS:
        raise TemplateError(f"text is longer than {_MAX_TEMPLATE_CHARS} characters")
    unknown = unknown_placeholders(text)
    if unknown:
        raise TemplateError(f"unknown placeholder(s) {unknown}; use {', '.join(PLACEHOLDERS)}")
    used = JudgeTemplate(name, name, "", text).placeholders()
    if base is not None:
        missing = sorted(set(base.needs) - used - ({"context"} if base.per_chunk else set()))
        if missing:
            raise TemplateError(f"the {name} template must keep its placeholder(s) {missing}")
        return replace(
            base,
            text=text,
            builtin=False,
            description=description or base.description,
            higher_is_better=base.higher_is_better if higher_is_better is None else higher_is_better,
        )
    if "answer" not in used and "chunk" not in used:
        raise TemplateError("a judge template must show the judge {{answer}} (or {{chunk}})")
    per_chunk = "chunk" in used
    needs: tuple[str, ...] = tuple(p for p in ("question", "answer", "reference", "system_prompt") if p in used)
    if per_chunk or "context" in used:
        needs += ("context",)
    return JudgeTemplate(
        name,
        score_name or name,
        description or "a project's own judge",
        text,
        needs=needs,
        per_chunk=per_chunk,
        higher_is_better=True if higher_is_better is None else higher_is_better,
        builtin=False,
    )


def _stored_template(name: str, value: Any) -> JudgeTemplate | None:
    if not isinstance(value, Mapping):
        return None
    try:
        return template_from_text(
            name,
            str(value.get("text", "")),
            base=BUILTIN_TEMPLATES.get(name),
            score_name=value.get("score_name"),
            higher_is_better=value.get("higher_is_better"),
            description=value.get("description"),
        )
    except TemplateError:
        return None  # written by another version of llmlens: the built-in (if any) stands


class RuleBook:
    """Rules and templates of every project; reads of the shared store are cached briefly (`cache_ttl_s`)."""

    def __init__(
        self,
        configured: list[EvaluatorRule],
        shared: SharedSettings,
        judge: JudgeSettings,
        allowed_functions: Collection[str],
    ) -> None:
        self.configured = configured
        self.shared = shared
        self.judge = judge
        self.allowed_functions = list(allowed_functions)
        self._rules = SettingsSnapshot(shared, RULE_KIND)
        self._templates = SettingsSnapshot(shared, TEMPLATE_KIND)
        self._global_templates = self._config_templates()

    def _config_templates(self) -> dict[str, JudgeTemplate]:
        out = dict(BUILTIN_TEMPLATES)
        for name, text in self.judge.templates.items():
            try:
                out[name] = template_from_text(name, text, base=BUILTIN_TEMPLATES.get(name))
            except TemplateError as exc:
                raise RuleError(f"judge.templates.{name}: {exc}") from None
        return out

    # -- templates ----------------------------------------------------------------------------

    def templates(self, project: str) -> dict[str, JudgeTemplate]:
        out = dict(self._global_templates)
        for (owner, name), setting in self._templates.records().items():
            if owner == project:
                found = _stored_template(name, setting.value)
                if found is not None:
                    out[name] = found
        return out

    def put_template(self, project: str, name: str, doc: Mapping[str, Any]) -> JudgeTemplate:
        template = template_from_text(
            name,
            doc.get("text"),  # type: ignore[arg-type]
            base=self._global_templates.get(name),
            score_name=doc.get("score_name") if isinstance(doc.get("score_name"), str) else None,
            higher_is_better=doc.get("higher_is_better") if isinstance(doc.get("higher_is_better"), bool) else None,
            description=doc.get("description") if isinstance(doc.get("description"), str) else None,
        )
        value = {"text": template.text, "higher_is_better": template.higher_is_better}
        if template.score_name != name:
            value["score_name"] = template.score_name
        if template.description:
            value["description"] = template.description
        self._templates.put(project, name, value)
        return template

    def delete_template(self, project: str, name: str) -> bool:
        return self._templates.delete(project, name)

    # -- rules --------------------------------------------------------------------------------

    def _own(self, project: str) -> dict[str, EvaluatorRule]:
        templates = self.templates(project)
        out: dict[str, EvaluatorRule] = {}
        for (owner, name), setting in self._rules.records().items():
            if owner != project or not isinstance(setting.value, Mapping):
                continue
            try:
                rule = parse_rule(
                    setting.value, source="api", templates=templates, allowed_functions=self.allowed_functions
                )
            except RuleError:
                continue  # a template it named was deleted since: the rule stays listed by the API as broken
            out[name] = for_project(rule, project)
        return out

    def rules(self, project: str) -> list[EvaluatorRule]:
        """The project's rules: config rules for every project or this one, then its own (same name replaces)."""
        found = {r.name: for_project(r, project) for r in self.configured if r.project in (None, project)}
        found.update(self._own(project))
        return list(found.values())

    def rule(self, project: str, name: str) -> EvaluatorRule | None:
        return next((r for r in self.rules(project) if r.name == name), None)

    def broken(self, project: str) -> list[dict[str, Any]]:
        """Stored rules of the project that no longer parse (their template was deleted): shown, not run."""
        templates = self.templates(project)
        out = []
        for (owner, name), setting in self._rules.records().items():
            if owner != project:
                continue
            try:
                parse_rule(setting.value, source="api", templates=templates, allowed_functions=self.allowed_functions)
            except RuleError as exc:
                out.append({"name": name, "error": str(exc)})
        return out

    def put_rule(self, project: str, doc: Mapping[str, Any]) -> EvaluatorRule:
        """Create or replace one of the project's rules; RuleError names what is wrong."""
        rule = parse_rule(
            {k: v for k, v in doc.items() if k != "project"},
            source="api",
            templates=self.templates(project),
            allowed_functions=self.allowed_functions,
        )
        stored = {k: v for k, v in rule.to_dict().items() if k not in ("source", "project")}
        self._rules.put(project, rule.name, stored)
        return for_project(rule, project)

    def delete_rule(self, project: str, name: str) -> bool:
        return self._rules.delete(project, name)

    def is_configured(self, project: str, name: str) -> bool:
        return any(r.name == name and r.project in (None, project) for r in self.configured)

    def projects_with_own_rules(self) -> set[str]:
        return {owner for owner, _ in self._rules.records()}

    @property
    def applies_everywhere(self) -> bool:
        """A config rule for every project: every project with new calls must be looked at."""
        return any(r.project is None and r.enabled for r in self.configured)

    def configured_projects(self) -> set[str]:
        return {r.project for r in self.configured if r.project is not None}
