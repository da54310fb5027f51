"""Helpers for SDK tests that land in a real llmlens server: one session id per test, JSON columns."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from tests.support.llmlens_server import LLMLensServer

import llmlens


def new_session() -> str:
    return f"s-{uuid.uuid4().hex[:12]}"


def spans_of(server: LLMLensServer, session_id: str, expected: int, timeout_s: float = 10.0) -> list[dict[str, Any]]:
    """Flush, then read the session's spans (JSON columns decoded), oldest first."""
    assert llmlens.flush(10)
    deadline = time.monotonic() + timeout_s
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        rows = server.sql(f"SELECT * FROM spans WHERE session_id = '{session_id}' ORDER BY timestamp")
        if len(rows) >= expected:
            break
        time.sleep(0.05)
    for row in rows:
        for key in ("tool_calls", "request_params", "input_messages", "output_messages", "attributes", "metadata"):
            if isinstance(row.get(key), str):
                row[key] = json.loads(row[key])
    return rows
