"""Comparing calls across models: replay a set of calls against each model, rows side by side, per-model summary."""

from __future__ import annotations

import asyncio
import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from llmlens.model import Span, SpanKind, Status, new_span_id, new_trace_id, now_us

from .providers import ProviderError, Providers
from .replay import RUN_ATTRIBUTE, SCORES_ATTRIBUTE, Record, ReplayTarget, replay_call, resolve_targets
from .request import ReplayOptions
from .scorers import Scorer, answer_text
from .simulated import SIMULATED_ATTRIBUTE
from .wire import as_dict

Progress = Callable[[int, int], None]  # (done, total)
ORIGINAL = "original"
KIND_ATTRIBUTE = "llmlens.replay.kind"


@dataclass(slots=True)
class CompareRow:
    original_span_id: str
    original_trace_id: str | None
    model: str
    span_id: str | None  # the replay span; None when the call could not be sent
    original_response: str | None
    response: str | None
    diff: list[tuple[str, str]]  # (equal|delete|insert, words) from the original to the replay
    similarity: float | None
    latency_ms: float | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float | None
    finish_reason: str | None
    error: str | None
    scores: dict[str, float | None] = field(default_factory=dict)
    simulated: bool = False  # answered by the demo's stand-in provider, not a real model


@dataclass(slots=True)
class ModelSummary:
    model: str
    calls: int
    errors: int
    error_rate: float | None
    mean_latency_ms: float | None
    total_cost_usd: float | None
    total_tokens: int
    scores: dict[str, float | None] = field(default_factory=dict)


@dataclass(slots=True)
class Comparison:
    run_id: str  # the trace holding the replays
    root_span_id: str | None
    models: list[str]
    scorers: list[str]
    rows: list[CompareRow]
    summary: list[ModelSummary]  # the originals first, then one per model


_WORDS = re.compile(r"\s+|[^\s]+")


def word_diff(before: str | None, after: str | None) -> tuple[list[tuple[str, str]], float | None]:
    if before is None and after is None:
        return [], None
    a, b = _WORDS.findall(before or ""), _WORDS.findall(after or "")
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    out: list[tuple[str, str]] = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            out.append(("equal", "".join(a[i1:i2])))
            continue
        if i2 > i1:
            out.append(("delete", "".join(a[i1:i2])))
        if j2 > j1:
            out.append(("insert", "".join(b[j1:j2])))
    return out, round(matcher.ratio(), 4)


def _error_text(record: Mapping[str, Any]) -> str | None:
    if record.get("status") != Status.ERROR.value and not record.get("error_type"):
        return None
    return f"{record.get('error_type') or 'error'}: {record.get('error_message') or ''}".strip()


def compare_row(
    original: Mapping[str, Any], replay: Mapping[str, Any] | None, model: str, error: str | None = None
) -> CompareRow:
    """One row: `replay` is the replay span's columns (or None when it could not be sent)."""
    before = answer_text(original.get("response"), original.get("tool_calls"))
    replay = replay or {}
    after = answer_text(replay.get("response"), replay.get("tool_calls")) if replay else None
    diff, similarity = word_diff(before, after) if replay else ([], None)
    attributes = as_dict(replay.get("attributes"))
    scores = as_dict(attributes.get(SCORES_ATTRIBUTE))
    return CompareRow(
        original_span_id=str(original.get("span_id")),
        original_trace_id=original.get("trace_id"),
        model=model,
        span_id=replay.get("span_id"),
        original_response=before,
        response=after,
        diff=diff,
        similarity=similarity,
        latency_ms=replay.get("latency_ms"),
        prompt_tokens=replay.get("prompt_tokens"),
        completion_tokens=replay.get("completion_tokens"),
        cost_usd=replay.get("cost_usd"),
        finish_reason=replay.get("finish_reason"),
        error=error or (_error_text(replay) if replay else None),
        scores=dict(scores),
        simulated=bool(attributes.get(SIMULATED_ATTRIBUTE)),
    )


