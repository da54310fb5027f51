"""One proxied call as the gateway saw it, and the Span it becomes (built after the answer is complete)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llmlens.codec.compressed import (
    MAX_DECOMPRESSED_BYTES,
    DecompressedTooLarge,
    InvalidCompressedBody,
    decompress_body,
)
from llmlens.model import ErrorType, Span, SpanKind, Status, classify_error

from ._attribution import Attribution
from ._bodies import read_body
from ._call import CallResult, Operation, read_request
from ._streams import read_stream
from ._upstreams import Upstream, WireFormat


@dataclass(slots=True)
class Exchange:
    upstream: Upstream
    wire: WireFormat
    operation: Operation
    method: str
    route: str  # the gateway path, e.g. /proxy/openai/v1/chat/completions
    request_body: bytes
    attribution: Attribution
    project: str
    trace_id: str
    span_id: str
    start_us: int  # wall clock, for the span's timestamp
    started: float  # perf_counter, for durations
    status: int | None = None
    content_type: str = ""
    content_encoding: str = ""
    chunks: list[bytes] = field(default_factory=list)
    chunk_times: list[float] = field(default_factory=list)  # perf_counter at each chunk's arrival
    ended: float = 0.0
    error_type: str | None = None  # set by the gateway: timeout, upstream unreachable, client gone...
    error_message: str | None = None
    cache_hit: bool = False
    blocked: bool = False
    # The request body with its Content-Encoding undone (None: it had none, or one not read here).
    request_content: bytes | bytearray | None = None
    max_decompressed_bytes: int = MAX_DECOMPRESSED_BYTES

    @property
    def streamed(self) -> bool:
        return self.content_type.startswith("text/event-stream")


def _decoded(data: bytes, encoding: str, max_bytes: int) -> bytes | bytearray:
    """The body as the client's library would read it; undecodable encodings, and answers that expand
    past `max_bytes`, give b'' (the call is then recorded without its answer's details)."""
    try:
        return decompress_body(data, encoding, max_bytes)
    except (InvalidCompressedBody, DecompressedTooLarge):
        return b""


def _result(ex: Exchange) -> CallResult:
    if ex.status is None:
        return CallResult()
    if ex.content_encoding:
        data = _decoded(b"".join(ex.chunks), ex.content_encoding, ex.max_decompressed_bytes)
        if ex.streamed:
            result = read_stream(ex.operation, [bytes(data)])
            result.first_content_chunk = None  # arrival times are lost under compression
            return result
        return read_body(ex.operation, ex.status, data)
    if ex.streamed:
        return read_stream(ex.operation, ex.chunks)
    return read_body(ex.operation, ex.status, b"".join(ex.chunks))


def _error_type(ex: Exchange, result: CallResult) -> str | None:
    if ex.error_type is not None:
        return ex.error_type
    if ex.status is not None and ex.status >= 400:
        return classify_error(result.error_code, result.error_message, status=ex.status).value
    if result.error_code or result.error_message:  # an error event inside a 200 stream
        return classify_error(result.error_code, result.error_message).value
    return None


def exchange_to_span(ex: Exchange) -> Span:
    request = read_request(ex.operation, ex.request_body if ex.request_content is None else ex.request_content)
    result = _result(ex)
    a = ex.attribution
    latency_ms = max(0.0, (ex.ended - ex.started) * 1000)
    error_type = _error_type(ex, result)
    metadata: dict[str, Any] = dict(a.properties)
    metadata["gateway_upstream"] = ex.upstream.name
    if a.problems:
        metadata["gateway_warnings"] = a.problems
    span = Span(
        trace_id=ex.trace_id,
        span_id=ex.span_id,
        kind=SpanKind.EMBEDDING.value if ex.operation == "embeddings" else SpanKind.LLM.value,
        name=f"{ex.operation} {request.model}" if request.model else ex.operation,
        project=ex.project,
        parent_span_id=a.parent_span_id,
        start_us=ex.start_us,
        latency_ms=round(latency_ms, 3),
        status=Status.ERROR.value if error_type else Status.OK.value,
        error_type=error_type,
        error_message=ex.error_message or result.error_message,
        service="llmlens-gateway",
        user_id=a.user_id,
        session_id=a.session_id,
        feature=a.feature,
        message_id=result.response_id,
        provider=ex.upstream.name,
        model=request.model,
        response_model=result.response_model,
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        total_tokens=result.total_tokens,
        cached_tokens=result.cached_tokens,
        cache_write_tokens=result.cache_write_tokens,
        reasoning_tokens=result.reasoning_tokens,
        streamed=ex.streamed if ex.chunks else request.stream,
        temperature=request.temperature,
        max_tokens=request.max_tokens,
        finish_reason=result.finish_reason,
        request_params=request.request_params,
        tools=request.tools,
        tool_calls=result.tool_calls or None,
        template_id=a.template_id,
        template_version=a.template_version,
        prompt=request.prompt,
        response=result.text or None,
        input_messages=request.input_messages,
        http_method=ex.method,
        http_route=ex.route,
        http_status=ex.status,
        http_request_bytes=len(ex.request_body),
        http_response_bytes=sum(len(c) for c in ex.chunks),
        cache_hit=ex.cache_hit,
        blocked=ex.blocked,
        metadata=metadata,
    )
    if span.total_tokens is None and span.prompt_tokens is not None and span.completion_tokens is not None:
        span.total_tokens = span.prompt_tokens + span.completion_tokens
    if result.text or result.tool_calls:
        message: dict[str, Any] = {"role": "assistant", "content": result.text}
        if result.tool_calls:
            message["tool_calls"] = result.tool_calls
        span.output_messages = [message]
    first = result.first_content_chunk
    if ex.streamed and first is not None and first < len(ex.chunk_times):
        first_at = ex.chunk_times[first]
        span.ttft_ms = round((first_at - ex.started) * 1000, 3)
        generating_s = ex.ended - first_at
        if span.completion_tokens and generating_s > 0:
            span.tokens_per_second = round(span.completion_tokens / generating_s, 3)
    return span


BLOCKED_ERROR = ErrorType.RATE_LIMIT.value
