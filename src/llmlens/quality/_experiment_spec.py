"""What an experiment is: a dataset version × variants × evaluators, with a concurrency bound and a cost cap;
and where its record lives (the shared settings store, per project). Its results are the spans and
scores it stored (`_experiment_results.py`), so they outlive the server that ran it.

A variant changes what is sent for every item: `model`, `template_version` (the prompt of another version
of the item's template, learnt from a stored call of that version), `prompt` (a new system prompt, its
`{{variables}}` filled from the item's), `temperature`, `max_tokens`. The baseline is the first variant
unless `baseline` names another; every other variant is compared with it item by item.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from llmlens.state import SharedSettings

EXPERIMENT_KIND = "experiment"
EXPERIMENT_FEATURE = "llmlens.experiment"
MAX_VARIANTS = 8
MAX_CONCURRENCY = 16
DEFAULT_COST_CAP_USD = 5.0
# A running experiment whose record has not moved for this long was stopped with its server.
STALE_AFTER_S = 300.0
_VARIANT_KEYS = ("name", "model", "template_version", "prompt", "temperature", "max_tokens")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.:@/+=,-]{0,99}$")


class ExperimentError(ValueError):
    """An experiment that cannot be run as asked; names the field."""


@dataclass(frozen=True, slots=True)
class Variant:
    name: str
    model: str | None = None
    template_version: str | None = None
    prompt: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def describe(self) -> str:
        parts = [f"{k}={v}" for k, v in self.to_dict().items() if k not in ("name", "prompt")]
        if self.prompt is not None:
            parts.append("prompt edited")
        return ", ".join(parts)


def parse_variant_text(text: str) -> dict[str, Any]:
    """`model=gpt-4o-mini,temperature=0.2` (as `--variant` takes it) -> a variant object."""
    doc: dict[str, Any] = {}
    for part in [p for p in text.split(",") if p.strip()]:
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in _VARIANT_KEYS:
            raise ExperimentError(f"a variant is KEY=VALUE pairs with keys {', '.join(_VARIANT_KEYS)}, got {part!r}")
        doc[key] = value.strip()
    if not doc:
        raise ExperimentError("a variant names at least a model, a template_version or a prompt")
    return doc


def parse_variant(doc: Any, index: int) -> Variant:
    if isinstance(doc, str):
        doc = parse_variant_text(doc)
    if not isinstance(doc, Mapping):
        raise ExperimentError(f'variants[{index}] must be an object such as {{"model": "gpt-4o-mini"}}')
    unknown = sorted(set(doc) - set(_VARIANT_KEYS))
    if unknown:
        raise ExperimentError(f"variants[{index}]: unknown field(s) {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for key in ("model", "template_version", "prompt", "name"):
        value = doc.get(key)
        if value is not None:
            if not isinstance(value, str) or not value.strip():
                raise ExperimentError(f"variants[{index}].{key} must be a non-empty string")
            values[key] = value if key == "prompt" else value.strip()
    if "temperature" in doc and doc["temperature"] not in (None, ""):
        try:
            values["temperature"] = float(doc["temperature"])
        except (TypeError, ValueError):
            raise ExperimentError(f"variants[{index}].temperature must be a number") from None
        if not 0.0 <= values["temperature"] <= 2.0:
            raise ExperimentError(f"variants[{index}].temperature must be between 0 and 2")
    if "max_tokens" in doc and doc["max_tokens"] not in (None, ""):
        try:
            values["max_tokens"] = int(doc["max_tokens"])
        except (TypeError, ValueError):
            raise ExperimentError(f"variants[{index}].max_tokens must be a whole number") from None
        if values["max_tokens"] < 1:
            raise ExperimentError(f"variants[{index}].max_tokens must be at least 1")
    if not any(k in values for k in ("model", "template_version", "prompt", "temperature", "max_tokens")):
        raise ExperimentError(f"variants[{index}] changes nothing: give a model, template_version or prompt")
    name = values.pop("name", None) or _default_name(values)
    if not _NAME.match(name):
        raise ExperimentError(f"variants[{index}].name must be 1-100 letters, digits, spaces or _.:@/+=,-")
    return Variant(name=name, **values)


def _default_name(values: Mapping[str, Any]) -> str:
    parts = [str(values[k]) for k in ("model", "template_version") if k in values]
    if "prompt" in values:
        parts.append("prompt " + hashlib.blake2b(values["prompt"].encode(), digest_size=3).hexdigest())
    parts += [f"{k}={values[k]}" for k in ("temperature", "max_tokens") if k in values]
    return " ".join(parts)[:100]


@dataclass(slots=True)
class Experiment:
    """The record of one experiment (what was asked, how far it got); results are read from the store."""

    id: str
    project: str
    name: str
    dataset: str
    dataset_version: int
    variants: list[Variant]
    evaluators: list[Any]
    baseline: str
    concurrency: int = 4
    max_cost_usd: float = DEFAULT_COST_CAP_USD
    status: str = "queued"  # queued | running | done | stopped | failed | interrupted
    error: str | None = None
    run_trace_id: str = ""
    items: int = 0
    total: int = 0  # calls planned (items × variants)
    done: int = 0  # calls made
    cost_usd: float = 0.0  # outputs and judges
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    updated_at: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["variants"] = [v.to_dict() for v in self.variants]
        return doc

    @classmethod
    def from_dict(cls, project: str, doc: Mapping[str, Any]) -> Experiment:
        known = set(cls.__dataclass_fields__) - {"project", "variants"}
        values = {k: v for k, v in doc.items() if k in known}
        variants = [Variant(**{k: v for k, v in d.items() if k in _VARIANT_KEYS}) for d in doc.get("variants", [])]
        return cls(project=project, variants=variants, **values)

    @property
    def finished(self) -> bool:
        return self.status in ("done", "stopped", "failed", "interrupted")

    @property
    def url(self) -> str:
        return f"/experiments/{self.id}"


def parse_experiment(
    project: str, doc: Mapping[str, Any], *, dataset_version: int, default_concurrency: int = 4
) -> Experiment:
    """An experiment request (`dataset`, `variants`, `evaluators`, `name`, `baseline`, `concurrency`,
    `max_cost_usd`); ExperimentError names the field."""
    raw_variants = doc.get("variants")
    if not isinstance(raw_variants, list) or not raw_variants:
        raise ExperimentError('variants is required: a list such as [{"model": "gpt-4o"}, {"model": "gpt-4o-mini"}]')
    if len(raw_variants) > MAX_VARIANTS:
        raise ExperimentError(f"at most {MAX_VARIANTS} variants, got {len(raw_variants)}")
    variants = [parse_variant(v, i) for i, v in enumerate(raw_variants)]
    names = [v.name for v in variants]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate is not None:
        raise ExperimentError(f"two variants are named {duplicate!r}: give them names (name=...)")
    baseline = doc.get("baseline") or names[0]
    if baseline not in names:
        raise ExperimentError(f"baseline {baseline!r} is not one of the variants ({', '.join(names)})")
    evaluators = doc.get("evaluators") or []
    if not isinstance(evaluators, list):
        raise ExperimentError("evaluators must be a list of evaluator names or tables")
    concurrency = _bounded_int(doc.get("concurrency", default_concurrency), "concurrency", 1, MAX_CONCURRENCY)
    cap = doc.get("max_cost_usd", DEFAULT_COST_CAP_USD)
    if isinstance(cap, bool) or not isinstance(cap, int | float) or cap <= 0:
        raise ExperimentError(f"max_cost_usd must be a positive number of dollars, got {cap!r}")
    dataset = doc.get("dataset")
    if isinstance(dataset, Mapping):
        dataset = dataset.get("name")
    name = doc.get("name") or f"{dataset}: {' vs '.join(names)}"
    if not isinstance(name, str) or len(name) > 200:
        raise ExperimentError("name must be a string of at most 200 characters")
    created = time.time()
    ident = "exp_" + hashlib.blake2b(f"{project}|{name}|{created}".encode(), digest_size=8).hexdigest()
    return Experiment(
        id=ident,
        project=project,
        name=name,
        dataset=str(dataset),
        dataset_version=dataset_version,
        variants=variants,
        evaluators=list(evaluators),
        baseline=str(baseline),
        concurrency=concurrency,
        max_cost_usd=float(cap),
        created_at=created,
        updated_at=created,
    )


def _bounded_int(value: Any, key: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ExperimentError(f"{key} must be a whole number from {low} to {high}, got {value!r}")
    return value


class ExperimentStore:
    def __init__(self, shared: SharedSettings) -> None:
        self.shared = shared

    def save(self, experiment: Experiment) -> None:
        experiment.updated_at = time.time()
        doc = experiment.to_dict()
        doc.pop("project")
        self.shared.put(experiment.project, EXPERIMENT_KIND, experiment.id, doc)

    def get(self, project: str, ident: str, *, running: Sequence[str] = ()) -> Experiment | None:
        found = self.shared.get(project, EXPERIMENT_KIND, ident)
        if found is None or not isinstance(found.value, Mapping):
            return None
        return _settled(Experiment.from_dict(project, found.value), running)

    def experiments(self, project: str, *, running: Sequence[str] = ()) -> list[Experiment]:
        out = [
            _settled(Experiment.from_dict(project, s.value), running)
            for s in self.shared.list(EXPERIMENT_KIND, project)
            if isinstance(s.value, Mapping)
        ]
        return sorted(out, key=lambda e: -e.created_at)

    def delete(self, project: str, ident: str) -> bool:
        return self.shared.delete(project, EXPERIMENT_KIND, ident)


def _settled(experiment: Experiment, running: Sequence[str]) -> Experiment:
    """A record left `running` by a server that stopped reads as interrupted."""
    if (
        experiment.status in ("queued", "running")
        and experiment.id not in running
        and time.time() - experiment.updated_at > STALE_AFTER_S
    ):
        return replace(experiment, status="interrupted", error="the server running it stopped")
    return experiment
