"""Every OTLP fixture POSTed to a real server: what is stored matches each ground-truth field it carries.

The shared fixtures are real payloads captured from OpenInference, OpenLLMetry (Traceloop) and the
OTel contrib OpenAI instrumentation; ours (tests/otlp/fixtures, made by its capture.py the same way)
add Anthropic, LangChain (whose LLM span and the OpenAI span record one call) and retrieval plus
embedding spans. User and session sit only on the app's root span for most instrumentors: the LLM spans must
inherit them. Log payloads go in before their traces for the `json` folders, after for the others.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from tests.support.llmlens_server import LLMLensServer
from tests.support.prices import CUSTOM_RATES, PUBLISHED_RATES, assert_cost, write_price_file

from ._checks import TOKEN_DETAILS, assert_app_trace
from ._fixtures import OWN_FIXTURES, SHARED_FIXTURES, Payload, payloads

SHARED = payloads(SHARED_FIXTURES)
OWN = payloads(OWN_FIXTURES)
TRACES = [p for p in SHARED + OWN if p.signal == "traces"]

# Which ground-truth fields each instrumentor's telemetry carries (see the fixture READMEs). A field
# not listed must be stored as NULL or right: we store what the telemetry says and invent nothing.
CAPS: dict[str, set[str]] = {
    "openinference-openai": {"content", "cached", "reasoning", "streamed"},
    "otel-openai-v2": {"content"},  # content from the logs
    "otel-openai-v2-latest": {"content"},
    "traceloop-openai": {"content", "cached", "streamed"},
    "traceloop-openai-0.47": {"content", "cached", "reasoning", "streamed"},
}
FINISH_ALIASES = {"tool_call": "tool_calls"}  # Traceloop >= 0.5 normalises; we keep what it sent
# The shared fixtures call gpt-4o and gpt-4o-mini, priced by genai-prices' defaults; our own also call a
# Claude model and an embedding model, priced from the test's price file.
OWN_PRICED = ("claude-sonnet-4-5", "text-embedding-3-small")
OWN_RATES = {**PUBLISHED_RATES, **{name: CUSTOM_RATES[name] for name in OWN_PRICED}}


def _post(client: httpx.Client, payload: Payload) -> None:
    response = client.post(payload.expected["http_path"], content=payload.path.read_bytes(), headers=payload.headers())
    assert response.status_code == 200, (payload.name, response.text)
    media = payload.expected["content_type"]
    assert response.headers["content-type"].startswith(media)
    if media == "application/json":
        assert int(response.json().get("partialSuccess", {}).get("rejectedSpans", 0)) == 0
        return
    answer = ExportTraceServiceResponse() if payload.signal == "traces" else ExportLogsServiceResponse()
    answer.ParseFromString(response.content)
    assert not answer.HasField("partial_success"), answer


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LLMLensServer]:
    data = tmp_path_factory.mktemp("otlp-fixtures")
    args = ["--price-file", str(write_price_file(data, OWN_PRICED))]
    with LLMLensServer(data, args=args) as srv, srv.client() as client:
        logs_first = [p for p in SHARED if p.signal == "logs" and p.path.parent.name == "json"]
        for payload in logs_first:
            _post(client, payload)
        for payload in TRACES:
            _post(client, payload)
        for payload in SHARED + OWN:
            if payload.signal == "logs" and payload not in logs_first:
                _post(client, payload)
        yield srv


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _spans(srv: LLMLensServer, trace_id: str) -> list[dict[str, Any]]:
    rows = srv.sql(f"SELECT * FROM spans WHERE trace_id = '{trace_id}' ORDER BY timestamp, span_id")
    for row in rows:
        for key in ("metadata", "attributes", "tool_calls", "input_messages", "documents", "variables"):
            row[key] = _json(row.get(key))
    return rows


def _check(value: Any, expected: Any, reported: bool, what: str) -> None:
    if reported:
        assert value == expected, what
    else:
        assert value in (None, expected), what


@pytest.mark.parametrize("payload", [p for p in TRACES if p in SHARED], ids=lambda p: p.name)
def test_captured_fixture_is_stored_right(stored: LLMLensServer, payload: Payload) -> None:
    exp = payload.expected
    caps = CAPS[payload.instrumentor]
    rows = _spans(stored, exp["trace_id"])
    assert rows, payload.name
    app = next(r for r in rows if r["span_id"] == exp["app_span"]["span_id"])
    assert (app["kind"], app["name"], app["user_id"], app["session_id"]) == (
        "request",
        exp["app_span"]["name"],
        exp["user_id"],
        exp["session_id"],
    )
    llm = [r for r in rows if r["kind"] == "llm"]
    assert len(llm) == exp["llm_call_count"]
    for row, call in zip(llm, exp["llm_calls"], strict=True):
        what = f"{payload.name} {call['call_key']}: "
        # Inherited from the root span when the instrumentor does not put them on the LLM span.
        assert (row["user_id"], row["session_id"]) == (exp["user_id"], exp["session_id"]), what + "user/session"
        assert row["service"] == exp["service_name"]
        assert row["provider"] == call["provider"], what
        assert row["model"] == call["request_model"], what + "model"
        assert row["response_model"] == call["response_model"], what + "response model"
        # Feedback joins on the message id: the provider's response id wherever the telemetry has it.
        assert row["message_id"] == (call.get("response_id") or row["span_id"]), what + "message id"
        _check(row["streamed"], call["streamed"], "streamed" in caps, what + "streamed")
        if call["error"] is not None:
            assert row["status"] == "error", what
            assert row["error_type"] == call["error"]["kind"], what + "error type"
            assert row["prompt_tokens"] is None and row["cost_usd"] is None
            continue
        assert row["error_type"] is None
        assert (row["prompt_tokens"], row["completion_tokens"], row["total_tokens"]) == (
            call["input_tokens"],
            call["output_tokens"],
            call["total_tokens"],
        ), what + "tokens"
        _check(row["cached_tokens"], call["cached_input_tokens"], "cached" in caps, what + "cached")
        _check(row["reasoning_tokens"], call["reasoning_tokens"], "reasoning" in caps and not row["streamed"], what)
        # Billed as the telemetry reports it: cache reads the instrumentor leaves out cost the input rate.
        cached = call["cached_input_tokens"] if "cached" in caps else 0
        reasoning = call["reasoning_tokens"] if "reasoning" in caps and not row["streamed"] else 0
        expected = PUBLISHED_RATES[call["request_model"]].openai_cost(
            call["input_tokens"], call["output_tokens"], cached_tokens=cached, reasoning_tokens=reasoning
        )
        assert_cost(row["cost_usd"], expected, what + "cost")
        assert row["cost_source"] == "library"
        finish = FINISH_ALIASES.get(row["finish_reason"] or "", row["finish_reason"])
        _check(finish, call["finish_reason"], "content" in caps, what + "finish reason")
        if "content" in caps:
            assert row["response"] == call["output_text"], what + "response text"
            calls = [{"id": c["id"], "name": c["name"], "arguments": c["arguments"]} for c in row["tool_calls"] or []]
            assert calls == call["tool_calls"], what + "tool calls"
            assert row["prompt"], what + "prompt"
    if exp.get("metadata"):
        for row in llm:
            assert row["metadata"]["tenant"] == exp["metadata"]["tenant"]
            assert row["template_version"] == exp["prompt_template"]["version"]


def test_tool_results_sent_back_are_in_the_follow_up_prompt(stored: LLMLensServer) -> None:
    checked: set[str] = set()
    for payload in TRACES:
        if payload not in SHARED or payload.expected["scenario"] != "tool_call":
            continue
        if "content" not in CAPS[payload.instrumentor]:
            continue
        followup = [r for r in _spans(stored, payload.expected["trace_id"]) if r["kind"] == "llm"][1]
        tool_messages = [m for m in followup["input_messages"] if m["role"] == "tool"]
        assert [m["content"] for m in tool_messages] == payload.expected["llm_calls"][1]["tool_results_in_request"]
        checked.add(payload.instrumentor)
    # Every instrumentor that records content has a tool-call capture: a loop that skipped them all proves nothing.
    assert checked == {name for name, caps in CAPS.items() if "content" in caps}


@pytest.mark.parametrize("payload", [p for p in TRACES if p in OWN], ids=lambda p: p.name)
def test_own_fixture_is_stored_right(stored: LLMLensServer, payload: Payload) -> None:
    """Anthropic, LangChain (with a duplicate OpenAI span) and RAG spans, captured by fixtures/capture.py."""
    rows = _spans(stored, payload.expected["trace_id"])
    # The libraries here report cache reads and writes, and reasoning (none was used in these captures).
    assert_app_trace(
        rows,
        payload.expected["seen"],
        payload.instrumentor,
        reports_streamed=True,
        rates=OWN_RATES,
        reports=TOKEN_DETAILS,
    )