def _mean(values: Sequence[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def summarize(
    originals: Sequence[Mapping[str, Any]], rows: Sequence[CompareRow], scorers: Sequence[str]
) -> list[ModelSummary]:
    """The originals as a baseline, then per model: mean latency, total cost, error rate, mean scores."""
    baseline = ModelSummary(
        model=ORIGINAL,
        calls=len(originals),
        errors=sum(1 for o in originals if _error_text(o)),
        error_rate=None,
        mean_latency_ms=_mean([float(o["latency_ms"]) for o in originals if o.get("latency_ms") is not None]),
        total_cost_usd=_sum_cost([o.get("cost_usd") for o in originals]),
        total_tokens=sum(int(o.get("total_tokens") or 0) for o in originals),
    )
    baseline.error_rate = round(baseline.errors / baseline.calls, 4) if baseline.calls else None
    out = [baseline]
    models: list[str] = []
    for row in rows:
        if row.model not in models:
            models.append(row.model)
    for model in models:
        mine = [r for r in rows if r.model == model]
        errors = sum(1 for r in mine if r.error)
        out.append(
            ModelSummary(
                model=model,
                calls=len(mine),
                errors=errors,
                error_rate=round(errors / len(mine), 4) if mine else None,
                mean_latency_ms=_mean([r.latency_ms for r in mine if r.latency_ms is not None]),
                total_cost_usd=_sum_cost([r.cost_usd for r in mine]),
                total_tokens=sum((r.prompt_tokens or 0) + (r.completion_tokens or 0) for r in mine),
                scores={name: _mean([v for r in mine if (v := r.scores.get(name)) is not None]) for name in scorers},
            )
        )
    return out


def _sum_cost(values: Sequence[Any]) -> float | None:
    known = [float(v) for v in values if v is not None]
    return round(sum(known), 8) if known else None


def _span_columns(span: Span) -> dict[str, Any]:
    return {
        "span_id": span.span_id,
        "response": span.response,
        "tool_calls": span.tool_calls,
        "latency_ms": span.latency_ms,
        "prompt_tokens": span.prompt_tokens,
        "completion_tokens": span.completion_tokens,
        "cost_usd": span.cost_usd,
        "finish_reason": span.finish_reason,
        "status": span.status,
        "error_type": span.error_type,
        "error_message": span.error_message,
        "attributes": span.attributes,
    }


async def run_compare(
    providers: Providers,
    record: Record,
    originals: Sequence[dict[str, Any]],
    models: Sequence[str],
    options: ReplayOptions,
    scorers: Sequence[Scorer] = (),
    *,
    concurrency: int = 4,
    progress: Progress | None = None,
    run_id: str | None = None,
    parent_span_id: str | None = None,
    group: bool = False,
) -> Comparison:
    """Replay every call against every model (the original model when none), store, and compare.

    One call against one model is stored as a trace of its own; more (or `group`) share a new trace
    under a `compare` root span, or go under `parent_span_id` of the existing trace `run_id`.
    """
    plan: list[tuple[dict[str, Any], ReplayTarget]] = []
    for original in originals:
        plan.extend((original, target) for target in resolve_targets(providers, original, models))
    grouped = group or len(plan) > 1 or run_id is not None
    run_id = run_id or new_trace_id()
    root: Span | None = None
    if grouped and parent_span_id is None:
        labels = sorted({t.label for _, t in plan})
        root = Span(
            trace_id=run_id,
            span_id=new_span_id(),
            kind=SpanKind.CHAIN.value,
            name=f"compare {len(originals)} call(s) × {', '.join(labels)}",
            project=str(originals[0].get("project") or "default") if originals else "default",
            start_us=now_us(),
            status=Status.OK.value,
            service="llmlens-replay",
            attributes={KIND_ATTRIBUTE: "compare", "llmlens.replay.models": labels},
        )
        parent_span_id = root.span_id
    semaphore = asyncio.Semaphore(max(1, concurrency))
    done = 0

    async def one(original: dict[str, Any], target: ReplayTarget) -> tuple[Span | None, CompareRow]:
        nonlocal done
        async with semaphore:
            try:
                result = await replay_call(
                    providers,
                    original,
                    target,
                    options,
                    scorers,
                    trace_id=run_id,
                    parent_span_id=parent_span_id if grouped else None,
                    run_id=run_id if grouped else None,
                )
                span: Span | None = result.span
                row = compare_row(original, _span_columns(result.span), target.label)
            except ProviderError as exc:
                if not grouped:  # one call: its error is the answer
                    raise
                span, row = None, compare_row(original, None, target.label, error=str(exc))
        done += 1
        if progress is not None:
            progress(done, len(plan))
        return span, row

    results = await asyncio.gather(*(one(o, t) for o, t in plan))
    spans = [s for s, _ in results if s is not None]
    if root is not None:
        root.latency_ms = round((now_us() - root.start_us) / 1000, 3)
        spans.insert(0, root)
    if spans:
        await record(spans)
    rows = [row for _, row in results]
    for span, row in results:  # the pipeline priced the spans in place
        if span is not None:
            row.cost_usd = span.cost_usd
    scorer_names = [s.name for s in scorers]
    models_used = list(dict.fromkeys(t.label for _, t in plan))
    return Comparison(
        run_id=run_id,
        root_span_id=root.span_id if root is not None else parent_span_id,
        models=models_used,
        scorers=scorer_names,
        rows=rows,
        summary=summarize(originals, rows, scorer_names),
    )


def comparison_from_spans(run_spans: Sequence[dict[str, Any]], originals: Sequence[dict[str, Any]]) -> Comparison:
    """Rebuild a stored comparison (the replays of one run trace, and their originals)."""
    by_id = {o["span_id"]: o for o in originals}
    rows: list[CompareRow] = []
    scorer_names: list[str] = []
    replays = [s for s in run_spans if s.get("kind") == SpanKind.LLM.value and s.get("replay_of") in by_id]
    order = {o["span_id"]: i for i, o in enumerate(originals)}
    replays.sort(key=lambda s: order.get(s["replay_of"], 0))
    for span in replays:
        attributes = as_dict(span.get("attributes"))
        label = str(attributes.get("llmlens.replay.model") or span.get("model"))
        rows.append(compare_row(by_id[span["replay_of"]], span, label))
        for name in attributes.get(SCORES_ATTRIBUTE) or {}:
            if name not in scorer_names:
                scorer_names.append(name)
    root = next((s for s in run_spans if s.get("parent_span_id") is None), None)
    used = [o for o in originals if any(r.original_span_id == o["span_id"] for r in rows)]
    return Comparison(
        run_id=str(run_spans[0]["trace_id"]) if run_spans else "",
        root_span_id=root["span_id"] if root else None,
        models=list(dict.fromkeys(r.model for r in rows)),
        scorers=scorer_names,
        rows=rows,
        summary=summarize(used, rows, scorer_names),
    )


__all__ = [
    "ORIGINAL",
    "RUN_ATTRIBUTE",
    "CompareRow",
    "Comparison",
    "ModelSummary",
    "compare_row",
    "comparison_from_spans",
    "run_compare",
    "summarize",
    "word_diff",
]
