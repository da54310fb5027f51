"""A small LLM app whose calls are recorded by two instrumentations at once, exporting with the real OTLP exporter.

Run in its own process (instrumentors patch globally):
    python -m tests.otlp._double_instrumented_app LIBS --traces URL --provider URL [--scenarios a,b]
LIBS is one library or several joined by `+`: `openinference`, `otel-v2`, `traceloop` (OpenAI);
`openinference-anthropic`, `openllmetry-anthropic`, `anthropic-sdk` (the anthropic package's own spans).
Each scenario runs under its own root span, so it is a trace of its own: a rate-limited call, a call that
times out on a stalled provider, a streamed call, a retry after a 429, two calls timing out side by
side, two identical calls side by side. Prints what the app saw, per scenario, as JSON.
"""

from __future__ import annotations

import argparse
import contextvars
import json
import os
import threading
from collections.abc import Callable
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

OPENAI_LIBS = ("openinference", "otel-v2", "traceloop")
ANTHROPIC_LIBS = ("openinference-anthropic", "openllmetry-anthropic", "anthropic-sdk")
SCENARIOS = ("ratelimit", "timeout", "stream", "stream-helper", "retry", "parallel-timeouts", "parallel-same")
# Short enough to keep the test quick, long enough that a loaded machine still connects first.
TIMEOUT_S = 0.5
ANTHROPIC_MODEL = "claude-sonnet-4-5"
OPENAI_MODEL = "gpt-4o-mini"


def _instrument(lib: str, tracer_provider: TracerProvider) -> None:
    if lib == "openinference":
        from openinference.instrumentation.openai import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=tracer_provider)
    elif lib == "otel-v2":
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor as OtelOpenAI

        OtelOpenAI().instrument(tracer_provider=tracer_provider)
    elif lib == "traceloop":
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor as TraceloopOpenAI

        TraceloopOpenAI().instrument(tracer_provider=tracer_provider)
    elif lib == "openinference-anthropic":
        from openinference.instrumentation.anthropic import AnthropicInstrumentor

        AnthropicInstrumentor().instrument(tracer_provider=tracer_provider)
    elif lib == "openllmetry-anthropic":
        from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor as TraceloopAnthropic

        TraceloopAnthropic().instrument(tracer_provider=tracer_provider)
    elif lib != "anthropic-sdk":  # the client's own spans are switched on where the client is made
        raise SystemExit(f"unknown library {lib!r}")


class _AnthropicApp:
    def __init__(self, provider: str, tracer_provider: TracerProvider, sdk_spans: bool) -> None:
        import anthropic

        self.anthropic = anthropic
        # The SDK's own GenAI spans: on with a tracer provider, off otherwise.
        telemetry: Any = {"tracer_provider": tracer_provider} if sdk_spans else False
        self.client = anthropic.Anthropic(
            base_url=provider, api_key="sk-ant-test", max_retries=0, open_telemetry=telemetry
        )

    def call(self, scenario: str | None = None) -> dict[str, Any]:
        headers = {"X-Fake-Scenario": scenario} if scenario else {}
        messages = [{"role": "user", "content": "Capital of France?"}]
        try:
            msg = self.client.messages.create(
                model=ANTHROPIC_MODEL,
                max_tokens=200,
                messages=messages,  # type: ignore[arg-type]
                extra_headers=headers,
                timeout=TIMEOUT_S if scenario == "hang" else 30.0,
            )
        except self.anthropic.RateLimitError:
            return {"error": "rate_limit"}
        except self.anthropic.APITimeoutError:
            return {"error": "timeout"}
        text = "".join(block.text for block in msg.content if block.type == "text")
        return _seen(False, msg.id, msg.usage.input_tokens, msg.usage.output_tokens, text)

    def stream(self) -> dict[str, Any]:
        events = self.client.messages.create(
            model=ANTHROPIC_MODEL,
            max_tokens=200,
            messages=[{"role": "user", "content": "Count to three."}],
            stream=True,
        )
        text, message_id, prompt_tokens, completion_tokens = "", None, None, None
        for event in events:
            if event.type == "message_start":
                message_id, prompt_tokens = event.message.id, event.message.usage.input_tokens
            elif event.type == "content_block_delta" and event.delta.type == "text_delta":
                text += event.delta.text
            elif event.type == "message_delta":
                completion_tokens = event.usage.output_tokens  # the running total: the last one is the count
        return _seen(True, message_id, prompt_tokens, completion_tokens, text)

    def stream_helper(self) -> dict[str, Any]:
        with self.client.messages.stream(
            model=ANTHROPIC_MODEL, max_tokens=200, messages=[{"role": "user", "content": "Count to four."}]
        ) as stream:
            text = "".join(stream.text_stream)
            msg = stream.get_final_message()
        return _seen(True, msg.id, msg.usage.input_tokens, msg.usage.output_tokens, text)


