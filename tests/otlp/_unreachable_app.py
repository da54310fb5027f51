"""An app under one real instrumentation library whose provider cannot be reached.

Run in its own process (instrumentors patch globally):
    python -m tests.otlp._unreachable_app LIB --traces URL --provider ORIGIN
LIB: openinference, otel-v2, traceloop (OpenAI), openinference-anthropic. One root span around one
call that fails to connect; prints the trace id and the exception the app saw as JSON.
"""

from __future__ import annotations

import argparse
import json

from tests.otlp._instrumented_app import _instrument, _providers


def _call(lib: str, origin: str) -> BaseException:
    if lib == "openinference-anthropic":
        import anthropic

        try:
            anthropic.Anthropic(base_url=origin, api_key="sk-ant-test", max_retries=0).messages.create(
                model="claude-sonnet-4-5", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
            )
        except anthropic.APIConnectionError as exc:
            return exc
        raise SystemExit("the call to an unreachable provider succeeded")
    import openai

    try:
        openai.OpenAI(base_url=f"{origin}/v1", api_key="sk-test", max_retries=0).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
    except openai.APIConnectionError as exc:
        return exc
    raise SystemExit("the call to an unreachable provider succeeded")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("lib")
    parser.add_argument("--traces", required=True, help="llmlens base URL for OTLP/HTTP")
    parser.add_argument("--provider", required=True, help="scheme://host:port nothing answers on")
    args = parser.parse_args()
    args.grpc = None
    tracer_provider, logger_provider = _providers(args)
    _instrument(args.lib, tracer_provider, logger_provider)
    with tracer_provider.get_tracer("unreachable-app").start_as_current_span("POST /chat") as root:
        seen = _call(args.lib, args.provider)
        trace_id = f"{root.get_span_context().trace_id:032x}"
    tracer_provider.force_flush()
    tracer_provider.shutdown()
    if logger_provider is not None:
        logger_provider.shutdown()
    print(json.dumps({"trace_id": trace_id, "exception": type(seen).__name__}))


if __name__ == "__main__":
    main()
