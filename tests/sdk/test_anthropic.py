"""`instrument_anthropic`: the real `anthropic` package against the stand-in provider and a real server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import anthropic
import pytest
from tests.sdk._e2e import new_session, spans_of
from tests.support.fake_provider import FakeProvider
from tests.support.llmlens_server import LLMLensServer
from tests.support.prices import CUSTOM_RATES, assert_cost, write_price_file

import llmlens

MESSAGES = [{"role": "user", "content": "Hello Claude"}]
TOOLS = [{"name": "get_weather", "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}}}]
MODEL = "claude-3-5-sonnet-20241022"


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeProvider]:
    with FakeProvider(hang_s=5.0, retry_after_s=3) as fp:
        yield fp


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LLMLensServer]:
    """A server pricing with the test's own rates, so every stored cost can be checked exactly."""
    data = tmp_path_factory.mktemp("anthropic-sdk")
    with LLMLensServer(data, args=["--price-file", str(write_price_file(data))]) as srv:
        yield srv


@pytest.fixture
def session(server: LLMLensServer) -> Iterator[str]:
    llmlens.init(url=server.url, schedule_delay_s=0.05)
    llmlens.instrument_anthropic()
    session_id = new_session()
    with llmlens.context(session_id=session_id):
        yield session_id
    llmlens.uninstrument_anthropic()


def _client(provider: FakeProvider, **kwargs: object) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=provider.anthropic_base_url, api_key="sk-ant", max_retries=0, **kwargs)  # type: ignore[arg-type]


def test_message_with_cache_usage(server: LLMLensServer, provider: FakeProvider, session: str) -> None:
    provider.usage = {"input_tokens": 100, "cached_tokens": 60, "cache_creation_tokens": 10}
    try:
        message = _client(provider).messages.create(model=MODEL, max_tokens=64, system="Be brief.", messages=MESSAGES)
    finally:
        provider.usage = None
    assert isinstance(message, anthropic.types.Message)
    (llm,) = spans_of(server, session, 1)
    assert llm["provider"] == "anthropic" and llm["model"] == MODEL and llm["message_id"] == message.id
    # Anthropic's own counts, as the gateway stores them: the 30 uncached input tokens, the cache beside.
    assert (llm["prompt_tokens"], llm["cached_tokens"], llm["cache_write_tokens"]) == (30, 60, 10)
    assert llm["total_tokens"] == 100 + message.usage.output_tokens
    assert llm["completion_tokens"] == message.usage.output_tokens
    assert llm["response"] == message.content[0].text  # type: ignore[union-attr]
    assert llm["input_messages"][0] == {"role": "system", "content": "Be brief."}
    assert llm["finish_reason"] == "end_turn" and llm["max_tokens"] == 64
    # What Anthropic bills: the uncached input, cache reads and cache writes each at their own rate.
    usage = message.usage
    assert (usage.input_tokens, usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (30, 60, 10)
    expected = CUSTOM_RATES["claude-3-5-sonnet"].anthropic_cost(
        usage.input_tokens, usage.output_tokens, cache_read_tokens=60, cache_write_tokens=10
    )
    assert_cost(llm["cost_usd"], expected)
    assert llm["cost_source"] == "custom"


def test_stream_with_tool_use(server: LLMLensServer, provider: FakeProvider, session: str) -> None:
    stream = _client(provider).messages.create(
        model="fake-tool", max_tokens=64, messages=MESSAGES, tools=TOOLS, stream=True
    )
    assert type(stream) is anthropic.Stream
    events = list(stream)
    assert events[-1].type == "message_stop"
    (llm,) = spans_of(server, session, 1)
    assert llm["streamed"] is True and llm["finish_reason"] == "tool_use" and llm["ttft_ms"] is not None
    (call,) = llm["tool_calls"]
    assert call["name"] == "get_weather" and isinstance(call["arguments"], dict)
    assert llm["completion_tokens"] > 0 and llm["prompt_tokens"] > 0


def test_stream_helper(server: LLMLensServer, provider: FakeProvider, session: str) -> None:
    with _client(provider).messages.stream(model=MODEL, max_tokens=64, messages=MESSAGES) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    (llm,) = spans_of(server, session, 1)
    assert llm["response"] == text and llm["message_id"] == final.id and llm["streamed"] is True
    assert llm["tokens_per_second"] is not None
    usage = final.usage
    assert_cost(
        llm["cost_usd"], CUSTOM_RATES["claude-3-5-sonnet"].anthropic_cost(usage.input_tokens, usage.output_tokens)
    )


def test_async_create_and_stream_helper(server: LLMLensServer, provider: FakeProvider, session: str) -> None:
    async def run() -> str:
        client = anthropic.AsyncAnthropic(base_url=provider.anthropic_base_url, api_key="sk-ant", max_retries=0)
        await client.messages.create(model=MODEL, max_tokens=32, messages=MESSAGES)
        async with client.messages.stream(model=MODEL, max_tokens=32, messages=MESSAGES) as stream:
            text = "".join([t async for t in stream.text_stream])
        await client.close()
        return text

    text = asyncio.run(run())
    first, second = spans_of(server, session, 2)
    assert first["streamed"] is False and second["streamed"] is True and second["response"] == text


@pytest.mark.parametrize(
    ("model", "exc_type", "error_type"),
    [
        ("fake-ratelimit", anthropic.RateLimitError, "rate_limit"),
        ("fake-overloaded", anthropic.APIStatusError, "server_error"),
        ("fake-bad-request", anthropic.BadRequestError, "invalid_request"),
        ("fake-auth", anthropic.AuthenticationError, "auth"),
        ("fake-content-filter", anthropic.BadRequestError, "content_filter"),
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
        _client(provider).messages.create(model=model, max_tokens=16, messages=MESSAGES)
    (llm,) = spans_of(server, session, 1)
    assert llm["error_type"] == error_type, llm["error_message"]
    if error_type == "rate_limit":
        assert llm["attributes"]["retry_after_s"] == 3


def test_a_stream_that_breaks_is_an_error_and_the_app_sees_the_same_exception(
    server: LLMLensServer, provider: FakeProvider, session: str
) -> None:
    stream = _client(provider).messages.create(model="fake-stream-error", max_tokens=16, messages=MESSAGES, stream=True)
    with pytest.raises(anthropic.APIStatusError) as info:
        list(stream)
    (llm,) = spans_of(server, session, 1)
    assert llm["status"] == "error" and llm["streamed"] is True
    assert llm["error_message"] == str(info.value)[: len(llm["error_message"])]


def test_hang_hits_the_client_timeout(server: LLMLensServer, provider: FakeProvider, session: str) -> None:
    with pytest.raises(anthropic.APITimeoutError):
        _client(provider, timeout=0.5).messages.create(model="fake-hang", max_tokens=16, messages=MESSAGES)
    (llm,) = spans_of(server, session, 1)
    assert llm["error_type"] == "timeout"