class _OpenAIApp:
    def __init__(self, provider: str) -> None:
        import openai

        self.openai = openai
        self.client = openai.OpenAI(base_url=f"{provider}/v1", api_key="sk-test", max_retries=0)

    def call(self, scenario: str | None = None) -> dict[str, Any]:
        headers = {"X-Fake-Scenario": scenario} if scenario else {}
        try:
            reply = self.client.chat.completions.create(
                model=OPENAI_MODEL,
                messages=[{"role": "user", "content": "Capital of France?"}],
                extra_headers=headers,
                timeout=TIMEOUT_S if scenario == "hang" else 30.0,
            )
        except self.openai.RateLimitError:
            return {"error": "rate_limit"}
        except self.openai.APITimeoutError:
            return {"error": "timeout"}
        usage = reply.usage
        prompt_tokens, completion_tokens = (usage.prompt_tokens, usage.completion_tokens) if usage else (None, None)
        return _seen(False, reply.id, prompt_tokens, completion_tokens, reply.choices[0].message.content)

    def stream(self) -> dict[str, Any]:
        chunks = self.client.chat.completions.create(
            model=OPENAI_MODEL,
            messages=[{"role": "user", "content": "Count to three."}],
            stream=True,
            stream_options={"include_usage": True},
        )
        text, stream_id, usage = "", None, None
        for chunk in chunks:
            stream_id = chunk.id
            if chunk.choices and chunk.choices[0].delta.content:
                text += chunk.choices[0].delta.content
            if chunk.usage is not None:
                usage = chunk.usage
        prompt_tokens, completion_tokens = (usage.prompt_tokens, usage.completion_tokens) if usage else (None, None)
        return _seen(True, stream_id, prompt_tokens, completion_tokens, text)


def _seen(streamed: bool, call_id: str | None, prompt: int | None, completion: int | None, text: Any) -> dict[str, Any]:
    return {"streamed": streamed, "id": call_id, "prompt_tokens": prompt, "completion_tokens": completion, "text": text}


def _side_by_side(call: Callable[[], dict[str, Any]]) -> list[dict[str, Any]]:
    """Two calls at once, each in a thread that carries the current trace context."""
    start = threading.Barrier(2)
    results: list[dict[str, Any]] = [{}, {}]

    def run(slot: int) -> None:
        start.wait(timeout=10)
        results[slot] = call()

    threads = [
        threading.Thread(target=contextvars.copy_context().run, args=(run, slot)) for slot in range(len(results))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def _scenario(app: _AnthropicApp | _OpenAIApp, name: str) -> list[dict[str, Any]]:
    if name == "ratelimit":
        return [app.call("ratelimit")]
    if name == "timeout":
        return [app.call("hang")]  # the stand-in sends nothing; the client gives up after TIMEOUT_S
    if name == "stream":
        return [app.stream()]
    if name == "stream-helper":
        if not isinstance(app, _AnthropicApp):
            raise SystemExit("stream-helper is an Anthropic scenario")
        return [app.stream_helper()]
    if name == "retry":
        first = app.call("ratelimit")
        return [first, app.call()]  # the app tries again: a second real call
    if name == "parallel-timeouts":
        return _side_by_side(lambda: app.call("hang"))
    if name == "parallel-same":
        # The "slow" scenario keeps both calls open at once; same prompt, so same tokens and text.
        return _side_by_side(lambda: app.call("slow"))
    raise SystemExit(f"unknown scenario {name!r}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("libs")
    parser.add_argument("--traces", required=True, help="llmlens base URL for OTLP/HTTP")
    parser.add_argument("--provider", required=True, help="the stand-in provider's base URL")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    args = parser.parse_args()
    libs = args.libs.split("+")
    os.environ.setdefault("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    os.environ.setdefault("TRACELOOP_TRACE_CONTENT", "true")
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    resource = Resource.create({"service.name": "double-app", "deployment.environment": "test"})
    tracer_provider = TracerProvider(resource=resource)
    # Everything leaves in one export at the end, so each run is ingested the same way.
    exporter = OTLPSpanExporter(endpoint=f"{args.traces}/v1/traces")
    tracer_provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=600_000))
    for lib in libs:
        _instrument(lib, tracer_provider)
    provider = args.provider.rstrip("/")
    app: _AnthropicApp | _OpenAIApp
    if all(lib in ANTHROPIC_LIBS for lib in libs):
        app = _AnthropicApp(provider, tracer_provider, sdk_spans="anthropic-sdk" in libs)
    elif all(lib in OPENAI_LIBS for lib in libs):
        app = _OpenAIApp(provider)
    else:
        raise SystemExit(f"{args.libs}: all OpenAI or all Anthropic libraries, please")
    tracer = tracer_provider.get_tracer("double-app")
    seen: dict[str, Any] = {}
    for name in args.scenarios.split(","):
        with tracer.start_as_current_span(f"POST /{name}", kind=trace.SpanKind.SERVER) as root:
            calls = _scenario(app, name)
            context = root.get_span_context()
        seen[name] = {"trace_id": f"{context.trace_id:032x}", "root": f"{context.span_id:016x}", "calls": calls}
    tracer_provider.force_flush()
    tracer_provider.shutdown()
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
