"""Running evaluators on one sample and storing what they found: judge spans first (recording prices them),
then the scores with those prices, then a span for each evaluator error, so that errors are kept and
counted. Shared by online rules and experiments.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from llmlens.model import ErrorType, Score, ScoreSource, Span, SpanKind, Status, new_span_id, new_trace_id, now_us

from ._evaluators import EvalContext, Evaluator, Outcome, Verdict
from ._judge import JUDGE_FEATURE, JUDGE_SERVICE
from ._record import RecordedScores
from ._samples import EvalSample

RecordSpans = Callable[[Sequence[Span]], Awaitable[None]]
WriteScores = Callable[[Sequence[tuple[int, Score]]], Awaitable[RecordedScores]]


@dataclass(slots=True)
class Report:
    """What evaluating one sample did."""

    scores: list[Score] = field(default_factory=list)  # written
    pending: list[Score] = field(default_factory=list)  # made, left to the caller to write (`write_reports`)
    sample: EvalSample | None = None
    errors: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    cost_usd: float = 0.0  # judge spend
    judge_calls: int = 0


def score_id(*parts: object) -> str:
    digest = hashlib.blake2b("|".join(str(p) for p in parts).encode(), digest_size=12).hexdigest()
    return f"eval_{digest}"


def _score(
    verdict: Verdict, evaluator: Evaluator, sample: EvalSample, id_prefix: str, metadata: Mapping[str, Any]
) -> Score:
    span_id = verdict.target_span_id or sample.span_id
    trace_id = verdict.target_trace_id if verdict.target_span_id else sample.trace_id
    message_id = verdict.target_message_id if verdict.target_span_id else sample.message_id
    judge = verdict.judge_call
    meta: dict[str, Any] = {**metadata, **verdict.metadata}
    if not verdict.higher_is_better:
        meta["higher_is_better"] = False
    cost: float | None = None
    if judge is not None:
        meta["judge_span_id"] = judge.span.span_id
        meta["judge_trace_id"] = judge.span.trace_id
        meta["judge_model"] = judge.span.model
        cost = judge.span.cost_usd
    return Score(
        score_id=score_id(id_prefix, span_id, verdict.name, verdict.key),
        name=verdict.name,
        data_type=verdict.data_type,
        timestamp_us=now_us(),
        project=sample.project,
        value=verdict.value,
        label=verdict.label,
        source=ScoreSource.EVALUATOR.value,
        message_id=message_id,
        trace_id=trace_id,
        span_id=span_id,
        evaluator=evaluator.name,
        evaluator_version=evaluator.version,
        comment=verdict.comment,
        reasoning=verdict.reasoning,
        judge_cost_usd=cost,
        metadata=meta,
    )


def error_span(sample: EvalSample, evaluator: str, message: str, metadata: Mapping[str, Any]) -> Span:
    """An evaluator's failure that made no judge call, kept as a span so that it is seen and counted."""
    return Span(
        trace_id=new_trace_id(),
        span_id=new_span_id(),
        kind=SpanKind.EVALUATOR.value,
        name=f"evaluator error {evaluator}",
        project=sample.project,
        start_us=now_us(),
        latency_ms=0.0,
        status=Status.ERROR.value,
        error_type=ErrorType.OTHER.value,
        error_message=message,
        service=JUDGE_SERVICE,
        feature=JUDGE_FEATURE,
        metadata={**metadata, "judged_span_id": sample.span_id, "judged_trace_id": sample.trace_id},
    )


async def evaluate_sample(
    evaluators: Sequence[Evaluator],
    sample: EvalSample,
    ctx: EvalContext,
    *,
    id_prefix: str,
    metadata: Mapping[str, Any],
    record_spans: RecordSpans,
    write_scores: WriteScores | None,
) -> Report:
    """Run every evaluator (one that raises is an error of its own, the others go on), record, store.

    Without `write_scores` the scores are left in `pending`: a caller evaluating many samples writes them
    all in one transaction (`write_reports`)."""
    results = await asyncio.gather(*(e.evaluate(sample, ctx) for e in evaluators), return_exceptions=True)
    report = Report(sample=sample)
    verdicts: list[tuple[Verdict, Evaluator]] = []
    spans: list[Span] = []
    for evaluator, result in zip(evaluators, results, strict=True):
        outcome = result if isinstance(result, Outcome) else Outcome(errors=[f"{evaluator.name} raised {result!r}"])
        verdicts += [(v, evaluator) for v in outcome.verdicts]
        report.skipped += outcome.skipped
        report.judge_calls += len(outcome.judge_calls)
        spans += [call.span for call in outcome.judge_calls]
        judged_errors = {call.error for call in outcome.judge_calls if call.error}
        for message in outcome.errors:
            report.errors.append(message)
            if not any(e and e in message for e in judged_errors):  # a judge's failure is on its span already
                spans.append(error_span(sample, evaluator.name, message, metadata))
    if spans:
        await record_spans(spans)  # prices the judge spans in place
    report.cost_usd = sum(s.cost_usd or 0.0 for s in spans)
    report.pending = [_score(v, e, sample, id_prefix, metadata) for v, e in verdicts]
    if write_scores is not None:
        await write_reports([report], metadata, record_spans, write_scores)
    return report


async def write_reports(
    reports: Sequence[Report], metadata: Mapping[str, Any], record_spans: RecordSpans, write_scores: WriteScores
) -> None:
    """Write the pending scores of several reports at once; a refused score becomes an error of its report
    (and an evaluator span, so that it is counted)."""
    owners: list[Report] = []
    indexed: list[tuple[int, Score]] = []
    for report in reports:
        for score in report.pending:
            indexed.append((len(indexed), score))
            owners.append(report)
    if not indexed:
        return
    recorded = await write_scores(indexed)
    for position, score in indexed:
        if position in recorded.score_ids:
            owners[position].scores.append(score)
    refused: list[Span] = []
    for position, reason in recorded.rejected:
        owner = owners[position]
        owner.errors.append(reason)
        if owner.sample is not None:
            refused.append(error_span(owner.sample, "scores", reason, metadata))
    for report in reports:
        report.pending = []
    if refused:
        await record_spans(refused)
