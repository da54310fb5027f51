"""Forwarding: every received span reaches another OTLP collector intact, and a dead collector never slows ingest."""

from __future__ import annotations

import json
import statistics
import time
from fractions import Fraction
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.integrations._otlp_receiver import OtlpReceiver
from tests.support.llmlens_server import LLMLensServer

from llmlens.codec.otlp import decode_traces
from llmlens.forward import ForwardConfigError, ForwardTarget, export_request
from llmlens.model import Span, new_span_id, new_trace_id

NOW_S = time.time()


def _attrs(kvs: Any) -> dict[str, Any]:
    out = {}
    for kv in kvs:
        which = kv.value.WhichOneof("value")
        out[kv.key] = getattr(kv.value, which) if which else None
    return out


def _llm_event(i: int, trace_id: str, span_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "llm",
        "trace_id": trace_id,
        "span_id": span_id,
        "timestamp": NOW_S - 60 + i,
        "model": "gpt-4o-mini",
        "provider": "openai",
        "prompt": f"question {i}",
        "response": f"answer {i}",
        "prompt_tokens": 100 + i,
        "completion_tokens": 20 + i,
        "latency_ms": 250.0 + i,
        "ttft_ms": 80.0,
        "feature": "chat",
        "user_id": f"user-{i}",
        "environment": "prod",
        "service": "support-bot",
        **extra,
    }


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def _ingest_timed(server: LLMLensServer, events: list[dict[str, Any]]) -> float:
    started = time.perf_counter()
    doc = server.ingest(events)
    elapsed = time.perf_counter() - started
    assert doc["accepted"] == len(events), doc
    return elapsed


