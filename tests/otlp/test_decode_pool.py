"""Large OTLP bodies decoded in worker processes: the same rows as in-thread decoding, content
transforms applied (also to log content merged later), a killed worker survived, idle workers stopped."""

from __future__ import annotations

import asyncio
import decimal
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans
from opentelemetry.proto.trace.v1.trace_pb2 import Span as OtlpSpan
from tests.otlp._workers import warm_decode_workers
from tests.support.llmlens_server import LLMLensServer

from llmlens.codec.span_batch import pack_spans, unpack_spans
from llmlens.model import Span
from llmlens.server._decode_pool import MIN_BODY_BYTES, DecodePool, worker_count

SECRET = "sk-proj-abcdefghijklmnopqrstuvwx1234"
PROTOBUF = {"Content-Type": "application/x-protobuf"}
NOW_NS = time.time_ns()


def _attr(key: str, value: str | int) -> KeyValue:
    any_value = AnyValue(int_value=value) if isinstance(value, int) else AnyValue(string_value=value)
    return KeyValue(key=key, value=any_value)


def _llm_span(trace: int, *, prompt: str, with_output: bool = True) -> OtlpSpan:
    attrs = [
        _attr("openinference.span.kind", "LLM"),
        _attr("llm.provider", "openai"),
        _attr("llm.model_name", "gpt-4o-mini"),
        _attr("llm.token_count.prompt", 400 + trace),
        _attr("llm.token_count.completion", 50),
        _attr("llm.input_messages.0.message.role", "user"),
        _attr("llm.input_messages.0.message.content", prompt),
        _attr("user.id", f"user-{trace % 7}"),
    ]
    if with_output:
        attrs += [
            _attr("llm.output_messages.0.message.role", "assistant"),
            _attr("llm.output_messages.0.message.content", f"answer {trace}"),
        ]
    start = NOW_NS - (trace + 1) * 1_000_000_000
    return OtlpSpan(
        trace_id=(trace + 1).to_bytes(16, "big"),
        span_id=(trace + 1).to_bytes(8, "big"),
        name="ChatCompletion",
        kind=OtlpSpan.SPAN_KIND_CLIENT,
        start_time_unix_nano=start,
        end_time_unix_nano=start + 800_000_000,
        attributes=attrs,
    )


def _body(spans: list[OtlpSpan]) -> bytes:
    resource = Resource(attributes=[_attr("service.name", "pool-test")])
    request = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(resource=resource, scope_spans=[ScopeSpans(spans=spans)])]
    )
    return request.SerializeToString()


def _large_body(n: int = 200) -> bytes:
    body = _body([_llm_span(i, prompt=f"question {i} with key {SECRET} " + "lorem ipsum " * 40) for i in range(n)])
    assert len(body) >= MIN_BODY_BYTES
    return body


def _rows(srv: LLMLensServer) -> list[dict[str, Any]]:
    return srv.sql("SELECT * EXCLUDE (timestamp) FROM spans ORDER BY span_id")


