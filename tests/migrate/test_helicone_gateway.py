"""An app sending Helicone's headers through the llmlens gateway keeps its attribution; Helicone-Auth stays here.

The real `openai` client, pointed at a real llmlens gateway whose upstream is the stand-in provider,
sends Helicone's headers as an app moving from Helicone's gateway does (only its base URL changed).
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from tests.support.fake_provider import FakeProvider
from tests.support.llmlens_server import LLMLensServer
from tests.support.prices import CUSTOM_RATES, assert_cost, write_price_file

from llmlens.model import trace_id_from_text

USAGE = {"input_tokens": 40, "output_tokens": 12, "cached_tokens": 16, "reasoning_tokens": 5}
RATES = CUSTOM_RATES["gpt-4o-mini"]
HELICONE_KEY = "sk-helicone-secret-4242"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def upstream_port() -> int:
    return _free_port()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, upstream_port: int) -> Iterator[LLMLensServer]:
    data = tmp_path_factory.mktemp("helicone")
    args = ["--upstream", f"openai=http://127.0.0.1:{upstream_port}/v1", "--price-file", str(write_price_file(data))]
    with LLMLensServer(data, args=args) as srv:
        yield srv


@pytest.fixture
def upstream(upstream_port: int) -> Iterator[FakeProvider]:
    with FakeProvider(port=upstream_port) as fp:
        fp.usage = USAGE
        yield fp


def _client(gateway: LLMLensServer, headers: dict[str, str]) -> openai.OpenAI:
    base = {"Helicone-Auth": f"Bearer {HELICONE_KEY}"}
    return openai.OpenAI(
        base_url=gateway.url + "/proxy/openai/v1",
        api_key="sk-provider-key",
        max_retries=0,
        default_headers=base | headers,
    )


def _wait_span(gateway: LLMLensServer, span_id: str, timeout_s: float = 15.0) -> dict[str, Any]:
    """The gateway records a call after answering it, off the request path: wait until it is committed."""
    deadline = time.monotonic() + timeout_s
    while True:
        rows = gateway.sql(f"SELECT * FROM llm_logs WHERE span_id = '{span_id}'")
        if rows:
            return rows[0]
        assert time.monotonic() < deadline, f"span {span_id} was not recorded within {timeout_s} s"
        time.sleep(0.05)


def _never_stored(gateway: LLMLensServer, text: str) -> None:
    rows = gateway.sql(
        "SELECT count(*) AS n FROM spans WHERE CAST(metadata AS VARCHAR) LIKE '%' || ? || '%' "
        "OR CAST(attributes AS VARCHAR) LIKE '%' || ? || '%'".replace("?", f"'{text}'")
    )
    assert rows[0]["n"] == 0


HELICONE_HEADERS = {
    "Helicone-User-Id": "hc-user-1",
    "Helicone-Session-Id": "hc-session-1",
    "Helicone-Session-Path": "/triage/answer",
    "Helicone-Session-Name": "Support triage",
    "Helicone-Property-Feature": "triage",
    "Helicone-Property-Tier": "pro",
    "Helicone-Property-Conversation": "c-77",
    "Helicone-Prompt-Id": "triage-prompt",
    "Helicone-Retry-Enabled": "true",
}


def test_helicone_headers_attribute_a_streamed_call(gateway: LLMLensServer, upstream: FakeProvider) -> None:
    client = _client(gateway, HELICONE_HEADERS)
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Where is my parcel?"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    span_id = raw.headers["x-llmlens-span-id"]
    text, usage = "", None
    for chunk in raw.parse():
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
        if chunk.usage is not None:
            usage = chunk.usage
    assert usage is not None
    row = _wait_span(gateway, span_id)
    assert (row["model"], row["response"], row["streamed"]) == ("gpt-4o-mini", text, True)
    assert (row["prompt_tokens"], row["completion_tokens"]) == (usage.prompt_tokens, usage.completion_tokens)
    assert row["cached_tokens"] == usage.prompt_tokens_details.cached_tokens == 16
    assert row["reasoning_tokens"] == usage.completion_tokens_details.reasoning_tokens == 5
    assert 0 < row["ttft_ms"] <= row["latency_ms"]
    assert_cost(row["cost_usd"], RATES.openai_cost(40, 12, cached_tokens=16, reasoning_tokens=5))
    assert (row["user_id"], row["session_id"], row["feature"]) == ("hc-user-1", "hc-session-1", "triage")
    assert row["template_id"] == "triage-prompt"
    metadata = json.loads(row["metadata"])
    assert metadata["session_path"] == "/triage/answer" and metadata["session_name"] == "Support triage"
    assert metadata["tier"] == "pro" and metadata["conversation"] == "c-77"
    assert "Helicone-Retry-Enabled" in " ".join(metadata["gateway_warnings"])
    # A Helicone session is one tree of requests: its calls share one trace.
    assert row["trace_id"] == trace_id_from_text("helicone-session:hc-session-1")
    (sent,) = upstream.requests
    assert not [h for h in sent.headers if h.startswith("helicone-")], sent.headers
    assert sent.headers["authorization"] == "Bearer sk-provider-key"
    _never_stored(gateway, HELICONE_KEY)


def test_a_failed_call_keeps_its_attribution(gateway: LLMLensServer, upstream: FakeProvider) -> None:
    client = _client(gateway, {"Helicone-User-Id": "hc-user-2", "Helicone-Session-Id": "hc-session-2"})
    upstream.enqueue("ratelimit")
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}])
    span_id = caught.value.response.headers["x-llmlens-span-id"]
    row = _wait_span(gateway, span_id)
    assert (row["status"], row["error_type"]) == ("error", "rate_limit")
    assert (row["user_id"], row["session_id"]) == ("hc-user-2", "hc-session-2")
    assert row["cost_usd"] is None or row["cost_usd"] == 0
    assert not [h for h in upstream.requests[0].headers if h.startswith("helicone-")]


def test_llmlens_headers_win_over_helicone(gateway: LLMLensServer, upstream: FakeProvider) -> None:
    headers = {
        **HELICONE_HEADERS,
        "X-LLMLens-User-Id": "ours-user",
        "X-LLMLens-Session-Id": "ours-session",
        "X-LLMLens-Feature": "ours-feature",
        "X-LLMLens-Template-Id": "ours-template",
        "X-LLMLens-Properties": json.dumps({"tier": "free"}),
    }
    raw = _client(gateway, headers).chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello"}]
    )
    reply = raw.parse()
    row = _wait_span(gateway, raw.headers["x-llmlens-span-id"])
    assert (row["user_id"], row["session_id"], row["feature"]) == ("ours-user", "ours-session", "ours-feature")
    assert row["template_id"] == "ours-template"
    metadata = json.loads(row["metadata"])
    assert metadata["tier"] == "free" and metadata["conversation"] == "c-77"
    assert (row["prompt_tokens"], row["completion_tokens"]) == (
        reply.usage.prompt_tokens,
        reply.usage.completion_tokens,
    )
    assert row["ttft_ms"] is None  # not streamed: no first token to time


def test_helicone_cache_enabled_uses_the_exact_cache(gateway: LLMLensServer, upstream: FakeProvider) -> None:
    client = _client(gateway, {"Helicone-Cache-Enabled": "true", "Helicone-User-Id": "hc-cache"})
    messages = [{"role": "user", "content": "Cache me, please (helicone)"}]
    first = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=messages)
    first_row = _wait_span(gateway, first.headers["x-llmlens-span-id"])
    second = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=messages)
    assert second.headers.get("x-llmlens-cache") == "HIT"
    assert second.parse().choices[0].message.content == first.parse().choices[0].message.content
    assert len(upstream.requests) == 1
    second_row = _wait_span(gateway, second.headers["x-llmlens-span-id"])
    assert (first_row["cache_hit"], second_row["cache_hit"]) in ((None, True), (False, True))
    assert second_row["user_id"] == "hc-cache"
    # Without the header the same request goes upstream again.
    _client(gateway, {}).chat.completions.create(model="gpt-4o-mini", messages=messages)
    assert len(upstream.requests) == 2


def test_with_auth_on_helicone_auth_carries_the_llmlens_key(tmp_path_factory: pytest.TempPathFactory) -> None:
    from tests.migrate._support import llmlens

    data = tmp_path_factory.mktemp("helicone-auth")
    done = llmlens("keys", "create", "--project", "shop", "--create-project", "--data", str(data))
    assert done.returncode == 0, done.stderr
    key = done.stdout.splitlines()[0].strip()
    admin = llmlens("keys", "create", "--role", "admin", "--project", "shop", "--data", str(data)).stdout.split()[0]
    port = _free_port()
    with (
        FakeProvider(port=port) as fp,
        LLMLensServer(data, args=["--auth", "on", "--upstream", f"openai=http://127.0.0.1:{port}/v1"]) as srv,
    ):
        base = srv.url + "/proxy/openai/v1"
        client = openai.OpenAI(base_url=base, api_key="sk-provider-key", max_retries=0)
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Hi"}],
            extra_headers={"Helicone-Auth": f"Bearer {key}", "Helicone-User-Id": "shop-user"},
        )
        span_id = raw.headers["x-llmlens-span-id"]
        assert fp.requests[0].headers["authorization"] == "Bearer sk-provider-key"
        assert "helicone-auth" not in fp.requests[0].headers
        with pytest.raises(openai.AuthenticationError):  # Helicone's own key is no llmlens key
            client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "Hi"}],
                extra_headers={"Helicone-Auth": f"Bearer {HELICONE_KEY}"},
            )
        assert len(fp.requests) == 1
        deadline = time.monotonic() + 15
        while not (
            rows := srv.sql(
                f"SELECT project, user_id FROM llm_logs WHERE span_id = '{span_id}'",
                headers={"Authorization": f"Bearer {admin}"},
            )
        ):
            assert time.monotonic() < deadline, "the call was not recorded"
            time.sleep(0.05)
        assert rows == [{"project": "shop", "user_id": "shop-user"}]
