"""Replaying one stored LLM call: send it, and build the new span linked to the original (`replay_of`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from llmlens.model import Span, SpanKind, Status, new_span_id, new_trace_id, now_us

from .providers import CallOutcome, Providers, Upstream
from .request import ReplayOptions, replay_body
from .scorers import Scorer, ScoreSample, answer_text, score
from .simulated import SIMULATED_ATTRIBUTE

Record = Callable[[Sequence[Span]], Awaitable[None]]

# Span attributes written by replays (scores, run and divergence marks).
SCORES_ATTRIBUTE = "llmlens.replay.scores"
RUN_ATTRIBUTE = "llmlens.replay.run"
SERVICE = "llmlens-replay"


@dataclass(frozen=True, slots=True)
class ReplayTarget:
    """Where one replay goes: the upstream, the model name it is sent, and how it was asked for."""

    upstream: Upstream
    model: str
    label: str  # as the user wrote it, e.g. `anthropic:claude-3-5-haiku-latest`


@dataclass(slots=True)
class Replayed:
    original: dict[str, Any]
    target: ReplayTarget
    span: Span
    outcome: CallOutcome
    scores: dict[str, float | None]


def resolve_targets(providers: Providers, original: Mapping[str, Any], models: Sequence[str]) -> list[ReplayTarget]:
    """The upstream and model of each requested model (the original's when none); checks the keys."""
    source = providers.upstream_of(original)
    original_model = original.get("model")
    wanted = list(models) or [str(original_model or "")]
    targets: list[ReplayTarget] = []
    for label in wanted:
        if not label:
            raise ValueError(f"span {original.get('span_id')} has no model; name one to replay it with")
        upstream, model = providers.route(label, source, original_model)
        providers.key_for(upstream)  # MissingKey before anything is sent
        targets.append(ReplayTarget(upstream, model, label))
    return targets


def replay_span(
    original: Mapping[str, Any],
    target: ReplayTarget,
    outcome: CallOutcome,
    *,
    trace_id: str,
    parent_span_id: str | None,
    start_us: int,
    replay_of: str | None,
) -> Span:
    """The new call as a span: what was sent, what came back; priced later by the ingest pipeline."""
    body = outcome.request_body
    params = {k: v for k, v in body.items() if k not in ("model", "messages", "system", "tools")}
    messages = list(body.get("messages") or [])
    if "system" in body:
        messages = [{"role": "system", "content": body["system"]}, *messages]
    error = outcome.error_type is not None
    span = Span(
        trace_id=trace_id,
        span_id=new_span_id(),
        kind=SpanKind.LLM.value,
        name=f"replay {target.model}",
        project=str(original.get("project") or "default"),
        parent_span_id=parent_span_id,
        start_us=start_us,
        latency_ms=outcome.latency_ms,
        status=Status.ERROR.value if error else Status.OK.value,
        error_type=outcome.error_type,
        error_message=outcome.error_message,
        service=SERVICE,
        environment=original.get("environment"),
        feature=original.get("feature"),
        message_id=outcome.response_id,
        provider=target.upstream.name,
        model=target.model,
        response_model=outcome.response_model,
        prompt_tokens=outcome.prompt_tokens,
        completion_tokens=outcome.completion_tokens,
        cached_tokens=outcome.cached_tokens,
        cache_write_tokens=outcome.cache_write_tokens,
        reasoning_tokens=outcome.reasoning_tokens,
        streamed=False,
        temperature=params.get("temperature"),
        max_tokens=params.get("max_tokens", params.get("max_completion_tokens")),
        finish_reason=outcome.finish_reason,
        request_params=params,
        tools=body.get("tools"),
        tool_calls=outcome.tool_calls or None,
        template_id=original.get("template_id"),
        template_version=original.get("template_version"),
        variables=original.get("variables"),
        prompt="\n".join(_text(m) for m in messages if _text(m)) or None,
        response=outcome.text or None,
        input_messages=messages,
        replay_of=replay_of,
        metadata={"replayed_from_trace": original.get("trace_id")},
    )
    if span.prompt_tokens is not None and span.completion_tokens is not None:
        span.total_tokens = span.prompt_tokens + span.completion_tokens
    if target.upstream.simulated:
        span.attributes[SIMULATED_ATTRIBUTE] = True  # the UI labels it: no real model answered
    if outcome.text or outcome.tool_calls:
        message: dict[str, Any] = {"role": "assistant", "content": outcome.text}
        if outcome.tool_calls:
            message["tool_calls"] = outcome.tool_calls
        span.output_messages = [message]
    return span


def _text(message: Any) -> str:
    if not isinstance(message, dict):
        return ""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(b.get("text", "")) for b in content if isinstance(b, dict) and "text" in b)
    return ""


def score_replay(original: Mapping[str, Any], span: Span, scorers: Sequence[Scorer]) -> dict[str, float | None]:
    if not scorers:
        return {}
    sample = ScoreSample(
        original=answer_text(original.get("response"), original.get("tool_calls")),
        response=answer_text(span.response, span.tool_calls),
        model=span.model or "",
        original_span=original,
        replay_span={"span_id": span.span_id, "model": span.model, "response": span.response},
    )
    return score(sample, scorers)


async def replay_call(
    providers: Providers,
    original: dict[str, Any],
    target: ReplayTarget,
    options: ReplayOptions,
    scorers: Sequence[Scorer] = (),
    *,
    trace_id: str | None = None,
    parent_span_id: str | None = None,
    run_id: str | None = None,
) -> Replayed:
    """Send one stored call to one target; the span is returned, not stored (see `Replayer`)."""
    source = providers.upstream_of(original)
    body = replay_body(original, options, source=source, target=target.upstream, model=target.model)
    start = now_us()
    outcome = await providers.send(target.upstream, body)
    span = replay_span(
        original,
        target,
        outcome,
        trace_id=trace_id or new_trace_id(),
        parent_span_id=parent_span_id,
        start_us=start,
        replay_of=str(original["span_id"]),
    )
    scores = score_replay(original, span, scorers)
    if scores:
        span.attributes[SCORES_ATTRIBUTE] = scores
    if run_id:
        span.attributes[RUN_ATTRIBUTE] = run_id
    span.attributes["llmlens.replay.model"] = target.label
    return Replayed(original=original, target=target, span=span, outcome=outcome, scores=scores)
