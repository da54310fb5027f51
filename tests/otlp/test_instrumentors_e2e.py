"""Real apps under real instrumentation libraries, real `openai`/`anthropic` clients, real OTLP exporters.

Each app runs in a subprocess (instrumentors patch globally) against the stand-in provider and
exports to a real llmlens server; the test asserts what is stored.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest
from tests.otlp._checks import TOKEN_DETAILS, assert_app_trace
from tests.support.fake_provider import FakeProvider
from tests.support.llmlens_server import LLMLensServer
from tests.support.prices import CUSTOM_RATES, write_price_file

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

# What each library records (see tests/otlp/test_receiver_fixtures.py CAPS): content, streamed flag,
# and which token details beside prompt and completion (`reports`, from TOKEN_DETAILS).
LIBS: dict[str, dict[str, Any]] = {
    "openinference": {"module": "openinference.instrumentation.openai", "streamed": True, "reports": TOKEN_DETAILS},
    "otel-v2": {"module": "opentelemetry.instrumentation.openai_v2", "streamed": False, "reports": frozenset()},
    "traceloop": {
        "module": "opentelemetry.instrumentation.openai",
        "streamed": True,
        "reports": frozenset({"cached", "reasoning"}),
        "reports_in_streams": frozenset({"cached"}),
    },
    "openinference-anthropic": {
        "module": "openinference.instrumentation.anthropic",
        "streamed": True,
        "reports": TOKEN_DETAILS,
    },
    "openinference-langchain": {
        "module": "openinference.instrumentation.langchain",
        "streamed": True,
        "reports": TOKEN_DETAILS,
    },
    "openinference-rag": {
        "module": "openinference.instrumentation.langchain",
        "streamed": True,
        "reports": TOKEN_DETAILS,
    },
}
# What the stand-in provider reports for every call: cache reads, cache writes (Anthropic) and reasoning
# (OpenAI) in it, so the stored cost shows whether each kind was billed at its own rate.
USAGE = {"input_tokens": 40, "output_tokens": 12, "cached_tokens": 16, "reasoning_tokens": 5}
ANTHROPIC_USAGE = {"input_tokens": 40, "output_tokens": 12, "cached_tokens": 16, "cache_creation_tokens": 6}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


GRPC_PORT = _free_port()


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeProvider]:
    with FakeProvider() as fp:
        yield fp


@pytest.fixture(scope="module")
def llmlens(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LLMLensServer]:
    data = tmp_path_factory.mktemp("otlp-e2e")
    args = ["--otlp-grpc-port", str(GRPC_PORT), "--price-file", str(write_price_file(data))]
    with LLMLensServer(data, args=args) as srv:
        yield srv


def _run_app(lib: str, llmlens: LLMLensServer, provider: FakeProvider, *, grpc: bool = False) -> dict[str, Any]:
    if find_spec(LIBS[lib]["module"].split(".")[0]) is None or find_spec(LIBS[lib]["module"]) is None:
        pytest.fail(f"{LIBS[lib]['module']} is not installed: run scripts/setup-test-env.sh (pip install -e '.[test]')")
    cmd = [sys.executable, "-m", "tests.otlp._instrumented_app", lib, "--traces", llmlens.url]
    cmd += ["--provider", provider.url.rstrip("/")]
    if grpc:
        cmd += ["--grpc", f"127.0.0.1:{GRPC_PORT}"]
    provider.usage = ANTHROPIC_USAGE if "anthropic" in lib else USAGE
    try:
        done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=90, check=False)
    finally:
        provider.usage = None
    assert done.returncode == 0, done.stderr[-4000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _stored(srv: LLMLensServer, seen: dict[str, Any]) -> list[dict[str, Any]]:
    # The app flushed its exporters before it exited, and llmlens answers an export only once it is
    # committed (and the trace's late updates applied): everything is stored now, nothing to wait for.
    assert seen["flushed"] is True, "the app's exporters did not deliver everything"
    return srv.sql(f"SELECT * FROM spans WHERE trace_id = '{seen['trace_id']}' ORDER BY timestamp")


@pytest.mark.parametrize("lib", list(LIBS))
def test_instrumented_app_is_stored_right(lib: str, llmlens: LLMLensServer, provider: FakeProvider) -> None:
    seen = _run_app(lib, llmlens, provider)
    _assert_stored(llmlens, lib, seen)


def test_traces_over_grpc(llmlens: LLMLensServer, provider: FakeProvider) -> None:
    seen = _run_app("openinference", llmlens, provider, grpc=True)
    _assert_stored(llmlens, "openinference", seen)


def _assert_stored(srv: LLMLensServer, lib: str, seen: dict[str, Any]) -> None:
    rows = _stored(srv, seen)
    assert_app_trace(
        rows,
        seen,
        lib,
        reports_streamed=LIBS[lib]["streamed"],
        rates=CUSTOM_RATES,
        reports=LIBS[lib]["reports"],
        reports_in_streams=LIBS[lib].get("reports_in_streams"),
    )
