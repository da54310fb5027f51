"""LangChain -> OpenInference -> OTLP -> llmlens.

A prompt | ChatOpenAI | parser chain, traced by OpenInference's LangChain instrumentor and exported
over OTLP/HTTP to llmlens's `/v1/traces`. User, session and feature ride along via
`using_attributes`, so the call shows up in cost-by-user and cost-by-feature.

    pip install langchain-openai openinference-instrumentation-langchain opentelemetry-sdk \
        opentelemetry-exporter-otlp-proto-http
    LLMLENS_URL=http://127.0.0.1:4318 OPENAI_BASE_URL=https://api.openai.com/v1 OPENAI_API_KEY=sk-... \
        python examples/langchain_openinference.py
"""

from __future__ import annotations

import os

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_openai import ChatOpenAI
from openinference.instrumentation import using_attributes
from openinference.instrumentation.langchain import LangChainInstrumentor
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

LLMLENS_URL = os.environ.get("LLMLENS_URL", "http://127.0.0.1:4318")


def main() -> None:
    # 1. An OpenTelemetry tracer provider that exports to llmlens (any OTLP collector works the same way).
    provider = TracerProvider(
        resource=Resource.create({"service.name": "langchain-example", "deployment.environment.name": "dev"})
    )
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{LLMLENS_URL}/v1/traces")))
    # 2. OpenInference turns LangChain runs (chains, LLM calls, tools, retrievers) into spans.
    LangChainInstrumentor().instrument(tracer_provider=provider)

    # 3. The application, unchanged.
    prompt = ChatPromptTemplate.from_messages([("system", "You answer in one sentence."), ("user", "{question}")])
    llm = ChatOpenAI(
        model="gpt-4o-mini",
        base_url=os.environ.get("OPENAI_BASE_URL"),
        api_key=os.environ.get("OPENAI_API_KEY", "sk-example"),
        temperature=0.2,
    )
    chain = prompt | llm | StrOutputParser()
    with using_attributes(user_id="user-langchain", session_id="session-langchain", metadata={"feature": "faq"}):
        answer = chain.invoke({"question": "What is the refund window?"})
    print(answer)

    # 4. Flush before the process exits.
    provider.shutdown()


if __name__ == "__main__":
    main()
