"""An experiment's results, read back from the spans and scores it stored: per variant the mean of each score
with its 95 % interval, cost, latency p50/p95, errors; against the baseline, the win rate and a paired
t-test per score; per item, the outputs side by side with a word diff from the baseline's.

A score whose evaluator says lower is better (toxicity, refusal) counts a lower value as the better one
in wins and in "worse than the baseline".
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from llmlens.replay.calls import read_spans
from llmlens.replay.compare import word_diff
from llmlens.replay.scorers import answer_text
from llmlens.store import Store

from ._experiment_runner import ATTR_ITEM, ATTR_VARIANT
from ._experiment_spec import Experiment
from ._stats import mean_interval, paired_t_test, percentile


@dataclass(slots=True)
class ScoreSummary:
    name: str
    n: int
    mean: float | None
    ci_low: float | None
    ci_high: float | None
    higher_is_better: bool = True
    # against the baseline (None for the baseline itself)
    paired: int = 0
    wins: int = 0
    ties: int = 0
    losses: int = 0
    win_rate: float | None = None
    mean_difference: float | None = None
    p_value: float | None = None
    significant: bool = False
    worse: bool = False
    verdict: str = ""


@dataclass(slots=True)
class VariantSummary:
    name: str
    description: str
    baseline: bool
    calls: int
    errors: int
    cost_usd: float | None  # outputs
    judge_cost_usd: float  # their evaluations
    cost_per_item_usd: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    scores: list[ScoreSummary] = field(default_factory=list)
    worse: bool = False  # significantly worse than the baseline on some score


@dataclass(slots=True)
class ItemOutput:
    variant: str
    span_id: str | None
    text: str | None
    error: str | None
    latency_ms: float | None
    cost_usd: float | None
    scores: dict[str, float | str | None] = field(default_factory=dict)
    diff: list[tuple[str, str]] = field(default_factory=list)  # from the baseline's output
    similarity: float | None = None


@dataclass(slots=True)
class ItemRow:
    item: str
    question: str | None
    expected: str | None
    outputs: list[ItemOutput] = field(default_factory=list)


@dataclass(slots=True)
class Results:
    score_names: list[str]
    variants: list[VariantSummary]
    items: list[ItemRow]
    worse: list[str]  # variants significantly worse than the baseline

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _attrs(span: Mapping[str, Any]) -> dict[str, Any]:
    value = span.get("attributes")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


def _meta(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


def _question(messages: Any) -> str | None:
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "user":
                content = message.get("content")
                return content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
    return None


def experiment_results(
    store: Store, experiment: Experiment, expected: Mapping[str, str | None] | None = None
) -> Results:
    """`expected`: item id -> expected output (from the dataset version), shown beside the outputs."""
    project = experiment.project
    spans = [
        s
        for s in read_spans(store, "project = ? AND trace_id = ? AND kind = 'llm'", [project, experiment.run_trace_id])
        if _attrs(s).get(ATTR_VARIANT)
    ]
    rows = store.query(
        "SELECT span_id, name, value, label, metadata FROM scores WHERE project = ? AND trace_id = ? "
        "AND source = 'evaluator'",
        [project, experiment.run_trace_id],
    ).dicts()
    by_span: dict[str, dict[str, float | str | None]] = defaultdict(dict)
    lower_better: set[str] = set()
    names: list[str] = []
    for row in rows:
        name = str(row["name"])
        if name not in names:
            names.append(name)
        value = row["value"] if row["value"] is not None else row["label"]
        if name == "chunk_relevance":
            continue  # per chunk: the experiment compares answers
        by_span[str(row["span_id"])][name] = float(value) if isinstance(value, int | float) else value
        if _meta(row["metadata"]).get("higher_is_better") is False:
            lower_better.add(name)
    names = [n for n in names if n != "chunk_relevance"]
    outputs: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)  # variant -> item -> span
    questions: dict[str, str | None] = {}
    for span in spans:
        attrs = _attrs(span)
        variant, item = str(attrs.get(ATTR_VARIANT)), str(attrs.get(ATTR_ITEM))
        outputs[variant][item] = span
        questions.setdefault(item, _question(span.get("input_messages")))
    judge_costs = _judge_costs(store, project, experiment.id)
    baseline = experiment.baseline
    summaries = [
        _variant(
            v.name,
            v.describe(),
            v.name == baseline,
            outputs.get(v.name, {}),
            outputs.get(baseline, {}),
            by_span,
            names,
            lower_better,
            judge_costs.get(v.name, 0.0),
        )
        for v in experiment.variants
    ]
    items = _items(experiment, outputs, by_span, questions, expected or {})
    return Results(names, summaries, items, [s.name for s in summaries if s.worse])


def _judge_costs(store: Store, project: str, experiment_id: str) -> dict[str, float]:
    rows = store.query(
        "SELECT json_extract_string(metadata, '$.variant') AS variant, SUM(judge_cost_usd) AS cost FROM scores "
        "WHERE project = ? AND source = 'evaluator' AND json_extract_string(metadata, '$.experiment') = ? "
        "GROUP BY variant",
        [project, experiment_id],
    ).dicts()
    return {str(r["variant"]): float(r["cost"] or 0.0) for r in rows if r["variant"]}


def _is_error(span: Mapping[str, Any]) -> bool:
    return span.get("status") == "error"


def _variant(
    name: str,
    description: str,
    is_baseline: bool,
    mine: Mapping[str, Mapping[str, Any]],
    base: Mapping[str, Mapping[str, Any]],
    by_span: Mapping[str, Mapping[str, float | str | None]],
    names: Sequence[str],
    lower_better: set[str],
    judge_cost: float,
) -> VariantSummary:
    spans = list(mine.values())
    ok = [s for s in spans if not _is_error(s)]
    costs = [float(s["cost_usd"]) for s in spans if s.get("cost_usd") is not None]
    latencies = [float(s["latency_ms"]) for s in ok if s.get("latency_ms") is not None]
    summary = VariantSummary(
        name=name,
        description=description,
        baseline=is_baseline,
        calls=len(spans),
        errors=len(spans) - len(ok),
        cost_usd=round(sum(costs), 8) if costs else None,
        judge_cost_usd=round(judge_cost, 8),
        cost_per_item_usd=round(sum(costs) / len(costs), 8) if costs else None,
        latency_p50_ms=_round(percentile(latencies, 0.5)),
        latency_p95_ms=_round(percentile(latencies, 0.95)),
    )
    for score in names:
        values = [v for s in ok if isinstance(v := by_span.get(str(s["span_id"]), {}).get(score), float)]
        interval = mean_interval(values)
        cell = ScoreSummary(
            score,
            interval.n,
            _round(interval.mean, 4),
            _round(interval.ci_low, 4),
            _round(interval.ci_high, 4),
            higher_is_better=score not in lower_better,
        )
        if not is_baseline:
            _compare(cell, mine, base, by_span)
        summary.scores.append(cell)
    summary.worse = any(c.worse for c in summary.scores)
    return summary


def _compare(
    cell: ScoreSummary,
    mine: Mapping[str, Mapping[str, Any]],
    base: Mapping[str, Mapping[str, Any]],
    by_span: Mapping[str, Mapping[str, float | str | None]],
) -> None:
    """Win rate and paired t-test of this variant against the baseline, over items both scored."""
    pairs: list[tuple[float, float]] = []
    for item, span in mine.items():
        other = base.get(item)
        if other is None:
            continue
        a = by_span.get(str(other["span_id"]), {}).get(cell.name)
        b = by_span.get(str(span["span_id"]), {}).get(cell.name)
        if isinstance(a, float) and isinstance(b, float):
            pairs.append((a, b))
    sign = 1.0 if cell.higher_is_better else -1.0
    cell.paired = len(pairs)
    cell.wins = sum(1 for a, b in pairs if sign * (b - a) > 0)
    cell.losses = sum(1 for a, b in pairs if sign * (b - a) < 0)
    cell.ties = len(pairs) - cell.wins - cell.losses
    cell.win_rate = round((cell.wins + 0.5 * cell.ties) / len(pairs), 4) if pairs else None
    test = paired_t_test([a for a, _ in pairs], [b for _, b in pairs])
    cell.mean_difference = _round(test.mean_difference, 4)
    cell.p_value = _round(test.p_value, 6)
    cell.significant = test.significant
    cell.worse = bool(test.significant and test.mean_difference is not None and sign * test.mean_difference < 0)
    cell.verdict = test.verdict + (" — worse than the baseline" if cell.worse else "")


def _items(
    experiment: Experiment,
    outputs: Mapping[str, Mapping[str, Mapping[str, Any]]],
    by_span: Mapping[str, Mapping[str, float | str | None]],
    questions: Mapping[str, str | None],
    expected: Mapping[str, str | None],
) -> list[ItemRow]:
    base = outputs.get(experiment.baseline, {})
    items = list(dict.fromkeys(i for variant in outputs.values() for i in variant))
    rows = []
    for item in items:
        base_span = base.get(item)
        base_text = answer_text(base_span.get("response"), base_span.get("tool_calls")) if base_span else None
        row = ItemRow(item, questions.get(item), expected.get(item))
        for variant in experiment.variants:
            span = outputs.get(variant.name, {}).get(item)
            if span is None:
                row.outputs.append(ItemOutput(variant.name, None, None, "not run (cost cap)", None, None))
                continue
            text = answer_text(span.get("response"), span.get("tool_calls"))
            diff, similarity = ([], None) if variant.name == experiment.baseline else word_diff(base_text, text)
            row.outputs.append(
                ItemOutput(
                    variant.name,
                    str(span["span_id"]),
                    text,
                    str(span.get("error_message") or span.get("error_type") or "error") if _is_error(span) else None,
                    span.get("latency_ms"),
                    span.get("cost_usd"),
                    dict(by_span.get(str(span["span_id"]), {})),
                    diff,
                    similarity,
                )
            )
        rows.append(row)
    return rows


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)