def test_forwarded_spans_arrive_intact_and_a_dead_collector_never_slows_ingest(tmp_path: Any) -> None:
    receiver = OtlpReceiver().start()
    forward = [
        {
            "url": receiver.url,
            "headers": {"x-api-key": "secret-123"},
            "max_queue": 200,
            "batch_size": 50,
            "max_delay_s": 0.2,
            "max_retries": 1,
            "timeout_s": 2,
        }
    ]
    with LLMLensServer(tmp_path / "data", env={"LLMLENS_FORWARD": json.dumps(forward)}) as server:
        trace_id = new_trace_id()
        root_id = new_span_id()
        events: list[dict[str, Any]] = [
            {
                "type": "span",
                "kind": "chain",
                "name": "answer_question",
                "trace_id": trace_id,
                "span_id": root_id,
                "timestamp": NOW_S - 61,
                "latency_ms": 900.0,
                "service": "support-bot",
                "environment": "prod",
            }
        ]
        llm_ids = [new_span_id() for _ in range(3)]
        events += [_llm_event(i, trace_id, sid, parent_span_id=root_id) for i, sid in enumerate(llm_ids)]
        events.append(
            {
                "type": "tool",
                "trace_id": trace_id,
                "span_id": (tool_id := new_span_id()),
                "parent_span_id": root_id,
                "timestamp": NOW_S - 58,
                "tool_name": "search_web",
                "args": {"q": "refund policy"},
                "success": False,
                "error": "timeout after 5 s",
                "latency_ms": 5000,
            }
        )
        baseline = [_ingest_timed(server, events)]
        got = receiver.wait_for({root_id, tool_id, *llm_ids})

        # Intact: ids, parents, names, times, model, tokens, resource, and the configured headers.
        stored = {r["span_id"]: r for r in server.sql("SELECT * FROM llm_logs")}
        for i, sid in enumerate(llm_ids):
            resource, _, span = got[sid]
            attrs = _attrs(span.attributes)
            assert span.trace_id.hex() == trace_id
            assert span.parent_span_id.hex() == root_id
            # Exact: the float's own value in µs (a float product can be off by one µs).
            assert span.start_time_unix_nano == round(Fraction(NOW_S - 60 + i) * 1_000_000) * 1000
            assert span.end_time_unix_nano - span.start_time_unix_nano == round((250.0 + i) * 1e6)
            assert attrs["gen_ai.operation.name"] == "chat"
            assert attrs["gen_ai.request.model"] == "gpt-4o-mini"
            assert attrs["gen_ai.provider.name"] == "openai"
            assert attrs["gen_ai.usage.input_tokens"] == 100 + i
            assert attrs["gen_ai.usage.output_tokens"] == 20 + i
            assert attrs["gen_ai.response.time_to_first_chunk"] == pytest.approx(0.08)
            assert attrs["llmlens.feature"] == "chat"
            assert attrs["user.id"] == f"user-{i}"
            assert attrs["llmlens.message_id"] == stored[sid]["message_id"]
            assert attrs["llmlens.cost_usd"] == pytest.approx(stored[sid]["cost_usd"])
            assert json.loads(attrs["gen_ai.input.messages"])[0]["parts"][0]["content"] == f"question {i}"
            res = _attrs(resource.attributes)
            assert res["service.name"] == "support-bot"
            assert res["deployment.environment.name"] == "prod"
        _, _, root = got[root_id]
        assert root.name == "answer_question"
        assert not root.parent_span_id
        _, _, tool = got[tool_id]
        tool_attrs = _attrs(tool.attributes)
        assert tool_attrs["gen_ai.tool.name"] == "search_web"
        assert json.loads(tool_attrs["gen_ai.tool.call.arguments"]) == {"q": "refund policy"}
        assert tool.status.code == tool.status.STATUS_CODE_ERROR
        assert tool.status.message == "timeout after 5 s"
        assert receiver.headers[0]["x-api-key"] == "secret-123"
        assert receiver.headers[0]["content-type"] == "application/x-protobuf"

        for _ in range(4):
            trace = new_trace_id()
            baseline.append(_ingest_timed(server, [_llm_event(i, trace, new_span_id()) for i in range(50)]))

        # The collector goes away: ingest keeps its pace, the forwarder drops the oldest and counts.
        receiver.stop()
        during = []
        for _ in range(20):
            trace = new_trace_id()
            during.append(_ingest_timed(server, [_llm_event(i, trace, new_span_id()) for i in range(50)]))
        assert statistics.median(during) < max(0.5, 3 * statistics.median(baseline)), (baseline, during)
        stored_count = server.sql("SELECT count(*) AS n FROM spans")[0]["n"]
        assert stored_count == len(events) + 4 * 50 + 20 * 50

        # Wait on the forwarder's own counters: a failed send and spans dropped from its full queue.
        deadline = time.monotonic() + 30
        while True:
            text = httpx.get(server.url + "/metrics").text
            failed = _metric(text, "llmlens_forward_failed_requests_total")
            dropped = _metric(text, "llmlens_forward_dropped_spans_total", reason="queue_full")
            if failed > 0 and dropped > 0:
                break
            assert time.monotonic() < deadline, f"no failed send and drop counted: {failed=} {dropped=}"
            time.sleep(0.05)
        assert _metric(text, "llmlens_forward_sent_spans_total") >= len(events)
        target = next(
            s.labels["target"]
            for f in text_string_to_metric_families(text)
            for s in f.samples
            if s.name == "llmlens_forward_sent_spans_total"
        )
        assert target == f"{receiver.url}/v1/traces"  # no headers or credentials in labels

        # It comes back: new spans flow again.
        receiver.start()
        fresh = new_span_id()
        server.ingest([_llm_event(0, new_trace_id(), fresh)])
        receiver.wait_for({fresh}, timeout_s=30)
    receiver.stop()


def test_a_stalled_collector_does_not_hold_up_ingest(tmp_path: Any) -> None:
    with OtlpReceiver(stall_s=5.0) as receiver:
        forward = [{"url": receiver.url, "timeout_s": 1, "batch_size": 10, "max_delay_s": 0.1, "max_queue": 50}]
        with LLMLensServer(tmp_path / "data", env={"LLMLENS_FORWARD": json.dumps(forward)}) as server:
            times = []
            for _ in range(10):
                trace = new_trace_id()
                times.append(_ingest_timed(server, [_llm_event(i, trace, new_span_id()) for i in range(20)]))
            assert statistics.median(times) < 0.5, times
            assert server.sql("SELECT count(*) AS n FROM llm_logs")[0]["n"] == 200


