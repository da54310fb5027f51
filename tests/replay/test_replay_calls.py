"""Replaying stored calls (native events, OTLP, the gateway) sends the upstream exactly what was sent."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
from tests.replay.conftest import ReplayEnv
from tests.support.fake_provider import FakeProvider

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
        },
    }
]
OPENAI_MESSAGES = [
    {"role": "system", "content": "You answer in JSON."},
    {"role": "user", "content": "What is the weather in Paris? ünïcode ✓"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"location": "Paris"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 21}'},
]
OPENAI_PARAMS = {
    "response_format": {"type": "json_object"},
    "max_tokens": 64,
    "top_p": 0.5,
    "seed": 7,
    "temperature": 0.7,
    "stream": True,
}


def ids() -> tuple[str, str]:
    return uuid.uuid4().hex, uuid.uuid4().hex[:16]


def ingest_native(env: ReplayEnv, **fields: Any) -> str:
    trace_id, span_id = ids()
    event = {"type": "span", "kind": "llm", "trace_id": trace_id, "span_id": span_id, "latency_ms": 900.0, **fields}
    env.server.ingest([event])
    return span_id


def test_native_openai_call_is_replayed_byte_for_byte(env: ReplayEnv, fp: FakeProvider) -> None:
    span_id = ingest_native(
        env,
        model="gpt-4o-mini",
        provider="openai",
        input_messages=OPENAI_MESSAGES,
        tools=TOOLS,
        request_params={"model": "gpt-4o-mini", **OPENAI_PARAMS},
        response="Fake reply to: What is the weather in Paris? ünïcode ✓",
        feature="weather",
    )
    doc = env.ok("/api/v1/replay", {"span_id": span_id})
    sent = fp.last_request
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer sk-test-openai"
    expected = {"model": "gpt-4o-mini", "messages": OPENAI_MESSAGES, "tools": TOOLS, **OPENAI_PARAMS, "temperature": 0}
    del expected["stream"]  # replays are never streamed
    assert sent.json == expected
    assert json.dumps(sent.json["messages"]) == json.dumps(OPENAI_MESSAGES)
    assert json.dumps(sent.json["tools"]) == json.dumps(TOOLS)
    # The new call is a span of its own, linked to the original, priced by the pipeline.
    [row] = doc["rows"]
    stored = env.span(row["span_id"])
    assert stored["replay_of"] == span_id
    assert stored["model"] == "gpt-4o-mini" and stored["kind"] == "llm"
    assert stored["trace_id"] == doc["run_id"] and stored["cost_usd"] > 0
    assert stored["feature"] == "weather" and stored["user_id"] is None
    assert row["cost_usd"] == stored["cost_usd"]
    assert row["response"] == stored["response"]
    llm_logs = env.server.sql(f"SELECT replay_of FROM llm_logs WHERE span_id = '{row['span_id']}'")
    assert llm_logs == [{"replay_of": span_id}]


def test_original_parameters_on_request_and_explicit_edits(env: ReplayEnv, fp: FakeProvider) -> None:
    span_id = ingest_native(
        env, model="gpt-4o", provider="openai", input_messages=OPENAI_MESSAGES[:2], request_params=OPENAI_PARAMS
    )
    env.ok("/api/v1/replay", {"span_id": span_id, "original_params": True})
    assert fp.last_request.json["temperature"] == 0.7
    env.ok("/api/v1/replay", {"span_id": span_id, "temperature": 1.2})
    assert fp.last_request.json["temperature"] == 1.2
    edited = [{"role": "user", "content": "Shorter please"}]
    env.ok("/api/v1/replay", {"span_id": span_id, "messages": edited, "params": {"seed": None, "max_tokens": 5}})
    body = fp.last_request.json
    assert body["messages"] == edited and "seed" not in body and body["max_tokens"] == 5
    # Typed columns stand in when request_params were not recorded (the article's log lines).
    plain = ingest_native(env, model="gpt-4o", input_messages=[{"role": "user", "content": "hi"}], max_tokens=99)
    env.ok("/api/v1/replay", {"span_id": plain})
    assert fp.last_request.json == {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 99,
        "temperature": 0,
    }


ANTHROPIC_TOOLS = [
    {"name": "get_weather", "description": "Weather", "input_schema": {"type": "object", "properties": {}}}
]
ANTHROPIC_MESSAGES = [
    {"role": "user", "content": "Weather in Paris?"},
    {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"location": "Paris"}}],
    },
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "21C"}]},
]


def test_native_anthropic_call_is_replayed_byte_for_byte(env: ReplayEnv, fp: FakeProvider) -> None:
    system = [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}]
    span_id = ingest_native(
        env,
        model="claude-3-5-haiku-latest",
        provider="anthropic",
        input_messages=[{"role": "system", "content": system}, *ANTHROPIC_MESSAGES],
        tools=ANTHROPIC_TOOLS,
        request_params={"max_tokens": 300, "top_k": 5, "stop_sequences": ["END"], "temperature": 1.0},
    )
    doc = env.ok("/api/v1/replay", {"span_id": span_id})
    sent = fp.last_request
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == "sk-ant-test" and sent.headers["anthropic-version"]
    assert sent.json == {
        "model": "claude-3-5-haiku-latest",
        "system": system,
        "messages": ANTHROPIC_MESSAGES,
        "tools": ANTHROPIC_TOOLS,
        "max_tokens": 300,
        "top_k": 5,
        "stop_sequences": ["END"],
        "temperature": 0,
    }
    stored = env.span(doc["rows"][0]["span_id"])
    assert stored["replay_of"] == span_id and stored["provider"] == "anthropic"
    assert stored["prompt_tokens"] > 0 and stored["response"].startswith("Fake reply")


def _otlp_attr(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    if isinstance(value, float):
        return {"key": key, "value": {"doubleValue": value}}
    return {"key": key, "value": {"stringValue": value}}


def test_otlp_genai_call_is_replayed(env: ReplayEnv, fp: FakeProvider) -> None:
    trace_id, span_id = ids()
    now = time.time_ns()
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.request.temperature": 0.4,
        "gen_ai.request.max_tokens": 120,
        "gen_ai.request.top_p": 0.8,
        "gen_ai.request.seed": 3,
        "gen_ai.system_instructions": json.dumps([{"type": "text", "content": "You are terse."}]),
        "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": "Hello OTLP"}]}]),
        "gen_ai.usage.input_tokens": 12,
        "gen_ai.usage.output_tokens": 4,
    }
    body = {
        "resourceSpans": [
            {
                "resource": {"attributes": [_otlp_attr("service.name", "otel-app")]},
                "scopeSpans": [
                    {
                        "scope": {"name": "test"},
                        "spans": [
                            {
                                "traceId": trace_id,
                                "spanId": span_id,
                                "name": "chat gpt-4o",
                                "kind": 3,
                                "startTimeUnixNano": str(now - 500_000_000),
                                "endTimeUnixNano": str(now),
                                "attributes": [_otlp_attr(k, v) for k, v in attributes.items()],
                            }
                        ],
                    }
                ],
            }
        ]
    }
    with env.server.client() as c:
        r = c.post("/v1/traces", json=body)
        assert r.status_code == 200, r.text
    env.ok("/api/v1/replay", {"span_id": span_id})
    assert fp.last_request.json == {
        "model": "gpt-4o",
        "messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hello OTLP"}],
        "max_tokens": 120,
        "top_p": 0.8,
        "seed": 3,
        "temperature": 0,
    }


def test_gateway_call_is_replayed_with_the_same_body(env: ReplayEnv, fp: FakeProvider) -> None:
    request = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "system", "content": "Gateway test"}, {"role": "user", "content": "Through the proxy"}],
        "tools": TOOLS,
        "temperature": 0.9,
        "max_completion_tokens": 50,
        "response_format": {"type": "text"},
    }
    marker = uuid.uuid4().hex
    with httpx.Client(timeout=30) as c:
        r = c.post(
            f"{env.server.url}/proxy/openai/v1/chat/completions",
            json=request,
            headers={"Authorization": "Bearer sk-client", "X-LLMLens-Session-Id": marker},
        )
        assert r.status_code == 200, r.text
    original_body = fp.last_request.json
    rows = env.wait_sql(f"SELECT span_id FROM llm_logs WHERE session_id = '{marker}'")
    assert rows, "the gateway did not record the call"
    fp.clear()
    doc = env.ok("/api/v1/replay", {"span_id": rows[0]["span_id"], "original_params": True})
    assert fp.last_request.json == original_body
    assert env.span(doc["rows"][0]["span_id"])["replay_of"] == rows[0]["span_id"]
