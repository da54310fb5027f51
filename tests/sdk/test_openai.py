"""`instrument_openai`: the real `openai` package against the stand-in provider, landing in a real server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from tests.sdk._e2e import new_session, spans_of
from tests.support.fake_provider import FakeProvider
from tests.support.llmlens_server import LLMLensServer
from tests.support.prices import CUSTOM_RATES, assert_cost, write_price_file

import llmlens

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
        },
    }
]


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeProvider]:
    with FakeProvider(hang_s=5.0, retry_after_s=7) as fp:
        yield fp


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LLMLensServer]:
    """A server pricing with the test's own rates, so every stored cost can be checked exactly."""
    data = tmp_path_factory.mktemp("openai-sdk")
    with LLMLensServer(data, args=["--price-file", str(write_price_file(data))]) as srv:
        yield srv


@pytest.fixture
def session(server: LLMLensServer) -> Iterator[str]:
    llmlens.init(url=server.url, schedule_delay_s=0.05)
    llmlens.instrument_openai()
    session_id = new_session()
    with llmlens.context(session_id=session_id, user_id="u-openai"):
        yield session_id
    llmlens.uninstrument_openai()


def _client(provider: FakeProvider, **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=provider.openai_base_url, api_key="sk-test", max_retries=0, **kwargs)


def test_chat_completion(server: LLMLensServer, provider: FakeProvider, session: str) -> None:
    provider.usage = {"cached_tokens": 3, "reasoning_tokens": 2}
    try:
        with llmlens.span("handler", kind="chain") as parent:
            result = _client(provider).chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES, temperature=0.2, max_tokens=50, seed=1
            )
    finally:
        provider.usage = None
    assert isinstance(result, openai.types.chat.ChatCompletion)
    handler, llm = spans_of(server, session, 2)
    assert handler["name"] == "handler"
    assert llm["kind"] == "llm" and llm["provider"] == "openai" and llm["model"] == "gpt-4o-mini"
    assert llm["parent_span_id"] == parent.span_id and llm["user_id"] == "u-openai"
    assert llm["message_id"] == result.id
    assert llm["response_model"] == result.model
    assert llm["prompt_tokens"] == result.usage.prompt_tokens  # type: ignore[union-attr]
    assert llm["completion_tokens"] == result.usage.completion_tokens  # type: ignore[union-attr]
    assert (llm["cached_tokens"], llm["reasoning_tokens"]) == (3, 2)
    assert llm["temperature"] == 0.2 and llm["max_tokens"] == 50 and llm["request_params"]["seed"] == 1
    assert llm["response"] == result.choices[0].message.content
    assert llm["input_messages"] == MESSAGES and "Hello there" in llm["prompt"]
    assert llm["finish_reason"] == "stop" and llm["status"] == "ok" and llm["streamed"] is False
    usage = result.usage
    assert usage is not None
    expected = CUSTOM_RATES["gpt-4o-mini"].openai_cost(
        usage.prompt_tokens, usage.completion_tokens, cached_tokens=3, reasoning_tokens=2
    )
    assert_cost(llm["cost_usd"], expected)
    assert llm["cost_source"] == "custom"


def test_streaming_with_usage_chunk_and_tool_calls(server: LLMLensServer, provider: FakeProvider, session: str) -> None:
    stream = _client(provider).chat.completions.create(
        model="fake-tool",
        messages=MESSAGES,
        tools=TOOLS,
        stream=True,
        stream_options={"include_usage": True},
    )
    assert type(stream) is openai.Stream  # the very same kind of object the app would get
    chunks = list(stream)
    assert chunks[-1].usage is not None
    (llm,) = spans_of(server, session, 1)
    assert llm["streamed"] is True and llm["ttft_ms"] is not None and llm["ttft_ms"] <= llm["latency_ms"]
    assert llm["completion_tokens"] == chunks[-1].usage.completion_tokens
    assert llm["tokens_per_second"] is not None and llm["tokens_per_second"] > 0
    assert llm["cost_usd"] is None and llm["cost_source"] == "unpriced"  # no price for `fake-tool`: unknown, not 0
    assert llm["finish_reason"] == "tool_calls"
    (call,) = llm["tool_calls"]
    assert call["name"] == "get_weather" and "location" in call["arguments"]
    assert llm["request_params"]["stream"] is True


def test_stream_closed_early_still_ends_the_span(server: LLMLensServer, provider: FakeProvider, session: str) -> None:
    with _client(provider).chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True) as stream:
        next(iter(stream))
    (llm,) = spans_of(server, session, 1)
    assert llm["status"] == "ok" and llm["streamed"] is True


def test_a_dropped_stream_is_an_error_and_the_app_sees_the_same_exception(
    server: LLMLensServer, provider: FakeProvider, session: str
) -> None:
    stream = _client(provider).chat.completions.create(model="fake-disconnect", messages=MESSAGES, stream=True)
    seen: list[Any] = []
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            seen.append(chunk)
    assert len(seen) >= 1
    (llm,) = spans_of(server, session, 1)
    assert llm["status"] == "error" and llm["ttft_ms"] is not None
    assert type(info.value).__name__ in llm["error_message"] or str(info.value)[:20] in llm["error_message"]


def test_async_stream_closed_early(server: LLMLensServer, provider: FakeProvider, session: str) -> None:
    async def run() -> None:
        client = openai.AsyncOpenAI(base_url=provider.openai_base_url, api_key="sk-test", max_retries=0)
        stream = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        async for _ in stream:
            break
        await stream.close()
        await client.close()

    asyncio.run(run())
    (llm,) = spans_of(server, session, 1)
    assert llm["status"] == "ok" and llm["streamed"] is True


