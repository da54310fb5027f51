"""The one wide span record every observation becomes, and the feedback record.

Pure data: no I/O. Every ingestion path (native events, the article's log lines, OTLP, the
gateway, the SDK) produces these; every store writes them. Timestamps are integer microseconds
since the epoch, UTC. JSON-valued fields hold plain Python values (dict/list/str/number).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from ._kinds import SpanKind, Status

JsonValue = Any

DEFAULT_PROJECT = "default"


@dataclass(slots=True)
class Span:
    """One observation: an HTTP request, an LLM call, a tool call, a retrieval, a chain step..."""

    trace_id: str
    span_id: str
    kind: str = SpanKind.OTHER.value
    name: str = ""
    project: str = DEFAULT_PROJECT
    parent_span_id: str | None = None
    # Timing. `start_us` is the record's `timestamp`; for the article's log lines it is the
    # logged time as sent.
    start_us: int = 0
    latency_ms: float | None = None
    status: str = Status.UNSET.value
    error_type: str | None = None
    error_message: str | None = None
    # Who and where.
    service: str | None = None
    environment: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    feature: str | None = None
    message_id: str | None = None
    # LLM call.
    provider: str | None = None
    model: str | None = None
    response_model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    cached_tokens: int | None = None  # cache reads
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None
    cost_usd: float | None = None  # the call's cost: the caller's if sent, else computed
    computed_cost_usd: float | None = None  # what our prices say, always kept beside it
    cost_source: str | None = None  # CostSource
    price_version: str | None = None
    ttft_ms: float | None = None
    tokens_per_second: float | None = None
    streamed: bool | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    finish_reason: str | None = None
    request_params: JsonValue = None  # every request parameter, as sent
    tools: JsonValue = None  # tool definitions offered to the model
    tool_calls: JsonValue = None  # [{"id", "name", "arguments"}] the model asked for
    # Prompt template.
    template_id: str | None = None
    template_version: str | None = None
    variables: JsonValue = None
    # Content.
    prompt: str | None = None  # flattened text of the input
    response: str | None = None  # flattened text of the output
    input_messages: JsonValue = None  # [{"role", "content", ...}]
    output_messages: JsonValue = None
    # Tool execution.
    tool_name: str | None = None
    tool_args: JsonValue = None
    tool_result: JsonValue = None
    tool_success: bool | None = None
    # Retrieval.
    retrieval_query: str | None = None
    documents: JsonValue = None  # [{"id", "content", "score", "metadata"}]
    # HTTP request layer.
    http_method: str | None = None
    http_route: str | None = None
    http_status: int | None = None
    http_request_bytes: int | None = None
    http_response_bytes: int | None = None
    # Gateway and replay.
    cache_hit: bool | None = None
    cost_saved_usd: float | None = None
    blocked: bool | None = None
    replay_of: str | None = None
    # Everything else the source said, kept rather than dropped.
    metadata: dict[str, Any] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def end_us(self) -> int | None:
        if self.latency_ms is None:
            return None
        return self.start_us + round(self.latency_ms * 1000)


@dataclass(slots=True)
class Feedback:
    """A user's signal about one message (LLM call): explicit thumbs or an implicit action."""

    feedback_id: str
    message_id: str
    feedback_type: str  # FeedbackType
    timestamp_us: int
    project: str = DEFAULT_PROJECT
    user_id: str | None = None
    session_id: str | None = None
    feedback_text: str | None = None
    trace_id: str | None = None
    span_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


SPAN_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Span))
FEEDBACK_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Feedback))
