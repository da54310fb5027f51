"""The real `anthropic` client through the gateway: messages, streams and tool use, as direct."""

from __future__ import annotations

import json

import anthropic
from tests.proxy._support import Gateway, headers_of, same_bytes
from tests.support.fake_provider import FakeProvider
from tests.support.prices import CUSTOM_RATES, assert_cost

HELLO = [{"role": "user", "content": "hello claude"}]
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def _direct(fp: FakeProvider) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=fp.anthropic_base_url, api_key="sk-ant-secret-456", max_retries=0)


def test_message_passes_through_and_is_recorded(gateway: Gateway, upstream: FakeProvider, direct: FakeProvider) -> None:
    usage = {"input_tokens": 1200, "output_tokens": 5, "cached_tokens": 1000, "cache_creation_tokens": 50}
    upstream.usage = direct.usage = usage
    kwargs = {"model": "claude-3-5-sonnet-latest", "max_tokens": 100, "system": "be brief", "messages": HELLO}
    want = _direct(direct).messages.with_raw_response.create(**kwargs)  # type: ignore[call-overload]
    got = gateway.anthropic().messages.with_raw_response.create(
        **kwargs, extra_headers={"X-LLMLens-Session-Id": "sess-claude"}
    )  # type: ignore[call-overload]
    assert got.http_response.status_code == 200
    assert headers_of(got.headers) == headers_of(want.headers)
    same_bytes(want.http_response.content, got.http_response.content)
    sent = upstream.last_request.headers  # the client's own key, however this SDK version sends it
    assert "sk-ant-secret-456" in (sent.get("x-api-key"), sent.get("authorization", "").removeprefix("Bearer "))

    row = gateway.wait_rows("SELECT * FROM llm_logs WHERE session_id = 'sess-claude'")[0]
    assert row["provider"] == "anthropic" and row["response_model"] == "claude-3-5-sonnet-20241022"
    # Anthropic's shape: input_tokens excludes the 1000 cache reads and 50 writes, which are kept beside it.
    assert (row["prompt_tokens"], row["cached_tokens"], row["cache_write_tokens"], row["completion_tokens"]) == (
        150,
        1000,
        50,
        5,
    )
    expected = CUSTOM_RATES["claude-3-5-sonnet"].anthropic_cost(150, 5, cache_read_tokens=1000, cache_write_tokens=50)
    assert_cost(row["cost_usd"], expected)
    assert row["cost_source"] == "custom"
    messages = json.loads(row["input_messages"])
    assert messages[0] == {"role": "system", "content": "be brief"}
    assert row["finish_reason"] == "end_turn"


def test_stream_and_tool_use_pass_through(gateway: Gateway, upstream: FakeProvider, direct: FakeProvider) -> None:
    upstream.ttft_delay_s = direct.ttft_delay_s = 0.1
    kwargs = {"model": "claude-3-5-haiku-latest", "max_tokens": 100, "messages": HELLO, "tools": [WEATHER_TOOL]}
    headers = {"X-LLMLens-Session-Id": "sess-claude-stream", "X-Fake-Scenario": "tool"}
    with _direct(direct).messages.with_streaming_response.create(
        **kwargs, stream=True, extra_headers={"X-Fake-Scenario": "tool"}
    ) as want:  # type: ignore[call-overload]
        want_bytes = b"".join(want.iter_bytes())
    with gateway.anthropic().messages.with_streaming_response.create(
        **kwargs, stream=True, extra_headers=headers
    ) as got:  # type: ignore[call-overload]
        got_bytes = b"".join(got.iter_bytes())
    same_bytes(want_bytes, got_bytes)

    with gateway.anthropic().messages.stream(**kwargs, extra_headers=headers) as stream:  # type: ignore[arg-type]
        final = stream.get_final_message()
    tool_use = next(b for b in final.content if b.type == "tool_use")
    assert tool_use.input == {"city": "Paris"}

    rows = gateway.wait_rows("SELECT * FROM llm_logs WHERE session_id = 'sess-claude-stream' ORDER BY timestamp", 2)
    assert len(rows) == 2
    for row in rows:
        assert row["streamed"] is True and row["finish_reason"] == "tool_use"
        assert row["ttft_ms"] >= 100
        assert json.loads(row["tool_calls"])[0]["name"] == "get_weather"
        assert (row["prompt_tokens"], row["completion_tokens"]) == (final.usage.input_tokens, final.usage.output_tokens)
        expected = CUSTOM_RATES["claude-3-5-haiku"].anthropic_cost(final.usage.input_tokens, final.usage.output_tokens)
        assert_cost(row["cost_usd"], expected)