def test_a_stream_dropped_unread_still_ends_its_span(
    server: LLMLensServer, provider: FakeProvider, session: str
) -> None:
    import gc

    stream = _client(provider).chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    del stream
    gc.collect()
    (llm,) = spans_of(server, session, 1)
    assert llm["streamed"] is True and llm["status"] == "ok"


def test_rate_limit_is_classified_with_retry_after(server: LLMLensServer, provider: FakeProvider, session: str) -> None:
    with pytest.raises(openai.RateLimitError) as info:
        _client(provider).chat.completions.create(model="fake-ratelimit", messages=MESSAGES)
    assert info.value.status_code == 429
    (llm,) = spans_of(server, session, 1)
    assert llm["status"] == "error" and llm["error_type"] == "rate_limit"
    assert llm["attributes"]["retry_after_s"] == 7 and llm["attributes"]["http_status"] == 429


@pytest.mark.parametrize(
    ("model", "exc_type", "error_type"),
    [
        ("fake-error", openai.InternalServerError, "server_error"),
        ("fake-bad-request", openai.BadRequestError, "invalid_request"),
        ("fake-auth", openai.AuthenticationError, "auth"),
        ("fake-content-filter", openai.BadRequestError, "content_filter"),
    ],
)
def test_errors_are_classified(
    server: LLMLensServer,
    provider: FakeProvider,
    session: str,
    model: str,
    exc_type: type[Exception],
    error_type: str,
) -> None:
    with pytest.raises(exc_type):
        _client(provider).chat.completions.create(model=model, messages=MESSAGES)
    (llm,) = spans_of(server, session, 1)
    assert llm["error_type"] == error_type, llm["error_message"]


def test_hang_hits_the_client_timeout(server: LLMLensServer, provider: FakeProvider, session: str) -> None:
    with pytest.raises(openai.APITimeoutError):
        _client(provider, timeout=0.5).chat.completions.create(model="fake-hang", messages=MESSAGES)
    (llm,) = spans_of(server, session, 1)
    assert llm["error_type"] == "timeout" and llm["latency_ms"] >= 400


def test_async_streaming_and_responses_api(server: LLMLensServer, provider: FakeProvider, session: str) -> None:
    client = openai.AsyncOpenAI(base_url=provider.openai_base_url, api_key="sk-test", max_retries=0)

    async def run() -> tuple[str, Any]:
        stream = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        assert type(stream) is openai.AsyncStream
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        response = await client.responses.create(model="gpt-4o", input="Say hi", instructions="Be nice")
        await client.close()
        return text, response

    text, response = asyncio.run(run())
    chat, resp = spans_of(server, session, 2)
    assert chat["response"] == text and chat["streamed"] is True and chat["ttft_ms"] is not None
    assert resp["name"] == "responses gpt-4o" and resp["message_id"] == response.id
    assert resp["response"] == response.output_text
    assert resp["prompt_tokens"] == response.usage.input_tokens  # type: ignore[union-attr]
    assert resp["input_messages"][0] == {"role": "system", "content": "Be nice"}
    usage = response.usage
    assert usage is not None
    assert_cost(resp["cost_usd"], CUSTOM_RATES["gpt-4o"].openai_cost(usage.input_tokens, usage.output_tokens))
    assert chat["prompt_tokens"] is None and chat["cost_usd"] is None  # the stream reported no usage


def test_responses_stream(server: LLMLensServer, provider: FakeProvider, session: str) -> None:
    provider.usage = {"cached_tokens": 4, "reasoning_tokens": 3}
    try:
        events = list(_client(provider).responses.create(model="gpt-4o", input="Stream please", stream=True))
    finally:
        provider.usage = None
    final = events[-1].response  # type: ignore[union-attr]
    (llm,) = spans_of(server, session, 1)
    assert llm["streamed"] is True and llm["response"] == final.output_text
    assert llm["completion_tokens"] == final.usage.output_tokens and llm["ttft_ms"] is not None
    assert (llm["cached_tokens"], llm["reasoning_tokens"]) == (4, 3)
    expected = CUSTOM_RATES["gpt-4o"].openai_cost(
        final.usage.input_tokens, final.usage.output_tokens, cached_tokens=4, reasoning_tokens=3
    )
    assert_cost(llm["cost_usd"], expected)


def test_capture_content_false_keeps_metrics_only(server: LLMLensServer, provider: FakeProvider) -> None:
    llmlens.init(url=server.url, schedule_delay_s=0.05, capture_content=False)
    llmlens.instrument_openai()
    session_id = new_session()
    try:
        with llmlens.context(session_id=session_id):
            _client(provider).chat.completions.create(model="gpt-4o", messages=MESSAGES)
    finally:
        llmlens.uninstrument_openai()
    (llm,) = spans_of(server, session_id, 1)
    assert llm["prompt"] is None and llm["response"] is None and llm["input_messages"] is None
    assert llm["prompt_tokens"] > 0


def test_one_client_only(server: LLMLensServer, provider: FakeProvider) -> None:
    llmlens.init(url=server.url, schedule_delay_s=0.05)
    traced, plain = _client(provider), _client(provider)
    llmlens.instrument_openai(traced)
    session_id = new_session()
    with llmlens.context(session_id=session_id):
        traced.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        plain.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    llmlens.uninstrument_openai()
    assert len(spans_of(server, session_id, 1)) == 1