def _worker_pids(server_pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == server_pid:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
                if b"multiprocessing" in cmdline and b"resource_tracker" not in cmdline:
                    found.append(int(entry))
    return found


def test_workers_store_what_threads_store_with_secrets_redacted(tmp_path: Path) -> None:
    body = _large_body()
    stored = []
    for workers in ("1", "0"):
        with LLMLensServer(tmp_path / workers, env={"LLMLENS_DECODE_WORKERS": workers}) as srv:
            if workers == "1":
                warm_decode_workers(srv, body)
            r = httpx.post(f"{srv.url}/v1/traces", content=body, headers=PROTOBUF, timeout=60)
            assert r.status_code == 200, r.text
            assert srv.proc is not None
            assert bool(_worker_pids(srv.proc.pid)) == (workers == "1")
            stored.append(_rows(srv))
    with_workers, in_threads = stored
    assert len(with_workers) == 200
    assert with_workers == in_threads
    llm = with_workers[0]
    assert llm["kind"] == "llm" and llm["cost_usd"] > 0 and llm["message_id"]
    assert SECRET not in json.dumps(with_workers)
    assert "[REDACTED_API_KEY]" in llm["prompt"]


def test_log_content_merged_after_a_worker_decoded_the_span_is_redacted(tmp_path: Path) -> None:
    # The log record arrives first and waits; the span comes in a large body decoded by a worker.
    trace = 9_999
    span = _llm_span(trace, prompt="", with_output=False)
    span.attributes.pop(6)  # no input content on the span: it comes from the log record
    log = {
        "resourceLogs": [
            {
                "scopeLogs": [
                    {
                        "logRecords": [
                            {
                                "timeUnixNano": str(NOW_NS),
                                "eventName": "gen_ai.choice",
                                "traceId": (trace + 1).to_bytes(16, "big").hex(),
                                "spanId": (trace + 1).to_bytes(8, "big").hex(),
                                "body": {
                                    "kvlistValue": {
                                        "values": [
                                            {"key": "index", "value": {"intValue": "0"}},
                                            {"key": "finish_reason", "value": {"stringValue": "stop"}},
                                            {
                                                "key": "message",
                                                "value": {
                                                    "kvlistValue": {
                                                        "values": [
                                                            {
                                                                "key": "content",
                                                                "value": {"stringValue": f"use {SECRET}"},
                                                            },
                                                        ]
                                                    }
                                                },
                                            },
                                        ]
                                    }
                                },
                            }
                        ]
                    }
                ]
            }
        ]
    }
    filler = [_llm_span(i, prompt="lorem ipsum " * 60) for i in range(150)]
    with LLMLensServer(tmp_path, env={"LLMLENS_DECODE_WORKERS": "1"}) as srv:
        warm_decode_workers(srv, _large_body())

        with httpx.Client(base_url=srv.url, timeout=60) as client:
            # The log record first: it is answered once its content is buffered, waiting for its span.
            logs = client.post("/v1/logs", json=log)
            assert logs.status_code == 200, logs.text
            traces = client.post("/v1/traces", content=_body([span, *filler]), headers=PROTOBUF)
            assert traces.status_code == 200, traces.text
        row = srv.sql(
            f"SELECT response, finish_reason FROM spans WHERE span_id = '{(trace + 1).to_bytes(8, 'big').hex()}'"
        )
    assert row == [{"response": "use [REDACTED_API_KEY]", "finish_reason": "stop"}]


def test_a_killed_worker_costs_no_request(tmp_path: Path) -> None:
    body = _large_body(120)
    with LLMLensServer(tmp_path, env={"LLMLENS_DECODE_WORKERS": "1"}) as srv:
        assert srv.proc is not None
        warm_decode_workers(srv, _large_body(100))
        assert httpx.post(f"{srv.url}/v1/traces", content=body, headers=PROTOBUF, timeout=60).status_code == 200
        (pid,) = _worker_pids(srv.proc.pid)
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _running(pid):  # dead before the next request, so that request meets the dead worker
            assert time.monotonic() < deadline, "the killed worker is still running"
            time.sleep(0.01)
        second = _body([_llm_span(1000 + i, prompt="lorem ipsum " * 60) for i in range(120)])
        r = httpx.post(f"{srv.url}/v1/traces", content=second, headers=PROTOBUF, timeout=60)
        assert r.status_code == 200, r.text
        third = _body([_llm_span(2000 + i, prompt="lorem ipsum " * 60) for i in range(120)])
        assert httpx.post(f"{srv.url}/v1/traces", content=third, headers=PROTOBUF, timeout=60).status_code == 200
        assert srv.sql("SELECT count(*) AS n FROM spans") == [{"n": 360}]
        assert _worker_pids(srv.proc.pid) not in ([], [pid])  # a new pool took over


def test_idle_pool_stops_its_workers() -> None:
    async def go() -> None:
        pool = DecodePool(1, redaction=None, max_field_chars=1000, idle_s=0.3)
        decoded = await pool.decode_traces(_large_body(100), "application/x-protobuf", None)
        assert decoded is not None and len(decoded.spans) == 100
        assert pool.running
        deadline = time.monotonic() + 10
        while pool.running:
            assert time.monotonic() < deadline, "the idle pool kept its workers"
            await asyncio.sleep(0.05)
        pool.close()

    asyncio.run(go())


def test_worker_count() -> None:
    assert worker_count(0) == 0
    assert worker_count(3) == 3
    cores = len(os.sched_getaffinity(0))
    assert worker_count(-1) == max(0, min(4, cores - 1))


@pytest.mark.parametrize("attributes", [{"k": [1, 2.5, None, True, {"n": "x"}]}, {"odd": decimal.Decimal("1.5")}])
def test_span_batches_round_trip(attributes: dict[str, Any]) -> None:
    spans = [Span(trace_id="a" * 32, span_id=f"{i:016x}", prompt="é" * i, attributes=attributes) for i in range(3)]
    assert unpack_spans(pack_spans(spans)) == spans


def test_workers_leave_with_a_killed_server(tmp_path: Path) -> None:
    srv = LLMLensServer(tmp_path, env={"LLMLENS_DECODE_WORKERS": "1"})
    srv.start()
    try:
        assert srv.proc is not None
        warm_decode_workers(srv, _large_body(100))
        workers = _worker_pids(srv.proc.pid)
        assert workers
        srv.stop(kill=True)  # SIGKILL: the server cannot stop its pool
    finally:
        srv.stop()
    deadline = time.monotonic() + 10
    while any(_running(pid) for pid in workers):
        assert time.monotonic() < deadline, "a decode worker outlived its server"
        time.sleep(0.1)


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
