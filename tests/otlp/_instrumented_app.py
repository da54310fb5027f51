"""A small LLM app under one real instrumentation library, exporting with the real OTLP exporters.

Run in its own process (instrumentors patch globally):
    python -m tests.otlp._instrumented_app LIB --traces URL --provider URL [--grpc HOST:PORT]
LIB: openinference, otel-v2, traceloop, openinference-anthropic, openinference-langchain,
openinference-rag. It serves one request: a root SERVER span (user and session on it only) around the
library's calls (OpenAI: plain, streamed, rate-limited; Anthropic: plain, rate-limited; LangChain: a
prompt | ChatOpenAI chain; RAG: an embedding, a LangChain retriever, a chat call), then prints what
the app saw (trace id, root span id, usage and text per call) as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

USER, SESSION = "user-e2e-1", "sess-e2e-1"


def _providers(args: argparse.Namespace) -> tuple[TracerProvider, Any]:
    resource = Resource.create({"service.name": "e2e-app", "deployment.environment": "test"})
    tracer_provider = TracerProvider(resource=resource)
    if args.grpc:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter

        tracer_provider.add_span_processor(BatchSpanProcessor(GrpcSpanExporter(endpoint=args.grpc, insecure=True)))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=f"{args.traces}/v1/traces")
        tracer_provider.add_span_processor(BatchSpanProcessor(exporter))
    logger_provider = None
    if args.lib == "otel-v2":
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

        logger_provider = LoggerProvider(resource=resource)
        logger_provider.add_log_record_processor(
            BatchLogRecordProcessor(OTLPLogExporter(endpoint=f"{args.traces}/v1/logs"))
        )
    return tracer_provider, logger_provider


def _instrument(lib: str, tracer_provider: TracerProvider, logger_provider: Any) -> None:
    if lib == "openinference":
        from openinference.instrumentation.openai import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=tracer_provider)
    elif lib == "otel-v2":
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor as OtelOpenAI

        OtelOpenAI().instrument(tracer_provider=tracer_provider, logger_provider=logger_provider)
    elif lib == "traceloop":
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor as TraceloopOpenAI

        TraceloopOpenAI().instrument(tracer_provider=tracer_provider)
    elif lib == "openinference-anthropic":
        from openinference.instrumentation.anthropic import AnthropicInstrumentor

        AnthropicInstrumentor().instrument(tracer_provider=tracer_provider)
    elif lib in ("openinference-langchain", "openinference-rag"):
        from openinference.instrumentation.langchain import LangChainInstrumentor
        from openinference.instrumentation.openai import OpenAIInstrumentor

        LangChainInstrumentor().instrument(tracer_provider=tracer_provider)
        # Both: LangChain's LLM span and the OpenAI span beneath it record one call (counted once).
        OpenAIInstrumentor().instrument(tracer_provider=tracer_provider)
    else:
        raise SystemExit(f"unknown library {lib!r}")


def _openai_usage(usage: Any) -> dict[str, Any]:
    """The token counts of an OpenAI answer as the app received them (cache reads inside the prompt)."""
    if usage is None:
        return {"prompt_tokens": None, "completion_tokens": None}
    cached = usage.prompt_tokens_details.cached_tokens if usage.prompt_tokens_details else None
    reasoning = usage.completion_tokens_details.reasoning_tokens if usage.completion_tokens_details else None
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "cached_tokens": cached or 0,
        "reasoning_tokens": reasoning or 0,
    }


def _openai_calls(provider: str) -> list[dict[str, Any]]:
    import openai

    client = openai.OpenAI(base_url=f"{provider}/v1", api_key="sk-test", max_retries=0)
    calls: list[dict[str, Any]] = []
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}]
    plain = client.chat.completions.create(model="gpt-4o-mini", messages=messages, temperature=0.2)  # type: ignore[arg-type]
    calls.append(
        {
            "streamed": False,
            "id": plain.id,
            **_openai_usage(plain.usage),
            "text": plain.choices[0].message.content,
        }
    )
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Count to three."}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, usage, stream_id = "", None, None
    for chunk in stream:
        stream_id = chunk.id
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
        if chunk.usage is not None:
            usage = chunk.usage
    calls.append({"streamed": True, "id": stream_id, **_openai_usage(usage), "text": text})
    try:
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "again"}],
            extra_headers={"X-Fake-Scenario": "ratelimit"},
        )
    except openai.RateLimitError:
        calls.append({"streamed": False, "error": "rate_limit"})
    return calls


def _anthropic_calls(provider: str) -> list[dict[str, Any]]:
    import anthropic

    client = anthropic.Anthropic(base_url=provider, api_key="sk-ant-test", max_retries=0)
    msg = client.messages.create(
        model="claude-sonnet-4-5",
        max_tokens=200,
        system="Be brief.",
        messages=[{"role": "user", "content": "Capital of France?"}],
    )
    text = "".join(block.text for block in msg.content if block.type == "text")
    calls: list[dict[str, Any]] = [
        {
            "streamed": False,
            "id": msg.id,
            # Anthropic's own counts: `input_tokens` leaves out the cache reads and writes.
            "prompt_tokens": msg.usage.input_tokens,
            "completion_tokens": msg.usage.output_tokens,
            "cached_tokens": msg.usage.cache_read_input_tokens or 0,
            "cache_write_tokens": msg.usage.cache_creation_input_tokens or 0,
            "text": text,
        }
    ]
    try:
        client.messages.create(
            model="claude-sonnet-4-5",
            max_tokens=10,
            messages=[{"role": "user", "content": "again"}],
            extra_headers={"X-Fake-Scenario": "ratelimit"},
        )
    except anthropic.RateLimitError:
        calls.append({"streamed": False, "error": "rate_limit"})
    return calls


def _langchain_calls(provider: str) -> list[dict[str, Any]]:
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(model="gpt-4o-mini", base_url=f"{provider}/v1", api_key="sk-test", max_retries=0)  # type: ignore[arg-type]
    chain = ChatPromptTemplate.from_messages([("system", "Be brief."), ("user", "{question}")]) | llm
    reply = chain.invoke({"question": "Capital of France?"})
    usage = reply.usage_metadata or {}
    return [
        {
            "streamed": False,
            # The provider's id of the answer (`reply.id` is LangChain's own run id).
            "id": reply.response_metadata.get("id"),
            "prompt_tokens": usage.get("input_tokens"),
            "completion_tokens": usage.get("output_tokens"),
            "cached_tokens": (usage.get("input_token_details") or {}).get("cache_read", 0),
            "reasoning_tokens": (usage.get("output_token_details") or {}).get("reasoning", 0),
            "text": reply.content,
        }
    ]


def _rag_calls(provider: str) -> list[dict[str, Any]]:
    """Embed the question (OpenAI embeddings), retrieve (a LangChain retriever), answer (chat)."""
    import openai
    from langchain_core.documents import Document
    from langchain_core.embeddings import DeterministicFakeEmbedding
    from langchain_core.vectorstores import InMemoryVectorStore

    client = openai.OpenAI(base_url=f"{provider}/v1", api_key="sk-test", max_retries=0)
    question = "How long do refunds take?"
    embedded = client.embeddings.create(model="text-embedding-3-small", input=[question])
    store = InMemoryVectorStore(DeterministicFakeEmbedding(size=16))
    store.add_documents(
        [
            Document(id="kb-1", page_content="Refunds are paid within 5 business days."),
            Document(id="kb-2", page_content="Shipping takes 2 days."),
            Document(id="kb-3", page_content="Passwords reset by email."),
        ]
    )
    docs = store.as_retriever(search_kwargs={"k": 2}).invoke(question)
    context = "\n".join(d.page_content for d in docs)
    answer = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "system", "content": f"Use: {context}"}, {"role": "user", "content": question}],
    )
    return [
        {
            "kind": "embedding",
            "prompt_tokens": embedded.usage.prompt_tokens,
            "model": "text-embedding-3-small",
            "text": question,
        },
        {"kind": "retrieval", "query": question, "documents": [d.page_content for d in docs]},
        {"streamed": False, "id": answer.id, **_openai_usage(answer.usage), "text": answer.choices[0].message.content},
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("lib")
    parser.add_argument("--traces", required=True, help="llmlens base URL for OTLP/HTTP")
    parser.add_argument("--provider", required=True, help="the stand-in provider's base URL")
    parser.add_argument("--grpc", help="host:port of an OTLP/gRPC receiver (traces over gRPC)")
    args = parser.parse_args()
    os.environ.setdefault("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    os.environ.setdefault("TRACELOOP_TRACE_CONTENT", "true")
    tracer_provider, logger_provider = _providers(args)
    _instrument(args.lib, tracer_provider, logger_provider)
    tracer = tracer_provider.get_tracer("e2e-app")
    root_attributes: dict[str, Any] = {
        "http.request.method": "POST",
        "http.route": "/chat",
        "http.response.status_code": 200,
        "user.id": USER,
        "session.id": SESSION,
        "traceloop.association.properties.user_id": USER,
        "traceloop.association.properties.session_id": SESSION,
        "llmlens.feature": "support-chat",
    }
    with tracer.start_as_current_span("POST /chat", kind=trace.SpanKind.SERVER, attributes=root_attributes) as root:
        if args.lib == "openinference-anthropic":
            calls = _anthropic_calls(args.provider)
        elif args.lib == "openinference-langchain":
            calls = _langchain_calls(args.provider)
        elif args.lib == "openinference-rag":
            calls = _rag_calls(args.provider)
        else:
            calls = _openai_calls(args.provider)
        context = root.get_span_context()
    # True once every span (and log record) was exported: llmlens answers an export after committing it.
    flushed = tracer_provider.force_flush()
    tracer_provider.shutdown()
    if logger_provider is not None:
        flushed = logger_provider.force_flush() and flushed
        logger_provider.shutdown()
    trace_id, root_id = f"{context.trace_id:032x}", f"{context.span_id:016x}"
    print(json.dumps({"trace_id": trace_id, "root": root_id, "calls": calls, "flushed": flushed}))


if __name__ == "__main__":
    main()
