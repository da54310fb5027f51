"""Failures reach the client as they would directly, and are recorded with their error type."""

from __future__ import annotations

import time

import anthropic
import httpx
import openai
import pytest
from tests.proxy._support import Gateway, headers_of, same_bytes
from tests.support.fake_provider import FakeProvider

HELLO = [{"role": "user", "content": "hello"}]


@pytest.mark.parametrize(
    ("model", "error", "status", "error_type"),
    [
        ("fake-ratelimit", openai.RateLimitError, 429, "rate_limit"),
        ("fake-error", openai.InternalServerError, 500, "server_error"),
        ("fake-context-length", openai.BadRequestError, 400, "invalid_request"),
    ],
)
def test_openai_errors_pass_through(
    gateway: Gateway,
    upstream: FakeProvider,
    direct: FakeProvider,
    model: str,
    error: type[openai.APIStatusError],
    status: int,
    error_type: str,
) -> None:
    session = f"sess-err-{status}"
    with pytest.raises(error) as want:
        openai.OpenAI(base_url=direct.openai_base_url, api_key="sk-x", max_retries=0).chat.completions.create(
            model=model, messages=HELLO
        )  # type: ignore[arg-type]
    with pytest.raises(error) as got:
        gateway.openai().chat.completions.create(
            model=model, messages=HELLO, extra_headers={"X-LLMLens-Session-Id": session}
        )  # type: ignore[arg-type]
    assert got.value.status_code == want.value.status_code == status
    assert headers_of(got.value.response.headers) == headers_of(want.value.response.headers)
    same_bytes(want.value.response.content, got.value.response.content)
    assert got.value.message == want.value.message

    row = gateway.wait_rows(f"SELECT * FROM llm_logs WHERE session_id = '{session}'")[0]
    assert row["status"] == "error" and row["error_type"] == error_type
    assert row["error_message"] and row["blocked"] is False
    assert gateway.srv.sql(f"SELECT http_status FROM spans WHERE session_id = '{session}'")[0]["http_status"] == status


def test_anthropic_rate_limit_and_overload_pass_through(
    gateway: Gateway, upstream: FakeProvider, direct: FakeProvider
) -> None:
    for scenario, error in (("ratelimit", anthropic.RateLimitError), ("overloaded", anthropic.InternalServerError)):
        with pytest.raises(error) as want:
            anthropic.Anthropic(base_url=direct.anthropic_base_url, api_key="k", max_retries=0).messages.create(
                model="claude-3-5-haiku-latest",
                max_tokens=10,
                messages=HELLO,
                extra_headers={"X-Fake-Scenario": scenario},
            )  # type: ignore[arg-type]
        with pytest.raises(error) as got:
            gateway.anthropic().messages.create(
                model="claude-3-5-haiku-latest",
                max_tokens=10,
                messages=HELLO,
                extra_headers={"X-Fake-Scenario": scenario, "X-LLMLens-Session-Id": "sess-claude-err"},
            )  # type: ignore[arg-type]
        assert got.value.status_code == want.value.status_code
        assert headers_of(got.value.response.headers) == headers_of(want.value.response.headers)
        same_bytes(want.value.response.content, got.value.response.content)
    rows = gateway.wait_rows(
        "SELECT error_type FROM llm_logs WHERE session_id = 'sess-claude-err' ORDER BY timestamp", 2
    )
    assert [r["error_type"] for r in rows] == ["rate_limit", "server_error"]


def test_error_event_inside_a_stream_is_recorded(
    gateway: Gateway, upstream: FakeProvider, direct: FakeProvider
) -> None:
    kwargs = {"model": "gpt-4o", "messages": HELLO, "stream": True}
    direct_client = openai.OpenAI(base_url=direct.openai_base_url, api_key="sk-x", max_retries=0)
    with direct_client.chat.completions.with_streaming_response.create(
        **kwargs, extra_headers={"X-Fake-Scenario": "stream-error"}
    ) as want:  # type: ignore[call-overload]
        want_bytes = b"".join(want.iter_bytes())
    headers = {"X-Fake-Scenario": "stream-error", "X-LLMLens-Session-Id": "sess-stream-error"}
    with gateway.openai().chat.completions.with_streaming_response.create(**kwargs, extra_headers=headers) as got:  # type: ignore[call-overload]
        got_bytes = b"".join(got.iter_bytes())
    same_bytes(want_bytes, got_bytes)
    row = gateway.wait_rows("SELECT * FROM llm_logs WHERE session_id = 'sess-stream-error'")[0]
    assert row["status"] == "error" and row["error_type"] == "server_error"
    assert row["response"]  # the chunks that did arrive


def test_client_timeout_behaves_as_direct_and_is_recorded(
    gateway: Gateway, upstream: FakeProvider, direct: FakeProvider
) -> None:
    upstream.hang_s = direct.hang_s = 5.0
    with pytest.raises(openai.APITimeoutError):
        openai.OpenAI(base_url=direct.openai_base_url, api_key="k", max_retries=0, timeout=0.5).chat.completions.create(
            model="fake-hang", messages=HELLO
        )  # type: ignore[arg-type]
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        gateway.openai(timeout=0.5).chat.completions.create(
            model="fake-hang", messages=HELLO, extra_headers={"X-LLMLens-Session-Id": "sess-timeout"}
        )  # type: ignore[arg-type]
    assert time.monotonic() - started < 2
    row = gateway.wait_rows("SELECT * FROM llm_logs WHERE session_id = 'sess-timeout'")[0]
    assert row["status"] == "error" and row["error_type"] == "timeout"
    assert "client closed the connection" in row["error_message"]
    assert 400 <= row["latency_ms"] < 3000  # the gateway gave up with the client, not after hang_s


def test_upstream_refusing_gives_502_in_the_provider_format(gateway: Gateway) -> None:
    client = openai.OpenAI(base_url=gateway.srv.url + "/proxy/dead/v1", api_key="k", max_retries=0)
    with pytest.raises(openai.InternalServerError) as got:
        client.chat.completions.create(
            model="gpt-4o", messages=HELLO, extra_headers={"X-LLMLens-Session-Id": "sess-dead"}
        )  # type: ignore[arg-type]
    assert got.value.status_code == 502
    body = got.value.response.json()
    assert body["error"]["code"] == "upstream_unreachable"
    assert "'dead'" in body["error"]["message"] and "unreachable" in body["error"]["message"]

    claude = anthropic.Anthropic(base_url=gateway.srv.url + "/proxy/dead", api_key="k", max_retries=0)
    with pytest.raises(anthropic.APIStatusError) as got_claude:
        claude.messages.create(model="claude-3-5-haiku-latest", max_tokens=5, messages=HELLO)  # type: ignore[arg-type]
    assert got_claude.value.status_code == 502
    assert got_claude.value.response.json()["type"] == "error"
    assert got_claude.value.response.json()["error"]["type"] == "api_error"

    row = gateway.wait_rows("SELECT * FROM llm_logs WHERE session_id = 'sess-dead'")[0]
    assert row["status"] == "error" and row["error_type"] == "connection_error" and row["provider"] == "dead"
    assert "unreachable" in row["error_message"]


def test_unknown_upstream_is_a_404_naming_the_configured_ones(gateway: Gateway) -> None:
    response = httpx.post(gateway.srv.url + "/proxy/nope/v1/chat/completions", json={"model": "x"})
    assert response.status_code == 404
    message = response.json()["error"]["message"]
    assert "'nope'" in message and "openai" in message and "anthropic" in message
