"""Apps traced for Phoenix (`arize-phoenix-otel` + OpenInference) and LangSmith (its OTel mode) reach llmlens unchanged.

Each app runs in its own process with the real package, configured only through the environment
variables and arguments docs/migrate.md gives, and calls the stand-in provider.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from tests.migrate._support import require, run_app
from tests.support.fake_provider import FakeProvider
from tests.support.llmlens_server import LLMLensServer
from tests.support.prices import CUSTOM_RATES, assert_cost, write_price_file

pytestmark = pytest.mark.slow

USAGE = {"input_tokens": 40, "output_tokens": 12, "cached_tokens": 16, "reasoning_tokens": 5}
RATES = CUSTOM_RATES["gpt-4o-mini"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


GRPC_PORT = _free_port()


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeProvider]:
    with FakeProvider() as fp:
        fp.usage = USAGE
        yield fp


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LLMLensServer]:
    data = tmp_path_factory.mktemp("otel-clients")
    args = ["--price-file", str(write_price_file(data)), "--otlp-grpc-port", str(GRPC_PORT)]
    with LLMLensServer(data, args=args) as srv:
        yield srv


def _expected_cost(call: dict[str, Any]) -> float:
    return RATES.openai_cost(
        call["prompt_tokens"],
        call["completion_tokens"],
        cached_tokens=call["cached_tokens"],
        reasoning_tokens=call["reasoning_tokens"],
    )


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_phoenix_register_reaches_llmlens(server: LLMLensServer, provider: FakeProvider, transport: str) -> None:
    require("phoenix.otel", "openinference.instrumentation.openai")
    args = ["--provider", provider.url.rstrip("/")]
    env: dict[str, str] = {}
    if transport == "http":
        args += ["--endpoint", f"{server.url}/v1/traces"]  # register(endpoint=...)
    else:
        # register() with no endpoint: PHOENIX_COLLECTOR_ENDPOINT's host, gRPC on PHOENIX_GRPC_PORT.
        env = {"PHOENIX_COLLECTOR_ENDPOINT": server.url, "PHOENIX_GRPC_PORT": str(GRPC_PORT)}
    seen = run_app("tests.migrate._phoenix_app", *args, env=env)
    assert seen["flushed"] is True
    rows = server.sql(f"SELECT * FROM spans WHERE trace_id = '{seen['trace_id']}' AND kind = 'llm' ORDER BY timestamp")
    by_id = {row["message_id"]: row for row in rows}
    for name in ("plain", "stream"):
        call = seen["calls"][name]
        row = by_id[call["id"]]
        assert row["model"] == "gpt-4o-mini" and row["response"] == call["text"]
        assert (row["prompt_tokens"], row["completion_tokens"]) == (call["prompt_tokens"], call["completion_tokens"])
        assert (row["cached_tokens"], row["reasoning_tokens"]) == (call["cached_tokens"], call["reasoning_tokens"])
        assert_cost(row["cost_usd"], _expected_cost(call))
        assert (row["user_id"], row["session_id"], row["feature"]) == ("phx-user-3", "phx-session-3", "phoenix_chat")
        assert row["template_version"] == "v4" and json.loads(row["variables"]) == {"q": "Capital of France?"}
        assert row["status"] == "ok"
    assert by_id[seen["calls"]["plain"]["id"]]["temperature"] == 0.1
    streamed = by_id[seen["calls"]["stream"]["id"]]
    assert streamed["streamed"] is True and 0 < streamed["ttft_ms"] <= streamed["latency_ms"]
    (failed,) = [row for row in rows if row["status"] == "error"]
    assert failed["error_type"] == "rate_limit" and "429" in failed["error_message"]
    assert (failed["user_id"], failed["session_id"]) == ("phx-user-3", "phx-session-3")


def test_langsmith_otel_export_reaches_llmlens(server: LLMLensServer, provider: FakeProvider) -> None:
    require("langsmith", "opentelemetry.exporter.otlp.proto.http")
    env = {"LANGSMITH_TRACING": "true", "LANGSMITH_OTEL_ONLY": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": server.url}
    seen = run_app("tests.migrate._langsmith_app", "--provider", provider.url.rstrip("/"), env=env)
    assert seen["flushed"] is True
    rows = server.sql("SELECT * FROM spans WHERE CAST(attributes AS VARCHAR) LIKE '%langsmith%' ORDER BY timestamp")
    by_name = {row["name"]: row for row in rows}
    root, llm = by_name["answer-question"], by_name["ChatOpenAI"]
    assert root["kind"] == "chain" and llm["kind"] == "llm" and llm["parent_span_id"] == root["span_id"]
    call = seen["call"]
    assert llm["model"] == "gpt-4o-mini"
    assert (llm["prompt_tokens"], llm["completion_tokens"]) == (call["prompt_tokens"], call["completion_tokens"])
    assert (llm["cached_tokens"], llm["reasoning_tokens"]) == (call["cached_tokens"], call["reasoning_tokens"])
    assert_cost(llm["cost_usd"], _expected_cost(call))
    for row in (root, llm):
        assert (row["user_id"], row["session_id"]) == ("ls-user-5", "ls-session-5")
