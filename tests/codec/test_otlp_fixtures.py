"""Every captured OTLP fixture decodes, and each ground-truth value the telemetry carries comes out right."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from tests.otlp._fixtures import SHARED_FIXTURES

from llmlens.codec.otlp import (
    DecodedTraces,
    LogContent,
    content_from_logs_request,
    decode_logs,
    decode_logs_request,
    decode_trace_request,
    decode_traces,
    gunzip_body,
    merge_log_content,
    spans_from_trace_request,
)
from llmlens.model import Span

FIXTURES = SHARED_FIXTURES

# What each instrumentor puts on its LLM spans (from the fixture READMEs). Anything not listed must
# be either absent (None) or right: we store what the telemetry says and invent nothing.
CAPS: dict[str, set[str]] = {
    "openinference-openai": {
        "content",
        "cached",
        "reasoning",
        "streamed",
        "ttft",
        "user_on_llm",
        "params",
        "total",
    },
    "otel-openai-v2": {"params"},  # content arrives in the logs; no cached/reasoning; no stream flag
    "otel-openai-v2-latest": {"content", "params"},
    "traceloop-openai": {"content", "cached", "streamed", "params", "total"},
    "traceloop-openai-0.47": {"content", "cached", "reasoning", "streamed", "params", "total"},
}
# Traceloop >= 0.5x normalises finish reasons (`tool_calls` -> `tool_call`); we keep what it sent.
FINISH_ALIASES = {"tool_call": "tool_calls"}


def _payloads() -> list[Path]:
    return sorted(
        p
        for p in FIXTURES.glob("*/*/*")
        if p.name.endswith((".pb", ".pb.gz", ".json", ".json.gz"))
        and not p.name.endswith((".expected.json", ".converted.json"))
    )


PAYLOADS = _payloads()
TRACE_PAYLOADS = [p for p in PAYLOADS if ".traces." in p.name]
LOG_PAYLOADS = [p for p in PAYLOADS if ".logs." in p.name]


def _id(path: Path) -> str:
    return str(path.relative_to(FIXTURES))


def _expected(path: Path) -> dict[str, Any]:
    stem = path.name.split(".")[0]
    signal = "logs" if ".logs." in path.name else "traces"
    data: dict[str, Any] = json.loads((path.parent / f"{stem}.{signal}.expected.json").read_text())
    return data


def _instrumentor(path: Path) -> str:
    return path.relative_to(FIXTURES).parts[0]


def _decode(path: Path) -> DecodedTraces:
    exp = _expected(path)
    return decode_traces(path.read_bytes(), exp["content_type"], exp["content_encoding"])


def _sibling(path: Path, signal: str) -> Path | None:
    stem = path.name.split(".")[0]
    for candidate in path.parent.iterdir():
        if candidate.name.startswith(f"{stem}.{signal}.") and candidate in PAYLOADS:
            return candidate
    return None


def _llm_spans(spans: list[Span]) -> list[Span]:
    return sorted((s for s in spans if s.kind == "llm"), key=lambda s: s.start_us)


def _check(span_value: Any, expected: Any, reported: bool, what: str) -> None:
    if reported:
        assert span_value == expected, what
    else:
        assert span_value in (None, expected), what


@pytest.mark.parametrize("path", TRACE_PAYLOADS, ids=_id)
def test_trace_fixture_matches_ground_truth(path: Path) -> None:
    exp = _expected(path)
    caps = CAPS[_instrumentor(path)]
    decoded = _decode(path)
    assert decoded.rejected == []
    spans = decoded.spans
    if ".logs." not in path.name and (logs := _sibling(path, "logs")) is not None:
        log_exp = _expected(logs)
        contents = {c.span_id: c for c in decode_logs(logs.read_bytes(), log_exp["content_type"]).contents}
        for span in spans:
            if span.span_id in contents:
                merge_log_content(span, contents[span.span_id])
        caps = caps | {"content"}

    assert {s.trace_id for s in spans} == {exp["trace_id"]}
    app = next(s for s in spans if s.span_id == exp["app_span"]["span_id"])
    assert app.kind == "request"
    assert app.name == exp["app_span"]["name"]
    assert (app.http_method, app.http_route) == ("POST", "/chat")
    assert app.user_id == exp["user_id"]
    assert app.session_id == exp["session_id"]
    assert all(s.service == exp["service_name"] for s in spans)
    assert all(s.environment == "dev" for s in spans)

    llm = _llm_spans(spans)
    assert len(llm) == exp["llm_call_count"]
    for span, call in zip(llm, exp["llm_calls"], strict=True):
        what = f"{call['call_key']}: "
        assert span.parent_span_id == app.span_id
        assert span.provider == call["provider"], what + "provider"
        assert span.model == call["request_model"], what + "request model"
        assert span.response_model == call["response_model"], what + "response model"
        assert span.cost_usd is None and span.computed_cost_usd is None
        assert span.latency_ms is not None and span.latency_ms > 0
        if "user_on_llm" in caps:
            assert (span.user_id, span.session_id) == (exp["user_id"], exp["session_id"])
        else:
            assert span.user_id in (None, exp["user_id"])
        _check(span.streamed, call["streamed"], "streamed" in caps, what + "streamed")
        # Feedback joins on the provider's id of the answer: every instrumentor records it, and it survives
        # decoding as the message id or as the `gen_ai.response.id` the trace assembler makes one of.
        carried = span.message_id or span.attributes.get("gen_ai.response.id")
        assert carried == call.get("response_id"), what + "response id"
        if "request_temperature" in call:
            _check(span.temperature, call["request_temperature"], "params" in caps, what + "temperature")
            _check(span.max_tokens, call["request_max_tokens"], "params" in caps, what + "max_tokens")
            assert (span.request_params or {}).get("top_p") in (None, call["request_top_p"])

        if call["error"] is not None:
            assert span.status == "error", what
            assert span.error_type == call["error"]["kind"], what + "error type"
            assert span.error_message
            assert span.prompt_tokens is None and span.completion_tokens is None
            continue
        assert span.status in ("ok", "unset")
        assert span.error_type is None
        assert span.prompt_tokens == call["input_tokens"], what + "input tokens"
        assert span.completion_tokens == call["output_tokens"], what + "output tokens"
        assert span.total_tokens == call["total_tokens"], what + "total tokens"
        _check(span.cached_tokens, call["cached_input_tokens"], "cached" in caps, what + "cached")
        _check(span.reasoning_tokens, call["reasoning_tokens"], "reasoning" in caps and not span.streamed, what)
        finish = FINISH_ALIASES.get(span.finish_reason or "", span.finish_reason)
        _check(finish, call["finish_reason"], "content" in caps, what + "finish reason")
        if "content" in caps:
            assert span.response == call["output_text"], what + "response text"
            calls = [{"id": c["id"], "name": c["name"], "arguments": c["arguments"]} for c in span.tool_calls or []]
            assert calls == call["tool_calls"], what + "tool calls"
            assert span.input_messages and span.prompt
            for result in call.get("tool_results_in_request", []):
                tool_messages = [m for m in span.input_messages if m["role"] == "tool"]
                assert [m["content"] for m in tool_messages] == [result]
                assert tool_messages[0]["tool_call_id"] == "call_fx1weather01"
        if call["streamed"] and "ttft" in caps:
            assert span.ttft_ms is not None and 0 < span.ttft_ms < span.latency_ms
            assert span.tokens_per_second is not None and span.tokens_per_second > 0

    if exp.get("metadata"):
        for span in llm:
            assert span.metadata["tenant"] == exp["metadata"]["tenant"]
            assert span.metadata["tags"] == exp["tags"]
            assert span.template_version == exp["prompt_template"]["version"]
            assert span.variables == exp["prompt_template"]["variables"]
            assert span.attributes["llm.prompt_template.template"] == exp["prompt_template"]["template"]


@pytest.mark.parametrize("path", LOG_PAYLOADS, ids=_id)
def test_log_fixture_carries_each_calls_content(path: Path) -> None:
    exp = _expected(path)
    decoded = decode_logs(path.read_bytes(), exp["content_type"], exp["content_encoding"])
    assert decoded.rejected == []
    traces = _sibling(path, "traces")
    assert traces is not None
    llm = _llm_spans(_decode(traces).spans)
    by_span = {c.span_id: c for c in decoded.contents}
    assert {c.trace_id for c in decoded.contents} == {exp["trace_id"]}
    for span, call in zip(llm, exp["llm_calls"], strict=True):
        content = by_span[span.span_id]
        assert content.input_messages, call["call_key"]
        if call["error"] is not None:
            assert content.output_messages is None
            continue
        assert content.response == call["output_text"]
        assert content.finish_reason == call["finish_reason"]
        calls = [{"id": c["id"], "name": c["name"], "arguments": c["arguments"]} for c in content.tool_calls or []]
        assert calls == call["tool_calls"]


@pytest.mark.parametrize("path", TRACE_PAYLOADS, ids=_id)
def test_fast_path_equals_the_protobuf_object_path(path: Path) -> None:
    exp = _expected(path)
    body = gunzip_body(path.read_bytes(), exp["content_encoding"])
    request = decode_trace_request(body, exp["content_type"])
    spans, rejected = spans_from_trace_request(request)
    assert rejected == []
    assert [asdict(s) for s in spans] == [asdict(s) for s in _decode(path).spans]


@pytest.mark.parametrize("path", LOG_PAYLOADS, ids=_id)
def test_logs_fast_path_equals_the_protobuf_object_path(path: Path) -> None:
    exp = _expected(path)
    request = decode_logs_request(path.read_bytes(), exp["content_type"])
    slow: list[LogContent] = content_from_logs_request(request)
    assert slow == decode_logs(path.read_bytes(), exp["content_type"]).contents


@pytest.mark.parametrize("path", [p for p in TRACE_PAYLOADS if p.suffix == ".pb"], ids=_id)
def test_protobuf_and_its_converted_json_decode_alike(path: Path) -> None:
    converted = path.with_name(path.name.replace(".pb", ".converted.json"))
    from_json = decode_traces(converted.read_bytes(), "application/json", None).spans
    assert [asdict(s) for s in from_json] == [asdict(s) for s in _decode(path).spans]


def test_logs_merge_whichever_arrives_first() -> None:
    folder = FIXTURES / "otel-openai-v2" / "protobuf"
    traces = decode_traces((folder / "03_tool_call.traces.pb").read_bytes(), "application/x-protobuf").spans
    contents = decode_logs((folder / "03_tool_call.logs.pb").read_bytes(), "application/x-protobuf").contents
    first = _llm_spans(traces)[0]
    assert first.tool_calls is None and first.input_messages is None
    merge_log_content(first, next(c for c in contents if c.span_id == first.span_id))
    assert first.tool_calls == [
        {"id": "call_fx1weather01", "name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}
    ]
    assert first.prompt == "user: What's the weather in Paris right now?"
    # A span that already has content keeps it.
    kept = Span(trace_id=first.trace_id, span_id=first.span_id, response="already here")
    merge_log_content(kept, LogContent(first.trace_id, first.span_id, response="from logs", finish_reason="stop"))
    assert (kept.response, kept.finish_reason) == ("already here", "stop")
