"""Instrumentation libraries report a provider they cannot reach by the exception's name (`error.type`
APIConnectionError, an `exception` event, a status message); over OTLP it is stored as `connection_error`."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.support.broken_upstream import closed_port
from tests.support.llmlens_server import LLMLensServer

REPO = Path(__file__).resolve().parents[2]
LIBS = ("openinference", "otel-v2", "traceloop", "openinference-anthropic")


@pytest.fixture(scope="module")
def llmlens(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LLMLensServer]:
    with LLMLensServer(tmp_path_factory.mktemp("otlp-unreachable")) as srv:
        yield srv


def _llm_spans(srv: LLMLensServer, trace_id: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 15
    while True:
        rows = srv.sql(f"SELECT * FROM spans WHERE trace_id = '{trace_id}' AND kind = 'llm'")
        if rows or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


@pytest.mark.slow
@pytest.mark.parametrize("lib", LIBS)
def test_an_instrumented_call_that_cannot_connect_is_a_connection_error(llmlens: LLMLensServer, lib: str) -> None:
    origin = f"http://127.0.0.1:{closed_port()}"
    cmd = [sys.executable, "-m", "tests.otlp._unreachable_app", lib, "--traces", llmlens.url, "--provider", origin]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=90, check=False)
    setup = "the instrumentation libraries come with scripts/setup-test-env.sh"
    assert done.returncode == 0, f"the instrumented app failed ({setup}):\n{done.stderr[-4000:]}"
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["exception"] == "APIConnectionError"
    rows = _llm_spans(llmlens, seen["trace_id"])
    assert rows, f"no llm span stored for {lib}"
    for row in rows:
        assert (row["status"], row["error_type"]) == ("error", "connection_error"), row
