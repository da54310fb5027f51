"""Double instrumentation: two spans in one trace that record the same provider call count once.

An instrumentor (OpenInference, OpenLLMetry, the OTel contrib packages, LangChain) and a provider SDK
that emits its own GenAI span both record one HTTP call. The rule, also in docs/otlp.md:

* Candidates are two `llm` (or two `embedding`) spans of one trace where one is an ancestor of the
  other, or they are side by side: same parent, or the parent of one is an ancestor of the other
  (LangChain's OpenInference span does not become current, so the OpenAI span beneath the same
  call hangs off an outer span).
* They describe the same call when their models agree (equal, or one a dated version of the other,
  or one span names none), their time ranges overlap by at least half of the shorter one, and their
  token counts are equal wherever both give them. Spans side by side must also both give equal
  input and output token counts: two parallel calls that failed look alike otherwise.
* The span kept as the call is the one with more of the call's data (tokens, content, model); ties
  go to the outer span (the ancestor, else the earlier start). When the other one was already
  stored, the newcomer yields. The kept span takes whatever it lacks from the other.
* The other span becomes kind `other`, its token counts move to `attributes["llmlens.duplicate_usage"]`
  (so it carries no cost) and `attributes["llmlens.duplicate_of"]` names the kept span.
"""

from __future__ import annotations

from dataclasses import dataclass

from llmlens.model import Span, SpanKind

TOKEN_FIELDS = (
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
)
# What the kept span takes from its duplicate when it has no value of its own.
_MERGED_FIELDS = (
    *TOKEN_FIELDS,
    "provider",
    "model",
    "response_model",
    "ttft_ms",
    "tokens_per_second",
    "streamed",
    "temperature",
    "max_tokens",
    "finish_reason",
    "request_params",
    "tools",
    "tool_calls",
    "prompt",
    "response",
    "input_messages",
    "output_messages",
    "message_id",
    "error_type",
    "error_message",
)
CALL_KINDS = frozenset({SpanKind.LLM.value, SpanKind.EMBEDDING.value})
DUPLICATE_OF = "llmlens.duplicate_of"
DUPLICATE_USAGE = "llmlens.duplicate_usage"


@dataclass(slots=True)
class CallSignature:
    """What is remembered of an LLM or embedding span to recognise a second record of its call."""

    kind: str
    models: frozenset[str]
    start_us: int
    end_us: int
    prompt_tokens: int | None
    completion_tokens: int | None
    score: int
    duplicate_of: str | None = None

    @classmethod
    def of(cls, span: Span) -> CallSignature:
        models = frozenset(m.lower() for m in (span.model, span.response_model) if m)
        return cls(
            kind=span.kind,
            models=models,
            start_us=span.start_us,
            end_us=span.end_us or span.start_us,
            prompt_tokens=span.prompt_tokens,
            completion_tokens=span.completion_tokens,
            score=information_score(span),
        )


def information_score(span: Span) -> int:
    """How much of the call a span records: tokens weigh most, then content, then the model."""
    score = 0
    if span.prompt_tokens is not None or span.completion_tokens is not None:
        score += 4
    if span.input_messages is not None or span.prompt is not None or span.output_messages is not None:
        score += 2
    if span.model or span.response_model:
        score += 1
    return score


def _models_agree(a: frozenset[str], b: frozenset[str]) -> bool:
    if not a or not b or a & b:
        return True
    return any(x.startswith(y) or y.startswith(x) for x in a for y in b)


def _overlap_enough(a: CallSignature, b: CallSignature) -> bool:
    overlap = min(a.end_us, b.end_us) - max(a.start_us, b.start_us)
    shorter = max(1, min(a.end_us - a.start_us, b.end_us - b.start_us))
    return overlap >= 0 and overlap * 2 >= shorter


def _tokens_agree(a: int | None, b: int | None) -> bool:
    return a is None or b is None or a == b


def same_call(a: CallSignature, b: CallSignature, *, siblings: bool) -> bool:
    """Whether two spans (ancestor/descendant, or siblings) record one provider call."""
    if a.kind != b.kind or a.duplicate_of is not None or b.duplicate_of is not None:
        return False
    if siblings and (
        a.prompt_tokens is None or a.completion_tokens is None or b.prompt_tokens is None or b.completion_tokens is None
    ):
        return False
    return (
        _models_agree(a.models, b.models)
        and _overlap_enough(a, b)
        and _tokens_agree(a.prompt_tokens, b.prompt_tokens)
        and _tokens_agree(a.completion_tokens, b.completion_tokens)
    )


def merge_into_kept(kept: Span, other: Span) -> None:
    """The kept span takes what only the duplicate recorded."""
    for name in _MERGED_FIELDS:
        if getattr(kept, name) is None:
            value = getattr(other, name)
            if value is not None:
                setattr(kept, name, value)


def demote(span: Span, kept_span_id: str) -> None:
    """Make `span` a non-call record of a call counted on `kept_span_id`: no tokens, no cost."""
    usage = {name: getattr(span, name) for name in TOKEN_FIELDS if getattr(span, name) is not None}
    for name in TOKEN_FIELDS:
        setattr(span, name, None)
    span.cost_usd = span.computed_cost_usd = None
    span.cost_source = span.price_version = None
    span.message_id = None
    span.kind = SpanKind.OTHER.value
    span.attributes[DUPLICATE_OF] = kept_span_id
    if usage:
        span.attributes[DUPLICATE_USAGE] = usage
