"""Double instrumentation: two spans in one trace that record the same provider call count once.

An instrumentor (OpenInference, OpenLLMetry, the OTel contrib packages, LangChain) and a provider SDK
that emits its own GenAI span both record one HTTP call. The rule, also in docs/otlp.md:

* Candidates are two `llm` (or two `embedding`) spans of one trace where one is an ancestor of the
  other, or they are side by side: same parent, or the parent of one is an ancestor of the other
  (LangChain's OpenInference span does not become current, so the OpenAI span beneath the same
  call hangs off an outer span). Each span is tried against the nearest records in time first
  (`call_distance`), so parallel calls recorded twice pair up with their own records.
* Their time ranges must touch. When both carry the provider's response id, the id decides: equal
  ids are one call whatever else differs (an instrumentor may count a stream's tokens its own way),
  different ids are two calls.
* Otherwise they describe the same call when their models agree (equal, or one a dated version of
  the other, or one span names none), their time ranges overlap by at least half of the shorter one,
  and their token counts are equal wherever both give them. Spans side by side need more, since two
  parallel calls look alike: they come from different instrumentation libraries (one library records
  a call once, so a call takes at most one record per library), and either both give equal input and
  output token counts or both failed with the same error type (a failed call has no usage and often
  no response id).
* The span kept as the call is the one with more of the call's data (tokens, content, model); ties
  go to the outer span (the ancestor, else the earlier start). When the other one was already
  stored, the newcomer yields. The kept span takes whatever it lacks from the other, and the token
  counts of a provider SDK's own span over its own: that SDK copies the usage the API returned.
* The other span becomes kind `other`, its token counts move to `attributes["llmlens.duplicate_usage"]`
  (so it carries no cost) and `attributes["llmlens.duplicate_of"]` names the kept span.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from llmlens.model import Span, SpanKind, Status

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
SCOPE_ATTRIBUTE = "otel.scope.name"
RESPONSE_ID_KEYS = ("gen_ai.response.id", "llm.response.id")
# Instrumentation scopes of provider SDKs that emit their own GenAI spans. Their usage is the API's
# as returned; an instrumentor may count its own way (OpenLLMetry adds a stream's placeholder first token).
PROVIDER_SDK_SCOPES = ("com.anthropic.sdk",)
_FARTHEST = 2**63


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
    response_id: str | None = None
    failed: bool = False
    error_type: str | None = None
    # The instrumentation libraries (OTel scopes) known to have recorded this call.
    scopes: frozenset[str] = field(default_factory=frozenset)
    duplicate_of: str | None = None

    @classmethod
    def of(cls, span: Span) -> CallSignature:
        models = _shared_set(tuple(m.lower() for m in (span.model, span.response_model) if m))
        scope = span.attributes.get(SCOPE_ATTRIBUTE)
        return cls(
            kind=span.kind,
            models=models,
            start_us=span.start_us,
            end_us=span.end_us or span.start_us,
            prompt_tokens=span.prompt_tokens,
            completion_tokens=span.completion_tokens,
            score=information_score(span),
            response_id=response_id_of(span),
            failed=span.status == Status.ERROR.value or span.error_type is not None,
            error_type=span.error_type,
            scopes=_shared_set((scope,) if isinstance(scope, str) and scope else ()),
        )

    def took(self, other: CallSignature, kept: Span | None = None) -> None:
        """The kept call also stands for `other`'s record now: later spans are matched against both.

        `kept`: the kept span, when it took values from the other one (its counts and score changed).
        """
        self.models = self.models | other.models
        self.response_id = self.response_id or other.response_id
        self.error_type = self.error_type or other.error_type
        self.scopes = self.scopes | other.scopes
        if kept is not None:
            self.prompt_tokens, self.completion_tokens = kept.prompt_tokens, kept.completion_tokens
            self.score = information_score(kept)


# The few distinct model and scope sets, made once: the trace assembler keeps a signature per recent
# call, and a frozenset each was ~150-200 bytes. Bounded, as model names come from senders.
_SHARED_SETS: dict[tuple[str, ...], frozenset[str]] = {}
_MAX_SHARED_SETS = 4096


def _shared_set(items: tuple[str, ...]) -> frozenset[str]:
    found = _SHARED_SETS.get(items)
    if found is None:
        if len(_SHARED_SETS) >= _MAX_SHARED_SETS:
            _SHARED_SETS.clear()
        found = _SHARED_SETS[items] = frozenset(items)
    return found


def response_id_of(span: Span) -> str | None:
    """The id the provider gave its answer (`msg_...`, `chatcmpl-...`), when an instrumentation recorded it."""
    for key in RESPONSE_ID_KEYS:
        value = span.attributes.get(key)
        if value is not None and value != "":
            return str(value)
    return None


def call_distance(a: CallSignature, b: CallSignature | None) -> int:
    """How far apart two records of calls lie in time (starts plus ends); no call is farthest."""
    if b is None:
        return _FARTHEST
    return abs(a.start_us - b.start_us) + abs(a.end_us - b.end_us)


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


def _overlap_us(a: CallSignature, b: CallSignature) -> int:
    return min(a.end_us, b.end_us) - max(a.start_us, b.start_us)


def _overlap_enough(a: CallSignature, b: CallSignature) -> bool:
    overlap = _overlap_us(a, b)
    shorter = max(1, min(a.end_us - a.start_us, b.end_us - b.start_us))
    return overlap >= 0 and overlap * 2 >= shorter


def _tokens_agree(a: int | None, b: int | None) -> bool:
    return a is None or b is None or a == b


def _failed_alike(a: CallSignature, b: CallSignature) -> bool:
    """Both failed, and with the same error type where both were classified."""
    return a.failed and b.failed and (a.error_type is None or b.error_type is None or a.error_type == b.error_type)


def same_call(a: CallSignature, b: CallSignature, *, siblings: bool) -> bool:
    """Whether two spans (ancestor/descendant, or siblings) record one provider call."""
    if a.kind != b.kind or a.duplicate_of is not None or b.duplicate_of is not None:
        return False
    if a.response_id is not None and b.response_id is not None:
        # The provider named its answer: that decides, whatever the counts. The ranges must still
        # touch, since a cache (the gateway's) may hand the same answer to two calls in a row.
        return a.response_id == b.response_id and _overlap_us(a, b) >= 0
    if not (
        _models_agree(a.models, b.models)
        and _overlap_enough(a, b)
        and _tokens_agree(a.prompt_tokens, b.prompt_tokens)
        and _tokens_agree(a.completion_tokens, b.completion_tokens)
    ):
        return False
    if not siblings:
        return True
    if a.scopes & b.scopes:
        return False  # one library records a call once: these are two calls made side by side
    if None not in (a.prompt_tokens, a.completion_tokens, b.prompt_tokens, b.completion_tokens):
        return True
    # A failed call has no usage to compare; two libraries' records of one failure still look alike,
    # which only counts when both libraries are known to differ.
    return bool(a.scopes) and bool(b.scopes) and _failed_alike(a, b)


def _from_provider_sdk(span: Span) -> bool:
    scope = span.attributes.get(SCOPE_ATTRIBUTE)
    return isinstance(scope, str) and scope.startswith(PROVIDER_SDK_SCOPES)


def merge_into_kept(kept: Span, other: Span) -> None:
    """The kept span takes what only the duplicate recorded, and a provider SDK's usage over its own."""
    if _from_provider_sdk(other) and not _from_provider_sdk(kept):
        for name in (*TOKEN_FIELDS, "tokens_per_second"):
            value = getattr(other, name)
            if value is not None:
                setattr(kept, name, value)
    for name in _MERGED_FIELDS:
        if getattr(kept, name) is None:
            value = getattr(other, name)
            if value is not None:
                setattr(kept, name, value)
    response_id = response_id_of(other)
    if response_id is not None and response_id_of(kept) is None:
        # The call's message id is the provider's id, so feedback sent with that id finds the call.
        kept.attributes[RESPONSE_ID_KEYS[0]] = response_id


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
