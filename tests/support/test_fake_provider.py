"""The fake LLM provider, driven by the real `openai` and `anthropic` clients over real HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from .fake_provider import FakeProvider, count_tokens

REPO_ROOT = Path(__file__).resolve().parents[2]
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
            "required": ["city", "unit"],
        },
    },
}
ANTHROPIC_WEATHER_TOOL: Any = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": WEATHER_TOOL["function"]["parameters"],
}
HELLO: Any = [{"role": "user", "content": "hello there"}]


@pytest.fixture(scope="module")
def shared_fp() -> Iterator[FakeProvider]:
    with FakeProvider() as provider:
        yield provider


@pytest.fixture
def fp(shared_fp: FakeProvider) -> FakeProvider:
    shared_fp.reset()
    return shared_fp


@pytest.fixture
def oai(fp: FakeProvider) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=fp.openai_base_url, api_key="sk-test", max_retries=0) as client:
        yield client


@pytest.fixture
def claude(fp: FakeProvider) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=fp.anthropic_base_url, api_key="sk-ant-test", max_retries=0) as client:
        yield client


# --- OpenAI -----------------------------------------------------------------------------------------------


def test_chat_completion_is_deterministic_and_recorded_byte_for_byte(fp: FakeProvider, oai: openai.OpenAI) -> None:
    reply = oai.chat.completions.create(model="gpt-4o", messages=HELLO, temperature=0.2)

    assert reply.id.startswith("chatcmpl-")
    assert reply.model == "gpt-4o-2024-08-06"
    assert reply.choices[0].message.content == "Fake reply to: hello there"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None
    assert reply.usage.prompt_tokens == count_tokens("hello there")
    assert reply.usage.completion_tokens == 5  # one token per word of the reply
    request = fp.last_request
    assert (request.method, request.path, request.scenario) == ("POST", "/v1/chat/completions", "normal")
    assert request.headers["authorization"] == "Bearer sk-test"
    assert json.loads(request.body) == {"model": "gpt-4o", "messages": HELLO, "temperature": 0.2}
    assert request.json == json.loads(request.body)
    fp.clear()
    assert fp.requests == []


def test_chat_stream_arrives_chunk_by_chunk_and_ends_with_usage(fp: FakeProvider, oai: openai.OpenAI) -> None:
    fp.ttft_delay_s, fp.chunk_delay_s = 0.2, 0.05
    fp.usage = {"cached_tokens": 2, "reasoning_tokens": 3, "output_tokens": 9}
    started = time.monotonic()
    stream = oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=HELLO,
        stream=True,
        stream_options={"include_usage": True},
    )
    arrivals: list[tuple[float, str]] = []
    chunks = []
    for chunk in stream:
        chunks.append(chunk)
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append((time.monotonic() - started, chunk.choices[0].delta.content))

    assert "".join(text for _, text in arrivals) == "Fake reply to: hello there"
    first_token_at, last_token_at = arrivals[0][0], arrivals[-1][0]
    assert first_token_at >= 0.2
    assert last_token_at - first_token_at >= 0.05 * (len(arrivals) - 1) * 0.8  # spaced, not one burst
    assert all(chunk.model == "gpt-4o-mini-2024-07-18" for chunk in chunks)
    assert chunks[-2].choices[0].finish_reason == "stop"
    final = chunks[-1]
    assert final.choices == [] and final.usage is not None
    assert final.usage.prompt_tokens == count_tokens("hello there")
    assert final.usage.completion_tokens == 9
    assert final.usage.prompt_tokens_details is not None
    assert final.usage.prompt_tokens_details.cached_tokens == 2
    assert final.usage.completion_tokens_details is not None
    assert final.usage.completion_tokens_details.reasoning_tokens == 3


def test_tool_call_plain_and_streamed(oai: openai.OpenAI) -> None:
    kwargs: dict[str, Any] = {"model": "fake-tool", "messages": HELLO, "tools": [WEATHER_TOOL]}
    reply = oai.chat.completions.create(**kwargs)
    call = reply.choices[0].message.tool_calls[0]
    assert reply.choices[0].finish_reason == "tool_calls"
    assert call.id.startswith("call_")
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris", "unit": "c"}

    pieces, names, finish = [], [], None
    for chunk in oai.chat.completions.create(**kwargs, stream=True):
        choice = chunk.choices[0]
        for delta in choice.delta.tool_calls or []:
            names += [delta.function.name] if delta.function and delta.function.name else []
            pieces += [delta.function.arguments] if delta.function and delta.function.arguments else []
        finish = choice.finish_reason or finish
    assert names == ["get_weather"]
    assert len(pieces) > 1
    assert json.loads("".join(pieces)) == {"city": "Paris", "unit": "c"}
    assert finish == "tool_calls"


def test_tool_choice_required_forces_a_call_with_any_model(oai: openai.OpenAI) -> None:
    reply = oai.chat.completions.create(
        model="gpt-4o",
        messages=HELLO,
        tools=[WEATHER_TOOL],
        tool_choice="required",
    )
    assert reply.choices[0].message.tool_calls


def test_max_tokens_truncates_with_finish_reason_length(oai: openai.OpenAI) -> None:
    reply = oai.chat.completions.create(model="gpt-4o", messages=HELLO, max_tokens=2)
    assert reply.choices[0].message.content == "Fake reply "
    assert reply.choices[0].finish_reason == "length"


def test_responses_api_plain_and_streamed(fp: FakeProvider, oai: openai.OpenAI) -> None:
    fp.usage = {"cached_tokens": 1, "reasoning_tokens": 2}
    response = oai.responses.create(model="gpt-4o", input="hello there", instructions="be brief")
    assert response.id.startswith("resp_")
    assert response.status == "completed"
    assert response.output_text == "Fake reply to: hello there"
    assert response.usage is not None
    assert response.usage.input_tokens == count_tokens("be brief\nhello there")
    assert response.usage.input_tokens_details.cached_tokens == 1
    assert response.usage.output_tokens_details.reasoning_tokens == 2

    events = list(oai.responses.create(model="gpt-4o", input=HELLO, stream=True))
    types = [event.type for event in events]
    assert types[0] == "response.created" and types[-1] == "response.completed"
    deltas = [event.delta for event in events if event.type == "response.output_text.delta"]
    assert "".join(deltas) == "Fake reply to: hello there"
    assert [event.sequence_number for event in events] == list(range(len(events)))
    completed = events[-1]
    assert completed.type == "response.completed"
    assert completed.response.usage is not None
    assert completed.response.usage.output_tokens_details.reasoning_tokens == 2

    function_tool: Any = {**WEATHER_TOOL["function"], "type": "function"}
    with oai.responses.stream(model="gpt-4o", input="hi", tools=[function_tool], tool_choice="required") as stream:
        final = stream.get_final_response()
    assert final.output[0].type == "function_call"
    assert json.loads(final.output[0].arguments) == {"city": "Paris", "unit": "c"}


def test_embeddings_float_and_base64_agree(oai: openai.OpenAI) -> None:
    as_base64 = oai.embeddings.create(model="text-embedding-3-small", input=["alpha", "beta"])  # SDK default
    as_float = oai.embeddings.create(model="text-embedding-3-small", input=["alpha", "beta"], encoding_format="float")
    assert [len(item.embedding) for item in as_float.data] == [8, 8]
    assert as_base64.data[0].embedding == pytest.approx(as_float.data[0].embedding, abs=1e-6)
    assert as_float.data[0].embedding != as_float.data[1].embedding
    assert as_float.model == "text-embedding-3-small"
    assert as_float.usage.prompt_tokens == count_tokens("alpha") + count_tokens("beta")
    sized = oai.embeddings.create(model="text-embedding-3-large", input="x", dimensions=32, encoding_format="float")
    assert len(sized.data[0].embedding) == 32


def test_legacy_completions(oai: openai.OpenAI) -> None:
    reply = oai.completions.create(model="gpt-3.5-turbo-instruct", prompt="say hi")
    assert reply.choices[0].text == "Fake reply to: say hi"
    assert reply.id.startswith("cmpl-")
    text = "".join(chunk.choices[0].text for chunk in oai.completions.create(model="x", prompt="hi", stream=True))
    assert text == "Fake reply to: hi"


@pytest.mark.parametrize(
    ("model", "error_class", "status", "code"),
    [
        ("fake-ratelimit", openai.RateLimitError, 429, "rate_limit_exceeded"),
        ("fake-quota", openai.RateLimitError, 429, "insufficient_quota"),
        ("fake-error", openai.InternalServerError, 500, None),
        ("fake-overloaded", openai.InternalServerError, 503, None),
        ("fake-bad-request", openai.BadRequestError, 400, "empty_array"),
        ("fake-context-length", openai.BadRequestError, 400, "context_length_exceeded"),
        ("fake-auth", openai.AuthenticationError, 401, "invalid_api_key"),
        ("fake-content-filter", openai.BadRequestError, 400, "content_policy_violation"),
        ("fake-nonsense", openai.NotFoundError, 404, "model_not_found"),
    ],
)
def test_openai_errors_raise_the_sdk_exception(
    oai: openai.OpenAI, model: str, error_class: type[openai.APIStatusError], status: int, code: str | None
) -> None:
    with pytest.raises(error_class) as caught:
        oai.chat.completions.create(model=model, messages=HELLO)
    assert caught.value.status_code == status
    assert caught.value.code == code
    assert caught.value.response.headers["x-request-id"].startswith("req_")


def test_rate_limit_exposes_retry_after_and_type(fp: FakeProvider, oai: openai.OpenAI) -> None:
    fp.retry_after_s = 7
    with pytest.raises(openai.RateLimitError) as caught:
        oai.chat.completions.create(model="fake-ratelimit-tokens", messages=HELLO)
    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.type == "tokens"
    body: Any = caught.value.body
    assert body["type"] == "tokens"


def test_hang_times_out_the_client(fp: FakeProvider) -> None:
    with openai.OpenAI(base_url=fp.openai_base_url, api_key="k", max_retries=0, timeout=0.3) as client:
        started = time.monotonic()
        with pytest.raises(openai.APITimeoutError):
            client.chat.completions.create(model="fake-hang", messages=HELLO)
    assert time.monotonic() - started < 2


def test_scenario_by_header_and_by_queue(fp: FakeProvider, oai: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError):
        oai.chat.completions.create(
            model="gpt-4o",
            messages=HELLO,
            extra_headers={"X-Fake-Scenario": "error"},
        )
    fp.retry_after_s = 0.01
    fp.enqueue("ratelimit", times=2)
    assert fp.pending_scenarios == ["ratelimit", "ratelimit"]
    with oai.with_options(max_retries=2) as retrying:
        reply = retrying.chat.completions.create(model="gpt-4o", messages=HELLO)
    assert reply.choices[0].message.content == "Fake reply to: hello there"
    assert [r.scenario for r in fp.requests] == ["error", "ratelimit", "ratelimit", "normal"]
    assert fp.requests[-1].headers["x-stainless-retry-count"] == "2"
    with pytest.raises(ValueError, match="unknown fake scenario"):
        fp.enqueue("no-such-thing")


def test_broken_streams(fp: FakeProvider, oai: openai.OpenAI) -> None:
    received: list[str] = []
    with pytest.raises(openai.APIError, match="server had an error"):
        for chunk in oai.chat.completions.create(model="fake-stream-error", messages=HELLO, stream=True):
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "Fake reply "
    with pytest.raises(openai.APIConnectionError):
        for _ in oai.chat.completions.create(model="fake-disconnect", messages=HELLO, stream=True):
            pass
    with (
        openai.OpenAI(base_url=fp.openai_base_url, api_key="k", max_retries=0, timeout=0.3) as client,
        pytest.raises(openai.APITimeoutError),
    ):
        for _ in client.chat.completions.create(model="fake-stall", messages=HELLO, stream=True):
            pass


def test_fifty_concurrent_streams(fp: FakeProvider) -> None:
    fp.ttft_delay_s, fp.chunk_delay_s = 0.1, 0.05

    async def one_stream(client: openai.AsyncOpenAI, index: int) -> str:
        stream = await client.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": f"stream {index}"}],
            stream=True,
        )
        return "".join([chunk.choices[0].delta.content or "" async for chunk in stream])

    async def all_streams() -> list[str]:
        async with openai.AsyncOpenAI(base_url=fp.openai_base_url, api_key="k", max_retries=0) as client:
            return await asyncio.gather(*(one_stream(client, i) for i in range(50)))

    started = time.monotonic()
    texts = asyncio.run(all_streams())
    elapsed = time.monotonic() - started
    assert texts == [f"Fake reply to: stream {i}" for i in range(50)]
    assert elapsed < 0.1 + 0.05 * 4 + 2.0  # one stream takes ~0.3 s; serial would take 15 s
    assert len(fp.requests) == 50


def test_keep_alive_reuses_one_connection(fp: FakeProvider) -> None:
    with httpx.Client(base_url=fp.url) as client:
        first = client.get("/v1/models")
        second = client.post("/v1/embeddings", json={"model": "m", "input": "x"})
    assert first.status_code == second.status_code == 200
    assert first.headers.get("connection", "keep-alive") != "close"
    assert fp.requests[0].client is not None
    assert fp.requests[1].client == fp.requests[0].client  # same TCP connection


def test_reset_restores_constructor_settings_and_stop_is_prompt() -> None:
    provider = FakeProvider(reply_text="fixed", chunk_delay_s=0.01).start()
    provider.reply_text, provider.chunk_delay_s, provider.usage = "changed", 1.0, {"output_tokens": 1}
    provider.enqueue("error")
    provider.reset()
    assert (provider.reply_text, provider.chunk_delay_s) == ("fixed", 0.01)
    assert not provider.usage
    assert provider.pending_scenarios == []

    def post_hanging_request() -> None:
        with contextlib.suppress(httpx.HTTPError):
            httpx.post(provider.openai_base_url + "/chat/completions", json={"model": "fake-hang"}, timeout=5)

    hanging = threading.Thread(target=post_hanging_request)
    hanging.start()
    deadline = time.monotonic() + 5
    while not provider.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    assert provider.last_request.scenario == "hang"
    started = time.monotonic()
    provider.stop()
    assert time.monotonic() - started < 1.5
    hanging.join(timeout=5)
    with pytest.raises(ValueError, match="unknown usage keys"):
        provider.usage = {"prompt_tokens": 3}


def test_api_key_check_and_unknown_route(fp: FakeProvider, oai: openai.OpenAI) -> None:
    fp.api_key = "sk-right"
    with pytest.raises(openai.AuthenticationError):
        oai.chat.completions.create(model="gpt-4o", messages=HELLO)
    answer = httpx.post(fp.url + "/v1/nowhere", json={})
    assert answer.status_code == 404
    assert answer.json()["error"]["type"] == "invalid_request_error"


# --- Anthropic --------------------------------------------------------------------------------------------


def test_anthropic_message(fp: FakeProvider, claude: anthropic.Anthropic) -> None:
    fp.usage = {"input_tokens": 100, "cached_tokens": 60, "cache_creation_tokens": 10, "output_tokens": 5}
    message = claude.messages.create(
        model="claude-3-5-sonnet-20241022",
        max_tokens=256,
        system="be kind",
        messages=HELLO,
    )
    assert message.id.startswith("msg_01")
    assert message.model == "claude-3-5-sonnet-20241022"
    assert message.content[0].type == "text"
    assert message.content[0].text == "Fake reply to: hello there"
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (30, 5)
    assert message.usage.cache_read_input_tokens == 60
    assert message.usage.cache_creation_input_tokens == 10
    request = fp.last_request
    assert request.path == "/v1/messages"
    # this anthropic release sends the key as a bearer token; older ones send x-api-key
    sent_key = request.headers.get("x-api-key") or request.headers["authorization"].removeprefix("Bearer ")
    assert sent_key == "sk-ant-test"
    assert "anthropic-version" in request.headers


def test_anthropic_stream_events_and_final_usage(fp: FakeProvider, claude: anthropic.Anthropic) -> None:
    fp.ttft_delay_s = 0.1
    fp.usage = {"cached_tokens": 1}
    kwargs: dict[str, Any] = {"model": "claude-3-5-haiku-latest", "max_tokens": 64, "messages": HELLO}
    events = list(claude.messages.create(**kwargs, stream=True))
    types = [event.type for event in events]
    assert types[:2] == ["message_start", "content_block_start"]
    assert types[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    start = events[0]
    assert start.type == "message_start"
    assert start.message.usage.cache_read_input_tokens == 1
    assert start.message.model == "claude-3-5-haiku-20241022"
    assert fp.last_request.json["stream"] is True

    with claude.messages.stream(**kwargs) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Fake reply to: hello there"
    assert final.usage.output_tokens == 5
    assert final.stop_reason == "end_turn"


def test_anthropic_tool_use_plain_and_streamed(claude: anthropic.Anthropic) -> None:
    kwargs: dict[str, Any] = {
        "model": "fake-tool",
        "max_tokens": 64,
        "messages": HELLO,
        "tools": [ANTHROPIC_WEATHER_TOOL],
    }
    message = claude.messages.create(**kwargs)
    assert message.stop_reason == "tool_use"
    tool_use = message.content[1]
    assert tool_use.type == "tool_use"
    assert tool_use.id.startswith("toolu_01")
    assert (tool_use.name, tool_use.input) == ("get_weather", {"city": "Paris", "unit": "c"})

    partials = []
    with claude.messages.stream(**kwargs) as stream:
        for event in stream:
            if event.type == "content_block_delta" and event.delta.type == "input_json_delta":
                partials.append(event.delta.partial_json)
        final = stream.get_final_message()
    assert json.loads("".join(partials)) == {"city": "Paris", "unit": "c"}
    assert [block.type for block in final.content] == ["text", "tool_use"]
    tool_block: Any = final.content[1]
    assert tool_block.input == {"city": "Paris", "unit": "c"}


@pytest.mark.parametrize(
    ("scenario", "error_class", "status", "error_type"),
    [
        ("ratelimit", anthropic.RateLimitError, 429, "rate_limit_error"),
        ("overloaded", anthropic.OverloadedError, 529, "overloaded_error"),
        ("error", anthropic.InternalServerError, 500, "api_error"),
        ("bad-request", anthropic.BadRequestError, 400, "invalid_request_error"),
        ("auth", anthropic.AuthenticationError, 401, "authentication_error"),
    ],
)
def test_anthropic_errors_raise_the_sdk_exception(
    fp: FakeProvider,
    claude: anthropic.Anthropic,
    scenario: str,
    error_class: type[anthropic.APIStatusError],
    status: int,
    error_type: str,
) -> None:
    fp.enqueue(scenario)
    with pytest.raises(error_class) as caught:
        claude.messages.create(model="claude-3-5-sonnet-20241022", max_tokens=8, messages=HELLO)
    assert caught.value.status_code == status
    body: Any = caught.value.body
    assert body["type"] == "error" and body["error"]["type"] == error_type
    if status == 429:
        assert caught.value.response.headers["retry-after"] == "1"


def test_anthropic_stream_error_mid_stream(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.APIStatusError, match="overloaded_error"):
        for _ in claude.messages.create(model="fake-stream-error", max_tokens=8, messages=HELLO, stream=True):
            pass


# --- running it by hand -----------------------------------------------------------------------------------


def test_module_runs_as_a_command() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "tests.support.fake_provider", "--port", str(port)]
    env = os.environ | {"PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith("fake provider on http://127.0.0.1:")
        answer = httpx.post(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            json={"model": "gpt-4o", "messages": HELLO},
        )
        assert answer.json()["choices"][0]["message"]["content"] == "Fake reply to: hello there"
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
