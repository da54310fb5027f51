"""A provider the SDK cannot reach: the real `openai` and `anthropic` clients fail to connect (refused,
unknown host, reset before any answer, TLS handshake refused) and the stored span says `connection_error`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import anthropic
import openai
import pytest
from tests.sdk._e2e import new_session, spans_of
from tests.support.broken_upstream import UNRESOLVABLE_HOST, BrokenListener, closed_port
from tests.support.llmlens_server import LLMLensServer

import llmlens

MESSAGES = [{"role": "user", "content": "Hello there"}]
FAILURES = ("refused", "unresolvable", "reset", "tls")


@pytest.fixture(scope="module")
def origins() -> Iterator[dict[str, str]]:
    """scheme://host:port of an origin failing each way."""
    with BrokenListener("reset") as reset, BrokenListener("not-tls") as not_tls:
        yield {
            "refused": f"http://127.0.0.1:{closed_port()}",
            "unresolvable": f"http://{UNRESOLVABLE_HOST}",
            "reset": f"http://127.0.0.1:{reset.port}",
            "tls": f"https://127.0.0.1:{not_tls.port}",
        }


@pytest.fixture
def session(server: LLMLensServer) -> Iterator[str]:
    llmlens.init(url=server.url, schedule_delay_s=0.05)
    llmlens.instrument_openai()
    llmlens.instrument_anthropic()
    session_id = new_session()
    with llmlens.context(session_id=session_id, user_id="u-offline"):
        yield session_id
    llmlens.uninstrument_openai()
    llmlens.uninstrument_anthropic()


def _openai_sync(origin: str) -> None:
    client = openai.OpenAI(base_url=f"{origin}/v1", api_key="sk-test", max_retries=0, timeout=10)
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[arg-type]


def _openai_async_stream(origin: str) -> None:
    async def call() -> None:
        client = openai.AsyncOpenAI(base_url=f"{origin}/v1", api_key="sk-test", max_retries=0, timeout=10)
        try:
            await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
        finally:
            await client.close()

    asyncio.run(call())


def _anthropic_sync(origin: str) -> None:
    client = anthropic.Anthropic(base_url=origin, api_key="sk-ant-test", max_retries=0, timeout=10)
    client.messages.create(model="claude-3-5-haiku-latest", max_tokens=16, messages=MESSAGES)  # type: ignore[arg-type]


CALLS: dict[str, tuple[Callable[[str], None], type[Exception]]] = {
    "openai": (_openai_sync, openai.APIConnectionError),
    "openai-async-stream": (_openai_async_stream, openai.APIConnectionError),
    "anthropic": (_anthropic_sync, anthropic.APIConnectionError),
}


@pytest.mark.parametrize("failure", FAILURES)
@pytest.mark.parametrize("client", list(CALLS))
def test_a_call_that_cannot_connect_is_a_connection_error(
    server: LLMLensServer, origins: dict[str, str], session: str, client: str, failure: str
) -> None:
    call, raised = CALLS[client]
    with pytest.raises(raised) as info:
        call(origins[failure])
    assert not isinstance(info.value, openai.APITimeoutError | anthropic.APITimeoutError)
    (llm,) = spans_of(server, session, 1)
    assert (llm["kind"], llm["status"], llm["error_type"]) == ("llm", "error", "connection_error"), llm
    assert llm["user_id"] == "u-offline"


def test_the_message_keeps_why_the_connection_failed(
    server: LLMLensServer, origins: dict[str, str], session: str
) -> None:
    # openai's own message is only "Connection error."; the reason is on the exception it wraps.
    with pytest.raises(openai.APIConnectionError) as info:
        _openai_sync(origins["refused"])
    assert str(info.value) == "Connection error."
    (llm,) = spans_of(server, session, 1)
    assert llm["error_message"].startswith("Connection error.")
    assert "ConnectError" in llm["error_message"] and "refused" in llm["error_message"].lower()