def test_encoded_spans_decode_back_to_the_same_fields() -> None:
    span = Span(
        trace_id=new_trace_id(),
        span_id=new_span_id(),
        parent_span_id=new_span_id(),
        kind="llm",
        name="chat gpt-4o",
        project="shop",
        start_us=1_767_225_600_123_456,
        latency_ms=1234.5,
        status="error",
        error_type="rate_limit",
        error_message="429 Too Many Requests",
        service="checkout",
        environment="staging",
        user_id="u-1",
        session_id="s-1",
        feature="summarize",
        message_id="m-1",
        provider="openai",
        model="gpt-4o",
        response_model="gpt-4o-2024-08-06",
        prompt_tokens=1200,
        completion_tokens=300,
        total_tokens=1500,
        cached_tokens=1000,
        reasoning_tokens=50,
        ttft_ms=420.0,
        streamed=True,
        temperature=0.2,
        max_tokens=512,
        finish_reason="stop",
        input_messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        output_messages=[
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "c1", "name": "lookup", "arguments": {"x": 1}}],
            }
        ],
        attributes={"otel.span.kind": "client", "app.tenant": "acme", "retry.count": 2},
        metadata={"tier": "pro"},
    )
    body = export_request([span]).SerializeToString()
    decoded = decode_traces(body, "application/x-protobuf")
    assert not decoded.rejected
    (back,) = decoded.spans
    for field in (
        "trace_id",
        "span_id",
        "parent_span_id",
        "kind",
        "name",
        "project",
        "start_us",
        "status",
        "error_type",
        "error_message",
        "service",
        "environment",
        "user_id",
        "session_id",
        "feature",
        "message_id",
        "provider",
        "model",
        "response_model",
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "cached_tokens",
        "reasoning_tokens",
        "streamed",
        "temperature",
        "max_tokens",
        "finish_reason",
    ):
        assert getattr(back, field) == getattr(span, field), field
    assert back.latency_ms == pytest.approx(span.latency_ms)
    assert back.ttft_ms == pytest.approx(span.ttft_ms)
    assert back.input_messages[1]["content"] == "hi"
    assert back.output_messages[0]["tool_calls"][0]["name"] == "lookup"
    assert back.attributes["app.tenant"] == "acme"
    assert back.attributes["retry.count"] == 2
    assert back.attributes["otel.span.kind"] == "client"


def test_forward_settings_are_checked_with_clear_messages() -> None:
    assert ForwardTarget.from_config({"url": "http://tempo:4318"}).endpoint == "http://tempo:4318/v1/traces"
    assert ForwardTarget.from_config({"url": "https://otlp.eu/v1/traces"}).endpoint == "https://otlp.eu/v1/traces"
    label = ForwardTarget.from_config({"url": "https://user:pw@collector.example:4318/otlp?x=1"}).label
    assert label == "https://collector.example:4318/otlp/v1/traces"
    with pytest.raises(ForwardConfigError, match=r"forward\[0\]\.url"):
        ForwardTarget.from_config({"url": "tempo:4318"})
    with pytest.raises(ForwardConfigError, match="unknown key"):
        ForwardTarget.from_config({"url": "http://x", "header": {}})
    with pytest.raises(ForwardConfigError, match="max_queue"):
        ForwardTarget.from_config({"url": "http://x", "max_queue": 0})


def test_a_bad_forward_setting_stops_the_server_with_its_message(tmp_path: Any) -> None:
    server = LLMLensServer(tmp_path / "data", env={"LLMLENS_FORWARD": json.dumps([{"url": "nope"}])})
    with pytest.raises(RuntimeError, match=r"forward\[0\]\.url must be an http\(s\) URL"):
        server.start()
