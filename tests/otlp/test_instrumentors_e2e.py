"""Real apps under real instrumentation libraries, real `openai`/`anthropic` clients, real OTLP exporters.

Each app runs in a subprocess (instrumentors patch globally) against the stand-in provider and
exports to a real llmlens server; the test asserts what is stored.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest
from tests.otlp._checks import assert_app_trace
from tests.support.fake_provider import FakeProvider
from tests.support.llmlens_server import LLMLensServer

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

# What each library records (see tests/otlp/test_receiver_fixtures.py CAPS): content, streamed flag.
LIBS: dict[str, dict[str, Any]] = {
    "openinference": {"module": "openinference.instrumentation.openai", "streamed": True},
    "otel-v2": {"module": "opentelemetry.instrumentation.openai_v2", "streamed": False},
    "traceloop": {"module": "opentelemetry.instrumentation.openai", "streamed": True},
    "openinference-anthropic": {"module": "openinference.instrumentation.anthropic", "streamed": True},
    "openinference-langchain": {"module": "openinference.instrumentation.langchain", "streamed": True},
    "openinference-rag": {"module": "openinference.instrumentation.langchain", "streamed": True},
}


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
    args = ["--otlp-grpc-port", str(GRPC_PORT)]
    with LLMLensServer(tmp_path_factory.mktemp("otlp-e2e"), args=args) as srv:
        yield srv


def _run_app(lib: str, llmlens: LLMLensServer, provider: FakeProvider, *, grpc: bool = False) -> dict[str, Any]:
    if find_spec(LIBS[lib]["module"].split(".")[0]) is None or find_spec(LIBS[lib]["module"]) is None:
        pytest.fail(f"{LIBS[lib]['module']} is not installed: run scripts/setup-test-env.sh (pip install -e '.[test]')")
    cmd = [sys.executable, "-m", "tests.otlp._instrumented_app", lib, "--traces", llmlens.url]
    cmd += ["--provider", provider.url.rstrip("/")]
    if grpc:
        cmd += ["--grpc", f"127.0.0.1:{GRPC_PORT}"]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=90, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _stored(srv: LLMLensServer, trace_id: str, expected_llm: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 15
    while True:
        rows = srv.sql(f"SELECT * FROM spans WHERE trace_id = '{trace_id}' ORDER BY timestamp")
        llm = [r for r in rows if r["kind"] == "llm"]
        if (len(llm) >= expected_llm and any(r["parent_span_id"] is None for r in rows)) or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


@pytest.mark.parametrize("lib", list(LIBS))
def test_instrumented_app_is_stored_right(lib: str, llmlens: LLMLensServer, provider: FakeProvider) -> None:
    seen = _run_app(lib, llmlens, provider)
    _assert_stored(llmlens, lib, seen)


def test_traces_over_grpc(llmlens: LLMLensServer, provider: FakeProvider) -> None:
    seen = _run_app("openinference", llmlens, provider, grpc=True)
    _assert_stored(llmlens, "openinference", seen)


def _assert_stored(srv: LLMLensServer, lib: str, seen: dict[str, Any]) -> None:
    rows = _stored(srv, seen["trace_id"], sum(1 for c in seen["calls"] if "kind" not in c))
    assert_app_trace(rows, seen, lib, reports_streamed=LIBS[lib]["streamed"])
