"""Caller-side cost of the SDK beside the OpenTelemetry SDK (BatchSpanProcessor + OTLP/HTTP exporter).

    python -m benchmarks.bench_sdk [--json results.json] [--quick]

Measures, per call on the app's thread: `log_llm_call`; an empty `@llmlens.trace` function; the
OpenTelemetry span doing the same work (11 attributes; and an empty decorated function); and a
chat completion through the real `openai` client against the local stand-in provider, bare, with
`llmlens.instrument_openai()` and with OpenLLMetry's OpenAI instrumentor (the instrumentation's
own cost: the call's wall time minus the time inside the genuine client method). Both exporters send to
the same sink, a separate process answering 200, so their background threads do real work too.
"""

from __future__ import annotations

import argparse
import gc
import json
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

_SINK = r"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = b'{"accepted": 0, "rejected": []}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
s = ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"""

ATTRIBUTES = {
    "gen_ai.system": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
    "gen_ai.usage.input_tokens": 120,
    "gen_ai.usage.output_tokens": 30,
    "gen_ai.prompt": "Summarise the following text.",
    "gen_ai.completion": "A summary.",
    "llm.latency_ms": 850.0,
    "llm.cost_usd": 0.0006,
    "user.id": "user-1",
    "session.id": "session-1",
}


def _timed(fn: Callable[[], Any], calls: int, chunk: int, settle: Callable[[], Any]) -> list[float]:
    """Per-call wall time in µs, in chunks so the queues drain (untimed) between them."""
    out: list[float] = []
    clock = time.perf_counter_ns
    done = 0
    while done < calls:
        n = min(chunk, calls - done)
        for _ in range(n):
            t0 = clock()
            fn()
            out.append((clock() - t0) / 1000)
        done += n
        settle()
    return out


def _summary(name: str, samples: list[float]) -> dict[str, Any]:
    q = statistics.quantiles(samples, n=100)
    return {
        "case": name,
        "calls": len(samples),
        "median_us": statistics.median(samples),
        "p90_us": q[89],
        "p99_us": q[98],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--quick", action="store_true", help="fewer calls, for a smoke run")
    args = parser.parse_args(argv)
    micro_calls, http_calls = (5_000, 100) if args.quick else (50_000, 200)

    sink = subprocess.Popen([sys.executable, "-c", _SINK], stdout=subprocess.PIPE, text=True)
    assert sink.stdout is not None
    sink_url = f"http://127.0.0.1:{int(sink.stdout.readline())}"
    results: list[dict[str, Any]] = []
    try:
        import llmlens

        llmlens.init(url=sink_url, max_queue_size=20_000)

        def flush_llmlens() -> None:
            llmlens.flush(10)

        def log_call() -> None:
            llmlens.log_llm_call(
                "Summarise the following text.",
                "A summary.",
                "gpt-4o-mini",
                120,
                30,
                850.0,
                0.0006,
                {"user_id": "user-1", "session_id": "session-1"},
            )

        @llmlens.trace
        def empty_traced() -> None:
            pass

        gc.collect()
        results.append(_summary("llmlens log_llm_call", _timed(log_call, micro_calls, 5_000, flush_llmlens)))
        results.append(
            _summary("llmlens @trace (empty function)", _timed(empty_traced, micro_calls, 5_000, flush_llmlens))
        )

        from opentelemetry import trace as otel_trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider = TracerProvider()
        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{sink_url}/v1/traces"), max_queue_size=20_000)
        )
        otel_trace.set_tracer_provider(provider)
        tracer = otel_trace.get_tracer("bench")

        def flush_otel() -> None:
            provider.force_flush()

        def otel_span() -> None:
            with tracer.start_as_current_span("chat gpt-4o-mini") as span:
                span.set_attributes(ATTRIBUTES)

        @tracer.start_as_current_span("empty")
        def otel_empty() -> None:
            pass

        gc.collect()
        results.append(_summary("OpenTelemetry span, 11 attributes", _timed(otel_span, micro_calls, 5_000, flush_otel)))
        results.append(
            _summary("OpenTelemetry decorated empty function", _timed(otel_empty, micro_calls, 5_000, flush_otel))
        )

        results.extend(_bench_openai(http_calls, flush_llmlens, flush_otel))
    finally:
        llmlens.shutdown(2)
        sink.terminate()
        sink.wait()

    _print(results)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)


def _bench_openai(
    calls: int, flush_llmlens: Callable[[], None], flush_otel: Callable[[], None]
) -> list[dict[str, Any]]:
    """The instrumentation's own cost: wall time of the call minus the time spent in the real client.

    The HTTP round trip to the stand-in dominates and varies by far more than the instrumentation
    costs, so a shim under the instrumentors times the genuine `create` and is subtracted per call.
    """
    import openai
    from openai.resources.chat.completions import Completions

    import llmlens

    inner_ns: list[int] = []
    genuine = Completions.create

    def timing_shim(self: Any, *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter_ns()
        try:
            return genuine(self, *args, **kwargs)
        finally:
            inner_ns.append(time.perf_counter_ns() - t0)

    Completions.create = timing_shim  # type: ignore[method-assign]
    out: list[dict[str, Any]] = []
    messages = [{"role": "user", "content": "Hello there"}]
    # The stand-in runs in its own process so that its threads do not compete for this one's GIL.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    stand_in = subprocess.Popen(
        [sys.executable, "-m", "tests.support.fake_provider", "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert stand_in.stdout is not None
    stand_in.stdout.readline()  # "fake provider on ..." once it listens
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-bench", max_retries=0)

        def chat() -> None:
            client.chat.completions.create(model="gpt-4o-mini", messages=messages)  # type: ignore[arg-type]

        def overhead(settle: Callable[[], None]) -> list[float]:
            for _ in range(10):  # warm the connection pool and code paths
                chat()
            inner_ns.clear()
            totals = _timed(chat, calls, 100, settle)
            return [total - inner / 1000 for total, inner in zip(totals, inner_ns, strict=True)]

        out.append(_summary("openai chat call: bare (wrapper cost)", overhead(lambda: None)))
        llmlens.instrument_openai()
        out.append(_summary("openai chat call: llmlens.instrument_openai()", overhead(flush_llmlens)))
        llmlens.uninstrument_openai()
        try:
            from opentelemetry.instrumentation.openai import OpenAIInstrumentor

            OpenAIInstrumentor().instrument()
            out.append(_summary("openai chat call: OpenLLMetry OpenAIInstrumentor", overhead(flush_otel)))
            OpenAIInstrumentor().uninstrument()
        except Exception as exc:  # an instrumentor that does not support this openai version
            out.append({"case": "openai chat call: OpenLLMetry OpenAIInstrumentor", "error": repr(exc)[:200]})
        out.append({"case": "(stand-in round trip, for scale)", "median_us": statistics.median(inner_ns) / 1000})
    finally:
        Completions.create = genuine  # type: ignore[method-assign]
        stand_in.terminate()
        stand_in.wait()
    return out


def _print(results: list[dict[str, Any]]) -> None:
    print(f"{'case (caller-side cost per call)':<52} {'calls':>7} {'median µs':>10} {'p90 µs':>9} {'p99 µs':>9}")
    for r in results:
        if "error" in r:
            print(f"{r['case']:<52} error: {r['error']}")
            continue
        if "calls" not in r:
            print(f"{r['case']:<52} {'':>7} {r['median_us']:>10.1f}")
            continue
        print(f"{r['case']:<52} {r['calls']:>7} {r['median_us']:>10.2f} {r['p90_us']:>9.2f} {r['p99_us']:>9.2f}")
    by_case = {r["case"]: r for r in results if "median_us" in r}
    otel = by_case.get("OpenTelemetry span, 11 attributes")
    for name in ("llmlens log_llm_call", "llmlens @trace (empty function)"):
        if otel and name in by_case:
            print(f"{name}: {otel['median_us'] / by_case[name]['median_us']:.1f}x cheaper than the OTel span")
    ours = by_case.get("openai chat call: llmlens.instrument_openai()")
    theirs = by_case.get("openai chat call: OpenLLMetry OpenAIInstrumentor")
    if ours and theirs:
        print(f"instrumented OpenAI call: {theirs['median_us'] / ours['median_us']:.1f}x cheaper than OpenLLMetry")


if __name__ == "__main__":
    main()
