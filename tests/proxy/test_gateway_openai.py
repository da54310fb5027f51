"""The real `openai` client through the gateway: what it receives is what a direct call receives."""

from __future__ import annotations

import json

import openai
from tests.proxy._support import Gateway, headers_of, same_bytes
from tests.support.fake_provider import FakeProvider
from tests.support.prices import PUBLISHED_RATES, assert_cost

HELLO = [{"role": "user", "content": "hello there"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def _direct(fp: FakeProvider) -> openai.OpenAI:
    return openai.OpenAI(base_url=fp.openai_base_url, api_key="sk-test-secret-123", max_retries=0)


def test_chat_completion_passes_through_byte_for_byte_and_is_recorded(
    gateway: Gateway, upstream: FakeProvider, direct: FakeProvider
) -> None:
    attribution = {
        "X-LLMLens-User-Id": "user-42",
        "X-LLMLens-Session-Id": "sess-chat",
        "X-LLMLens-Feature": "support_chat",
        "X-LLMLens-Template-Id": "support_answer",
        "X-LLMLens-Template-Version": "v5",
        "X-LLMLens-Properties": json.dumps({"tier": "pro", "region": "eu"}),
    }
    kwargs = {"model": "gpt-4o", "messages": HELLO, "temperature": 0.2, "max_tokens": 50}
    upstream.usage = direct.usage = {"input_tokens": 30, "cached_tokens": 12, "reasoning_tokens": 2}
    want = _direct(direct).chat.completions.with_raw_response.create(**kwargs)  # type: ignore[call-overload]
    got = gateway.openai().chat.completions.with_raw_response.create(**kwargs, extra_headers=attribution)  # type: ignore[call-overload]

    assert got.http_response.status_code == want.http_response.status_code == 200
    assert headers_of(got.headers) == headers_of(want.headers)
    same_bytes(want.http_response.content, got.http_response.content)
    assert got.parse().choices[0].message.content == "Fake reply to: hello there"

    sent = upstream.last_request
    assert sent.body == direct.last_request.body  # the request went upstream unchanged
    assert sent.headers["authorization"] == "Bearer sk-test-secret-123"  # the client's own key
    assert not any(name.startswith("x-llmlens-") for name in sent.headers)

    rows = gateway.wait_rows("SELECT * FROM llm_logs WHERE session_id = 'sess-chat'")
    assert len(rows) == 1
    row = rows[0]
    assert row["model"] == "gpt-4o" and row["response_model"] == "gpt-4o-2024-08-06"
    assert row["provider"] == "openai" and row["status"] == "ok" and row["streamed"] is False
    assert (row["user_id"], row["feature"], row["template_id"], row["template_version"]) == (
        "user-42",
        "support_chat",
        "support_answer",
        "v5",
    )
    usage = got.parse().usage
    assert usage is not None
    assert (row["prompt_tokens"], row["completion_tokens"]) == (usage.prompt_tokens, usage.completion_tokens)
    assert (row["cached_tokens"], row["reasoning_tokens"]) == (12, 2)
    expected = PUBLISHED_RATES["gpt-4o"].openai_cost(
        usage.prompt_tokens, usage.completion_tokens, cached_tokens=12, reasoning_tokens=2
    )
    assert_cost(row["cost_usd"], expected)
    assert row["cost_source"] == "library"
    assert row["temperature"] == 0.2 and row["max_tokens"] == 50
    assert row["response"] == "Fake reply to: hello there" and "hello there" in row["prompt"]
    assert row["message_id"] == got.parse().id
    metadata = json.loads(row["metadata"])
    assert metadata["tier"] == "pro" and metadata["region"] == "eu"
    assert row["latency_ms"] > 0


def test_chat_stream_passes_through_and_records_ttft_and_usage(
    gateway: Gateway, upstream: FakeProvider, direct: FakeProvider
) -> None:
    upstream.ttft_delay_s = direct.ttft_delay_s = 0.15
    upstream.chunk_delay_s = direct.chunk_delay_s = 0.01
    kwargs = {"model": "gpt-4o-mini", "messages": HELLO, "stream": True, "stream_options": {"include_usage": True}}
    with _direct(direct).chat.completions.with_streaming_response.create(**kwargs) as want:  # type: ignore[call-overload]
        want_bytes = b"".join(want.iter_bytes())
        want_headers = headers_of(want.headers)
    headers = {"X-LLMLens-Session-Id": "sess-stream"}
    with gateway.openai().chat.completions.with_streaming_response.create(**kwargs, extra_headers=headers) as got:  # type: ignore[call-overload]
        got_bytes = b"".join(got.iter_bytes())
        assert headers_of(got.headers) == want_headers
        assert got.headers["content-type"].startswith("text/event-stream")
    same_bytes(want_bytes, got_bytes)

    # The parsed stream is the same too.
    chunks = list(gateway.openai().chat.completions.create(**kwargs, extra_headers=headers))  # type: ignore[call-overload]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Fake reply to: hello there"
    usage = chunks[-1].usage
    assert usage is not None
    expected = PUBLISHED_RATES["gpt-4o-mini"].openai_cost(usage.prompt_tokens, usage.completion_tokens)

    rows = gateway.wait_rows("SELECT * FROM llm_logs WHERE session_id = 'sess-stream' ORDER BY timestamp", 2)
    assert len(rows) == 2
    for row in rows:
        assert row["streamed"] is True and row["status"] == "ok"
        assert row["response"] == "Fake reply to: hello there"
        assert (row["prompt_tokens"], row["completion_tokens"]) == (usage.prompt_tokens, 5)
        assert_cost(row["cost_usd"], expected)
        assert 150 <= row["ttft_ms"] < row["latency_ms"]
        assert row["tokens_per_second"] > 0
        assert row["finish_reason"] == "stop"


def test_tool_calls_pass_through_streamed_and_not(
    gateway: Gateway, upstream: FakeProvider, direct: FakeProvider
) -> None:
    kwargs = {"model": "gpt-4o", "messages": HELLO, "tools": [WEATHER_TOOL], "tool_choice": "required"}
    headers = {"X-LLMLens-Session-Id": "sess-tools"}
    want = _direct(direct).chat.completions.with_raw_response.create(**kwargs)  # type: ignore[call-overload]
    got = gateway.openai().chat.completions.with_raw_response.create(**kwargs, extra_headers=headers)  # type: ignore[call-overload]
    same_bytes(want.http_response.content, got.http_response.content)
    call = got.parse().choices[0].message.tool_calls[0]

    with _direct(direct).chat.completions.with_streaming_response.create(**kwargs, stream=True) as want_stream:  # type: ignore[call-overload]
        want_bytes = b"".join(want_stream.iter_bytes())
    with gateway.openai().chat.completions.with_streaming_response.create(
        **kwargs, stream=True, extra_headers=headers
    ) as got_stream:  # type: ignore[call-overload]
        got_bytes = b"".join(got_stream.iter_bytes())
    same_bytes(want_bytes, got_bytes)

    rows = gateway.wait_rows("SELECT * FROM llm_logs WHERE session_id = 'sess-tools' ORDER BY timestamp", 2)
    assert [r["streamed"] for r in rows] == [False, True]
    for row in rows:
        calls = json.loads(row["tool_calls"])
        assert calls[0]["name"] == "get_weather"
        assert json.loads(calls[0]["arguments"]) == {"city": "Paris"}
        assert row["finish_reason"] == "tool_calls"
    assert json.loads(rows[0]["tool_calls"])[0]["id"] == call.id
    span = gateway.srv.sql(f"SELECT tools FROM spans WHERE span_id = '{rows[0]['span_id']}'")[0]
    assert json.loads(span["tools"])[0]["function"]["name"] == "get_weather"


def test_embeddings_and_responses_api(gateway: Gateway, upstream: FakeProvider, direct: FakeProvider) -> None:
    headers = {"X-LLMLens-Session-Id": "sess-embed"}
    want = _direct(direct).embeddings.with_raw_response.create(model="text-embedding-3-small", input=["a", "b"])
    got = gateway.openai().embeddings.with_raw_response.create(
        model="text-embedding-3-small", input=["a", "b"], extra_headers=headers
    )
    same_bytes(want.http_response.content, got.http_response.content)
    assert len(got.parse().data) == 2

    kwargs = {"model": "gpt-4o", "input": "hello responses", "stream": True}
    with _direct(direct).responses.with_streaming_response.create(**kwargs) as want_stream:  # type: ignore[call-overload]
        want_bytes = b"".join(want_stream.iter_bytes())
    with gateway.openai().responses.with_streaming_response.create(**kwargs, extra_headers=headers) as got_stream:  # type: ignore[call-overload]
        got_bytes = b"".join(got_stream.iter_bytes())
    same_bytes(want_bytes, got_bytes)

    rows = gateway.wait_rows(
        "SELECT kind, span_id, prompt_tokens, streamed, ttft_ms FROM spans WHERE session_id = 'sess-embed' "
        "ORDER BY timestamp",
        2,
    )
    assert [r["kind"] for r in rows] == ["embedding", "llm"]
    assert rows[0]["prompt_tokens"] == 2
    assert rows[1]["streamed"] is True and rows[1]["ttft_ms"] is not None
    responses = gateway.srv.sql("SELECT response, completion_tokens FROM llm_logs WHERE session_id = 'sess-embed'")
    assert responses[0]["response"] == "Fake reply to: hello responses"


def test_credentials_are_forwarded_but_never_stored(gateway: Gateway, upstream: FakeProvider) -> None:
    gateway.openai().chat.completions.create(
        model="gpt-4o", messages=HELLO, extra_headers={"X-LLMLens-Session-Id": "sess-secret"}
    )  # type: ignore[call-overload]
    rows = gateway.wait_rows("SELECT * FROM spans WHERE session_id = 'sess-secret'")
    assert rows
    assert "sk-test-secret-123" not in json.dumps(rows, default=str)
    assert "sk-test-secret-123" not in gateway.srv.log()
