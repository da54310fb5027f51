"""Realistic LLM traces as OTLP/HTTP protobuf batches, shared by the llmlens and Phoenix ingest benches.

Each trace: an app request span, a chain span, an LLM span (~1.5 KB prompt, ~0.5 KB response) and a
tool span, with OpenInference attributes (Phoenix reads those) so both systems see the same data.
"""

from __future__ import annotations

import os
import random
import time

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

SPANS_PER_TRACE = 4
_WORDS = [
    "the",
    "invoice",
    "customer",
    "account",
    "refund",
    "policy",
    "shipping",
    "order",
    "password",
    "reset",
    "billing",
    "cycle",
    "support",
    "ticket",
    "subscription",
    "upgrade",
    "plan",
    "annual",
    "monthly",
    "discount",
    "region",
    "delivery",
    "warehouse",
    "tracking",
    "number",
    "status",
    "update",
]
MODELS = ("gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet-20241022")


def _text(rng: random.Random, size: int) -> str:
    out: list[str] = []
    n = 0
    while n < size:
        w = rng.choice(_WORDS)
        out.append(w)
        n += len(w) + 1
    return " ".join(out)[:size]


def _kv(key: str, value: str | int | float) -> KeyValue:
    if isinstance(value, (bool, int)):
        return KeyValue(key=key, value=AnyValue(int_value=int(value)))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def _span(
    trace_id: bytes, parent: bytes | None, name: str, start_ns: int, dur_ns: int, attrs: dict[str, str | int | float]
) -> Span:
    return Span(
        trace_id=trace_id,
        span_id=os.urandom(8),
        parent_span_id=parent or b"",
        name=name,
        kind=Span.SPAN_KIND_INTERNAL,
        start_time_unix_nano=start_ns,
        end_time_unix_nano=start_ns + dur_ns,
        attributes=[_kv(k, v) for k, v in attrs.items()],
        status=Status(code=Status.STATUS_CODE_OK),
    )


def trace_spans(rng: random.Random, now_ns: int, *, text: bool = True) -> list[Span]:
    trace_id = os.urandom(16)
    start = now_ns - rng.randrange(3_600_000_000_000)
    latency = int(rng.lognormvariate(6.8, 0.6) * 1_000_000)
    user = f"user-{rng.randrange(500):03d}"
    model = rng.choice(MODELS)
    prompt = _text(rng, 1500) if text else ""
    response = _text(rng, 500) if text else ""
    pt, ct = rng.randint(300, 500), rng.randint(80, 150)
    req = _span(
        trace_id,
        None,
        "POST /api/chat",
        start,
        latency + 40_000_000,
        {
            "openinference.span.kind": "CHAIN",
            "http.method": "POST",
            "http.route": "/api/chat",
            "http.status_code": 200,
            "user.id": user,
            "session.id": f"s-{user}",
        },
    )
    chain = _span(
        trace_id,
        req.span_id,
        "answer_question",
        start + 1_000_000,
        latency + 30_000_000,
        {
            "openinference.span.kind": "CHAIN",
            "input.value": prompt[:200],
            "user.id": user,
            "metadata": '{"feature": "support_chat"}',
        },
    )
    llm = _span(
        trace_id,
        chain.span_id,
        "ChatCompletion",
        start + 2_000_000,
        latency,
        {
            "openinference.span.kind": "LLM",
            "llm.model_name": model,
            "llm.provider": "openai",
            "llm.system": "openai",
            "llm.input_messages.0.message.role": "user",
            "llm.input_messages.0.message.content": prompt,
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.content": response,
            "llm.token_count.prompt": pt,
            "llm.token_count.completion": ct,
            "llm.token_count.total": pt + ct,
            "llm.invocation_parameters": '{"temperature": 0.2}',
            "user.id": user,
            "session.id": f"s-{user}",
        },
    )
    tool = _span(
        trace_id,
        chain.span_id,
        "search_kb",
        start + latency + 3_000_000,
        20_000_000,
        {
            "openinference.span.kind": "TOOL",
            "tool.name": "search_kb",
            "input.value": '{"q": "' + prompt[:60] + '"}',
            "output.value": response[:200],
        },
    )
    return [req, chain, llm, tool]


def build_batches(n_spans: int, spans_per_batch: int, seed: int = 7, *, text: bool = True) -> list[bytes]:
    """Serialized ExportTraceServiceRequest bodies holding `n_spans` spans (whole traces) in total."""
    rng = random.Random(seed)
    now_ns = time.time_ns()
    traces_per_batch = max(1, spans_per_batch // SPANS_PER_TRACE)
    bodies = []
    made = 0
    while made < n_spans:
        spans: list[Span] = []
        for _ in range(traces_per_batch):
            spans += trace_spans(rng, now_ns, text=text)
        made += len(spans)
        req = ExportTraceServiceRequest(
            resource_spans=[
                ResourceSpans(
                    resource=Resource(
                        attributes=[_kv("service.name", "bench-app"), _kv("openinference.project.name", "default")]
                    ),
                    scope_spans=[ScopeSpans(spans=spans)],
                )
            ]
        )
        bodies.append(req.SerializeToString())
    return bodies
