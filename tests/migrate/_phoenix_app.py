"""An app traced with `arize-phoenix-otel` and OpenInference's OpenAI instrumentor, unchanged: its own process.

    python -m tests.migrate._phoenix_app --provider URL [--endpoint URL/v1/traces]

With `--endpoint`, `phoenix.otel.register(endpoint=...)` exports OTLP/HTTP there; without it, register()
reads PHOENIX_COLLECTOR_ENDPOINT and PHOENIX_GRPC_PORT (and PHOENIX_API_KEY) like any Phoenix app and
exports over gRPC. Under `using_attributes` (user, session, metadata, prompt template): a plain call,
a streamed one and a rate-limited one to the stand-in provider. Prints what the app saw as one JSON line.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

USER, SESSION = "phx-user-3", "phx-session-3"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--provider", required=True)
    parser.add_argument("--endpoint")
    args = parser.parse_args()

    import openai
    from openinference.instrumentation import using_attributes
    from openinference.instrumentation.openai import OpenAIInstrumentor
    from phoenix.otel import register

    tracer_provider = register(
        endpoint=args.endpoint, project_name="support-bot", batch=True, set_global_tracer_provider=False
    )
    OpenAIInstrumentor().instrument(tracer_provider=tracer_provider)
    tracer = tracer_provider.get_tracer("support-bot")
    client = openai.OpenAI(base_url=f"{args.provider}/v1", api_key="sk-test", max_retries=0)
    seen: dict[str, Any] = {"calls": {}}
    with (
        using_attributes(
            user_id=USER,
            session_id=SESSION,
            metadata={"feature": "phoenix_chat", "tier": "pro"},
            prompt_template="Answer: {q}",
            prompt_template_version="v4",
            prompt_template_variables={"q": "Capital of France?"},
        ),
        tracer.start_as_current_span("handle-request") as root,
    ):
        seen["trace_id"] = format(root.get_span_context().trace_id, "032x")
        plain = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Capital of France?"}], temperature=0.1
        )
        seen["calls"]["plain"] = _usage(plain.usage) | {"text": plain.choices[0].message.content, "id": plain.id}
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
        seen["calls"]["stream"] = _usage(usage) | {"text": text, "id": stream_id}
        try:
            client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "Too many"}],
                extra_headers={"X-Fake-Scenario": "ratelimit"},
            )
        except openai.RateLimitError as exc:
            seen["calls"]["failed"] = {"status": exc.status_code}
    seen["flushed"] = tracer_provider.force_flush(30_000)
    tracer_provider.shutdown()
    print(json.dumps(seen))


def _usage(usage: Any) -> dict[str, Any]:
    cached = usage.prompt_tokens_details.cached_tokens if usage.prompt_tokens_details else 0
    reasoning = usage.completion_tokens_details.reasoning_tokens if usage.completion_tokens_details else 0
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "cached_tokens": cached or 0,
        "reasoning_tokens": reasoning or 0,
    }


if __name__ == "__main__":
    main()
