"""Calls recorded by two instrumentations at once are counted once, also when they fail or stream.

Real apps (tests/otlp/_double_instrumented_app.py) with real `openai`/`anthropic` clients, two real
instrumentation libraries at once (or the anthropic package's own GenAI spans beside an instrumentor)
and the real OTLP exporter, against the stand-in provider (429s, a stall the client times out on,
streams) and a real llmlens server. What llm_logs holds must match what the app itself saw: one row per
real call, with its error type, or its tokens (and TTFT for a stream) from the richer record. Calls that
really happen twice (a retry after a 429, two calls at once) stay two.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest
from tests.otlp._double_instrumented_app import ANTHROPIC_LIBS
from tests.support.fake_provider import FakeProvider
from tests.support.llmlens_server import LLMLensServer

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

# What must be importable for each library of the app.
LIB_MODULES = {
    "openinference": "openinference.instrumentation.openai",
    "otel-v2": "opentelemetry.instrumentation.openai_v2",
    "traceloop": "opentelemetry.instrumentation.openai",
    "openinference-anthropic": "openinference.instrumentation.anthropic",
    "openllmetry-anthropic": "opentelemetry.instrumentation.anthropic",
    "anthropic-sdk": "anthropic._tracing",  # the anthropic package's own OpenTelemetry spans
}
FAILURES = ("ratelimit", "timeout")
REPEATS = ("retry", "parallel-timeouts", "parallel-same")
OPENAI_SCENARIOS = (*FAILURES, "stream", *REPEATS)
ANTHROPIC_SCENARIOS = (*FAILURES, "stream", "stream-helper", *REPEATS)
# Two records of every call. `ttft`: one of the two reports a stream's time to first token.
DOUBLE: dict[str, dict[str, Any]] = {
    "openinference-anthropic+anthropic-sdk": {"ttft": True},
    "openllmetry-anthropic+anthropic-sdk": {"ttft": True},
    "openinference+otel-v2": {"ttft": True},
    "traceloop+openinference": {"ttft": True},
    "traceloop+otel-v2": {"ttft": False},
}
# One record of every call: repeated calls must not be merged.
SINGLE = ("openllmetry-anthropic", "anthropic-sdk", "traceloop")


def _scenarios(libs: str) -> tuple[str, ...]:
    return ANTHROPIC_SCENARIOS if libs.split("+")[0] in ANTHROPIC_LIBS else OPENAI_SCENARIOS


CASES = [(libs, scenario) for libs in DOUBLE for scenario in _scenarios(libs)]
CASES += [(libs, scenario) for libs in SINGLE for scenario in REPEATS]


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeProvider]:
    with FakeProvider(hang_s=10.0) as fp:  # a hang outlives the app's 0.5 s client timeout
        yield fp


@pytest.fixture(scope="module")
def llmlens(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LLMLensServer]:
    with LLMLensServer(tmp_path_factory.mktemp("double-e2e")) as srv:
        yield srv


@pytest.fixture(scope="module")
def app_run(llmlens: LLMLensServer, provider: FakeProvider) -> Callable[[str], dict[str, Any]]:
    """Runs the app once per combination of libraries (all its scenarios), remembering what it saw."""
    runs: dict[str, dict[str, Any]] = {}

    def run(libs: str) -> dict[str, Any]:
        if libs not in runs:
            runs[libs] = _run_app(libs, llmlens, provider)
        return runs[libs]

    return run


def _run_app(libs: str, srv: LLMLensServer, provider: FakeProvider) -> dict[str, Any]:
    for lib in libs.split("+"):
        module = LIB_MODULES[lib]
        if find_spec(module.split(".")[0]) is None or find_spec(module) is None:
            pytest.fail(f"{module} is not installed: run scripts/setup-test-env.sh (pip install -e '.[test]')")
    scenarios = ",".join(_scenarios(libs) if "+" in libs else REPEATS)
    cmd = [sys.executable, "-m", "tests.otlp._double_instrumented_app", libs, "--scenarios", scenarios]
    cmd += ["--traces", srv.url, "--provider", provider.url]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=90, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    seen: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return seen


def _stored(srv: LLMLensServer, trace_id: str, root: str) -> list[dict[str, Any]]:
    """Every span of the trace, once its root (exported with all the rest, in one request) is stored."""
    deadline = time.monotonic() + 15
    while True:
        rows = srv.sql(f"SELECT * FROM spans WHERE trace_id = '{trace_id}' ORDER BY timestamp, span_id")
        if any(r["span_id"] == root for r in rows):
            return rows
        assert time.monotonic() < deadline, f"trace {trace_id} was not stored within 15 s"
        time.sleep(0.2)


@pytest.mark.parametrize(("libs", "scenario"), CASES)
def test_each_real_call_is_one_llm_call(
    libs: str, scenario: str, app_run: Callable[[str], dict[str, Any]], llmlens: LLMLensServer
) -> None:
    seen = app_run(libs)[scenario]
    calls: list[dict[str, Any]] = seen["calls"]
    spans = _stored(llmlens, seen["trace_id"], seen["root"])
    logged = llmlens.sql(f"SELECT * FROM llm_logs WHERE trace_id = '{seen['trace_id']}' ORDER BY timestamp, span_id")
    described = [
        (r["span_id"], r["status"], r["error_type"], r["prompt_tokens"], r["completion_tokens"]) for r in logged
    ]
    assert len(logged) == len(calls), f"{len(calls)} real calls, llm_logs has {described}"

    # The test is only worth something if each call really was recorded twice (or once, alone).
    duplicates = [s for s in spans if "llmlens.duplicate_of" in json.loads(s["attributes"] or "{}")]
    assert len(duplicates) == (len(calls) if "+" in libs else 0), [s["name"] for s in spans]

    failed = sorted(c["error"] for c in calls if "error" in c)
    assert sorted(r["error_type"] for r in logged if r["status"] == "error") == failed, described
    for row in logged:
        if row["status"] == "error":
            assert (row["prompt_tokens"], row["cost_usd"]) == (None, None), described

    answered = {c["id"]: c for c in calls if "error" not in c}
    by_id = {r["message_id"]: r for r in logged if r["status"] != "error"}
    # Every combination here has a library that records the provider's response id: it is the message id.
    assert sorted(by_id) == sorted(answered), described
    for call_id, call in answered.items():
        row = by_id[call_id]
        assert (row["prompt_tokens"], row["completion_tokens"]) == (call["prompt_tokens"], call["completion_tokens"])
        assert row["cost_usd"] is not None and row["cost_usd"] > 0
        if call["streamed"]:
            assert row["streamed"] is True
            if "+" in libs and DOUBLE[libs]["ttft"]:
                assert row["ttft_ms"] is not None and 0 < row["ttft_ms"] <= row["latency_ms"]
    # No token is counted twice anywhere in the trace (duplicates carry none).
    assert sum(s["prompt_tokens"] or 0 for s in spans) == sum(c.get("prompt_tokens") or 0 for c in calls)
