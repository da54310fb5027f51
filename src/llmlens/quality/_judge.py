"""LLM-as-a-judge: fill a template from a sample, ask the configured judge model, read its JSON verdict.

A judge is any upstream the server knows (OpenAI- or Anthropic-compatible, a self-hosted model under
`upstreams`), named `upstream:model` or by a model whose family picks the upstream. Every judge call is
returned as a span of kind `evaluator` under the reserved feature `llmlens.judge`, in a trace of its own:
the runner records it (which prices it), and the score carries that price as `judge_cost_usd`. The kind
keeps it out of every query of the app's spend, latency, errors, budgets, alerts and insights, which read
`llm` spans; and out of `llm_logs`, so the article's SQL stays the app's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from llmlens.model import ErrorType, Span, SpanKind, Status, new_span_id, new_trace_id, now_us
from llmlens.replay.providers import CallOutcome, ProviderError, Providers, Unreachable, Upstream
from llmlens.replay.wire import build_body

from ._judge_templates import JudgeTemplate, render
from ._samples import Chunk, EvalSample

JUDGE_FEATURE = "llmlens.judge"
JUDGE_SERVICE = "llmlens-judge"
DEFAULT_JUDGE_MODEL = "gpt-4o-mini"
_SHOWN_OUTPUT_CHARS = 300


class JudgeSettingsError(ValueError):
    """A bad `judge` setting; names the key."""


@dataclass(frozen=True, slots=True)
class JudgeSettings:
    """The `judge` table of llmlens.toml."""

    model: str = DEFAULT_JUDGE_MODEL
    max_tokens: int = 400
    timeout_s: float = 60.0
    concurrency: int = 4
    templates: dict[str, str] = field(default_factory=dict)  # name -> text, for every project


def judge_settings(raw: Mapping[str, Any] | None) -> JudgeSettings:
    known = ("model", "max_tokens", "timeout_s", "concurrency", "templates")
    values: dict[str, Any] = {}
    for key, value in (raw or {}).items():
        if key not in known:
            raise JudgeSettingsError(f"judge.{key} is not a setting; known: {', '.join(known)}")
        if key == "model":
            if not isinstance(value, str) or not value.strip():
                raise JudgeSettingsError("judge.model must be a model name, e.g. gpt-4o-mini or vllm:llama-3-8b")
            values[key] = value.strip()
        elif key == "templates":
            if not isinstance(value, Mapping) or not all(isinstance(v, str) and v.strip() for v in value.values()):
                raise JudgeSettingsError("judge.templates must be a table of name = prompt text")
            values[key] = {str(k): str(v) for k, v in value.items()}
        elif key in ("max_tokens", "concurrency"):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise JudgeSettingsError(f"judge.{key} must be a whole number of at least 1, got {value!r}")
            values[key] = value
        else:
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise JudgeSettingsError(f"judge.{key} must be a positive number of seconds, got {value!r}")
            values[key] = float(value)
    return JudgeSettings(**values)


class VerdictError(ValueError):
    """The judge answered something that is not a verdict."""


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def parse_verdict(text: str) -> tuple[float, str | None]:
    """(score 0-1, reasoning) from a judge's answer: a JSON object, possibly fenced or with words around it."""
    candidates = [text.strip()]
    candidates += [m.group(1).strip() for m in _FENCE.finditer(text)]
    first, last = text.find("{"), text.rfind("}")
    if 0 <= first < last:
        candidates.append(text[first : last + 1])
    doc: Any = None
    for candidate in candidates:
        try:
            doc = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(doc, dict):
            break
    if not isinstance(doc, dict):
        raise VerdictError(f"the judge did not answer a JSON object: {_shown(text)}")
    raw = doc.get("score")
    if isinstance(raw, bool):
        score = 1.0 if raw else 0.0
    elif isinstance(raw, int | float):
        score = float(raw)
    elif isinstance(raw, str):
        try:
            score = float(raw.strip())
        except ValueError:
            raise VerdictError(f"the judge's score is not a number: {raw!r}") from None
    else:
        raise VerdictError(f"the judge's answer has no numeric `score`: {_shown(text)}")
    if not 0.0 <= score <= 1.0:
        raise VerdictError(f"the judge's score {score:g} is outside 0-1")
    reasoning = doc.get("reasoning") if isinstance(doc.get("reasoning"), str) else None
    return score, reasoning


def _shown(text: str) -> str:
    flat = " ".join(text.split())
    return repr(flat[:_SHOWN_OUTPUT_CHARS] + ("…" if len(flat) > _SHOWN_OUTPUT_CHARS else ""))


def _context_text(chunks: list[Chunk]) -> str:
    return "\n\n".join(f"[{i + 1}] {c.content}" for i, c in enumerate(chunks))


def template_values(sample: EvalSample, chunk: Chunk | None = None) -> dict[str, str]:
    return {
        "question": sample.question or "",
        "answer": sample.answer or "",
        "context": _context_text(sample.context),
        "reference": sample.reference or "",
        "system_prompt": sample.system_prompt or "",
        "chunk": chunk.content if chunk is not None else "",
    }


