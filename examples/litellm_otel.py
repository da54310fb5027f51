"""LiteLLM -> its OpenTelemetry callback -> OTLP -> llmlens.

LiteLLM's built-in `otel` callback writes OTel GenAI spans for every `completion()`; pointed at
llmlens's `/v1/traces`, each call is stored with its model, tokens, latency and cost.

    pip install litellm opentelemetry-sdk opentelemetry-exporter-otlp-proto-http
    LLMLENS_URL=http://127.0.0.1:4318 OPENAI_BASE_URL=https://api.openai.com/v1 OPENAI_API_KEY=sk-... \
        python examples/litellm_otel.py

Configuration by environment instead of code works too: OTEL_EXPORTER=otlp_http,
OTEL_ENDPOINT=$LLMLENS_URL/v1/traces and `litellm.callbacks = ["otel"]`.

LiteLLM's callback does not export a call's `metadata`, so these calls have no `feature`; run one
service per feature (`OTEL_SERVICE_NAME`), or send the calls through the llmlens gateway with an
`X-LLMLens-Feature` header (docs/gateway.md).
"""

from __future__ import annotations

import os

import litellm
import litellm.utils as litellm_utils
from litellm.integrations.opentelemetry import OpenTelemetry, OpenTelemetryConfig
from opentelemetry import trace

LLMLENS_URL = os.environ.get("LLMLENS_URL", "http://127.0.0.1:4318")


def main() -> None:
    otel = OpenTelemetry(
        config=OpenTelemetryConfig(
            exporter="otlp_http",
            endpoint=f"{LLMLENS_URL}/v1/traces",
            service_name="litellm-example",
            deployment_environment="dev",  # the `environment` column
        )
    )
    litellm.callbacks = [otel]

    response = litellm.completion(
        model="openai/gpt-4o-mini",
        api_base=os.environ.get("OPENAI_BASE_URL"),
        api_key=os.environ.get("OPENAI_API_KEY", "sk-example"),
        messages=[
            {"role": "system", "content": "You answer in one sentence."},
            {"role": "user", "content": "How do I rotate an API key?"},
        ],
        user="user-litellm",  # becomes the span's user id
    )
    print(response.choices[0].message.content)

    # LiteLLM runs its success callbacks (the OTel one among them) on a thread pool after the call
    # returns: wait for them, then flush the exporter before the process exits.
    litellm_utils.executor.shutdown(wait=True)
    provider = trace.get_tracer_provider()
    getattr(provider, "shutdown", lambda: None)()


if __name__ == "__main__":
    main()
