"""LlamaIndex -> OpenInference -> OTLP -> llmlens.

A LlamaIndex OpenAI LLM called through chat and complete, traced by OpenInference's LlamaIndex
instrumentor and exported over OTLP/HTTP to llmlens's `/v1/traces`.

    pip install llama-index-core llama-index-llms-openai openinference-instrumentation-llama-index \
        opentelemetry-sdk opentelemetry-exporter-otlp-proto-http
    LLMLENS_URL=http://127.0.0.1:4318 OPENAI_BASE_URL=https://api.openai.com/v1 OPENAI_API_KEY=sk-... \
        python examples/llamaindex_openinference.py
"""

from __future__ import annotations

import os

from llama_index.core.llms import ChatMessage
from llama_index.llms.openai import OpenAI
from openinference.instrumentation import using_attributes
from openinference.instrumentation.llama_index import LlamaIndexInstrumentor
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

LLMLENS_URL = os.environ.get("LLMLENS_URL", "http://127.0.0.1:4318")


def main() -> None:
    provider = TracerProvider(
        resource=Resource.create({"service.name": "llamaindex-example", "deployment.environment.name": "dev"})
    )
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{LLMLENS_URL}/v1/traces")))
    LlamaIndexInstrumentor().instrument(tracer_provider=provider)

    llm = OpenAI(
        model="gpt-4o-mini",
        api_base=os.environ.get("OPENAI_BASE_URL"),
        api_key=os.environ.get("OPENAI_API_KEY", "sk-example"),
        temperature=0.1,
    )
    with using_attributes(user_id="user-llamaindex", metadata={"feature": "search"}):
        reply = llm.chat(
            [
                ChatMessage(role="system", content="You answer in one sentence."),
                ChatMessage(role="user", content="Which plan includes SSO?"),
            ]
        )
    print(reply.message.content)
    provider.shutdown()


if __name__ == "__main__":
    main()