def missing_inputs(template: JudgeTemplate, sample: EvalSample) -> list[str]:
    """The sample fields the template needs and the sample lacks (it is then not judged)."""
    present = {
        "question": bool(sample.question),
        "answer": bool(sample.answer),
        "context": bool(sample.context),
        "reference": bool(sample.reference),
        "system_prompt": bool(sample.system_prompt),
    }
    return [name for name in template.needs if not present.get(name, True)]


@dataclass(slots=True)
class JudgeCall:
    """One judge call: its verdict, or the error that stands in for it; and its span, to be recorded."""

    span: Span
    score: float | None = None
    reasoning: str | None = None
    error: str | None = None


def resolve_judge(providers: Providers, model: str) -> tuple[Upstream, str]:
    """The upstream and model name of a judge label (`gpt-4o-mini`, `anthropic:claude-...`, `vllm:llama`)."""
    upstream, name = providers.route(model, providers.upstreams["openai"], None)
    providers.key_for(upstream)  # MissingKey / UnknownUpstream now, with what to fix
    return upstream, name


def _judge_span(
    sample: EvalSample, template: JudgeTemplate, upstream: Upstream, model: str, prompt: str, start_us: int
) -> Span:
    return Span(
        trace_id=new_trace_id(),
        span_id=new_span_id(),
        kind=SpanKind.EVALUATOR.value,
        name=f"judge {template.name}",
        project=sample.project,
        start_us=start_us,
        service=JUDGE_SERVICE,
        feature=JUDGE_FEATURE,
        provider=upstream.name,
        model=model,
        prompt=prompt,
        input_messages=[{"role": "user", "content": prompt}],
        template_id=f"{JUDGE_FEATURE}/{template.name}",
        template_version=template.version,
        metadata={
            "judged_span_id": sample.span_id,
            "judged_trace_id": sample.trace_id,
            "template": template.name,
        },
    )


async def run_judge(
    providers: Providers,
    settings: JudgeSettings,
    template: JudgeTemplate,
    sample: EvalSample,
    *,
    model: str | None = None,
    chunk: Chunk | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> JudgeCall:
    """Ask the judge once. Never raises for what the judge or its upstream did: that is the call's `error`."""
    label = model or settings.model
    prompt = render(template.text, template_values(sample, chunk))
    start = now_us()
    try:
        upstream, name = resolve_judge(providers, label)
    except ProviderError as exc:
        span = _judge_span(sample, template, providers.upstreams["openai"], label, prompt, start)
        return _failed(span, f"judge {label}: {exc}", metadata)
    span = _judge_span(sample, template, upstream, name, prompt, start)
    body = build_body(
        upstream.wire,
        name,
        [{"role": "user", "content": prompt}],
        None,
        {"temperature": 0, "max_tokens": settings.max_tokens},
    )
    try:
        try:
            outcome = await providers.send(upstream, body)
        except Unreachable:
            # A pooled connection the judge's server had just closed: a judge call changes nothing, so it is
            # sent once more before it counts as an error.
            outcome = await providers.send(upstream, body)
    except ProviderError as exc:
        return _failed(span, f"judge {label}: {exc}", metadata)
    _fill(span, outcome)
    if metadata:
        span.metadata.update(metadata)
    if outcome.error_type is not None:
        return JudgeCall(span, error=f"judge {label} failed: {outcome.error_type}: {outcome.error_message}")
    try:
        score, reasoning = parse_verdict(outcome.text)
    except VerdictError as exc:
        span.status = Status.ERROR.value
        span.error_type = ErrorType.OTHER.value
        span.error_message = str(exc)
        return JudgeCall(span, error=str(exc))
    return JudgeCall(span, score=score, reasoning=reasoning)


def _failed(span: Span, message: str, metadata: Mapping[str, Any] | None) -> JudgeCall:
    span.status = Status.ERROR.value
    span.error_type = ErrorType.OTHER.value
    span.error_message = message
    span.latency_ms = 0.0
    if metadata:
        span.metadata.update(metadata)
    return JudgeCall(span, error=message)


def _fill(span: Span, outcome: CallOutcome) -> None:
    span.latency_ms = outcome.latency_ms
    span.response = outcome.text or None
    span.output_messages = [{"role": "assistant", "content": outcome.text}] if outcome.text else None
    span.response_model = outcome.response_model
    span.prompt_tokens = outcome.prompt_tokens
    span.completion_tokens = outcome.completion_tokens
    span.cached_tokens = outcome.cached_tokens
    if outcome.prompt_tokens is not None and outcome.completion_tokens is not None:
        span.total_tokens = outcome.prompt_tokens + outcome.completion_tokens
    span.finish_reason = outcome.finish_reason
    span.temperature = 0.0
    if outcome.error_type is not None:
        span.status = Status.ERROR.value
        span.error_type = outcome.error_type
        span.error_message = outcome.error_message
    else:
        span.status = Status.OK.value
