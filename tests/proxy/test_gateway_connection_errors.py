"""An upstream the gateway cannot reach (refused, unknown host, reset before answering, TLS refused, cut
off mid-stream): the client gets the provider's own error shape and the span says `connection_error`;
an upstream that is only slow stays a `timeout`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from tests.proxy._support import free_port
from tests.support.broken_upstream import UNRESOLVABLE_HOST, BrokenListener, closed_port
from tests.support.fake_provider import FakeProvider
from tests.support.llmlens_server import LLMLensServer

HELLO = [{"role": "user", "content": "hello"}]
# Each failure is an upstream of that name (OpenAI wire) and NAME-claude (Anthropic wire).
FAILURES = ("refused", "unresolvable", "reset", "tls")


@dataclass
class BrokenGateway:
    srv: LLMLensServer
    provider_port: int  # the `flaky` upstream: a fake provider started by the test that needs it


def spans_of(srv: LLMLensServer, session: str, count: int = 1) -> list[dict[str, Any]]:
    """Spans are recorded after the answer, off the request path: poll until they are committed."""
    deadline = time.monotonic() + 10
    while True:
        rows = srv.sql(f"SELECT * FROM spans WHERE session_id = '{session}' ORDER BY timestamp")
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokenGateway]:
    provider_port = free_port()
    with BrokenListener("reset") as reset, BrokenListener("not-tls") as not_tls:
        origins = {
            "refused": f"http://127.0.0.1:{closed_port()}",
            "unresolvable": f"http://{UNRESOLVABLE_HOST}",
            "reset": f"http://127.0.0.1:{reset.port}",
            "tls": f"https://127.0.0.1:{not_tls.port}",
            "flaky": f"http://127.0.0.1:{provider_port}",
        }
        args: list[str] = []
        for name, origin in origins.items():
            args += ["--upstream", f"{name}={origin}/v1", "--upstream", f"{name}-claude={origin}"]
        with LLMLensServer(tmp_path_factory.mktemp("broken-gateway"), args=args) as srv:
            yield BrokenGateway(srv, provider_port)


@pytest.mark.parametrize("failure", FAILURES)
def test_openai_client_gets_a_502_in_openai_format(gateway: BrokenGateway, failure: str) -> None:
    session = f"sess-openai-{failure}"
    client = openai.OpenAI(base_url=f"{gateway.srv.url}/proxy/{failure}/v1", api_key="sk-x", max_retries=0)
    with pytest.raises(openai.InternalServerError) as got:
        client.chat.completions.create(
            model="gpt-4o-mini", messages=HELLO, extra_headers={"X-LLMLens-Session-Id": session}
        )  # type: ignore[arg-type]
    assert got.value.status_code == 502
    error = got.value.response.json()["error"]
    assert error["code"] == error["type"] == "upstream_unreachable"
    assert f"upstream {failure!r}" in error["message"] and "unreachable" in error["message"]
    (row,) = spans_of(gateway.srv, session)
    assert (row["kind"], row["status"], row["error_type"]) == ("llm", "error", "connection_error"), row
    assert (row["provider"], row["http_status"], row["error_message"]) == (failure, 502, error["message"])


@pytest.mark.parametrize("failure", FAILURES)
def test_anthropic_client_gets_a_502_in_anthropic_format(gateway: BrokenGateway, failure: str) -> None:
    session = f"sess-claude-{failure}"
    client = anthropic.Anthropic(base_url=f"{gateway.srv.url}/proxy/{failure}-claude", api_key="k", max_retries=0)
    with pytest.raises(anthropic.APIStatusError) as got:
        client.messages.create(
            model="claude-3-5-haiku-latest",
            max_tokens=5,
            messages=HELLO,
            extra_headers={"X-LLMLens-Session-Id": session},
        )  # type: ignore[arg-type]
    assert got.value.status_code == 502
    body = got.value.response.json()
    assert body["type"] == "error" and body["error"]["type"] == "api_error"
    assert f"upstream '{failure}-claude'" in body["error"]["message"]
    (row,) = spans_of(gateway.srv, session)
    assert (row["status"], row["error_type"]) == ("error", "connection_error"), row


def test_an_upstream_cut_off_mid_stream_is_a_connection_error(gateway: BrokenGateway) -> None:
    session = "sess-cut-mid-stream"
    client = openai.OpenAI(base_url=f"{gateway.srv.url}/proxy/flaky/v1", api_key="sk-x", max_retries=0)
    seen = []
    with FakeProvider(port=gateway.provider_port):
        stream = client.chat.completions.create(
            model="fake-disconnect", messages=HELLO, stream=True, extra_headers={"X-LLMLens-Session-Id": session}
        )  # type: ignore[arg-type]
        # As when calling the provider directly: the chunks that came, then the broken connection.
        with pytest.raises(openai.APIConnectionError):
            for chunk in stream:
                seen.append(chunk)
    assert seen
    (row,) = spans_of(gateway.srv, session)
    assert (row["status"], row["error_type"]) == ("error", "connection_error"), row
    assert "broke off the answer" in row["error_message"]


def test_an_upstream_that_does_not_answer_in_time_stays_a_timeout(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "llmlens.toml"
    config.write_text("[gateway]\ntimeout_s = 0.5\n")
    args = ["--config", str(config), "--upstream", f"slow=http://127.0.0.1:{port}/v1"]
    with FakeProvider(port=port, hang_s=5.0), LLMLensServer(tmp_path / "data", args=args) as srv:
        client = openai.OpenAI(base_url=f"{srv.url}/proxy/slow/v1", api_key="sk-x", max_retries=0)
        with pytest.raises(openai.APIStatusError) as got:
            client.chat.completions.create(
                model="fake-hang", messages=HELLO, extra_headers={"X-LLMLens-Session-Id": "sess-slow"}
            )  # type: ignore[arg-type]
        assert got.value.status_code == 504
        assert got.value.response.json()["error"]["code"] == "upstream_timeout"
        rows = spans_of(srv, "sess-slow")
    assert [(r["status"], r["error_type"]) for r in rows] == [("error", "timeout")]
