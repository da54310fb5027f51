"""Native events: `error_type` as sent (the normalised name or an exception's), or read from the error text."""

from __future__ import annotations

from typing import Any

import pytest

from llmlens.codec.native import span_from_event

NOW_US = 1_767_225_600_000_000


def _decoded(**fields: Any) -> tuple[str, str | None]:
    span = span_from_event({"model": "gpt-4o", "prompt": "hi", **fields}, "llm", project=None, now=NOW_US)
    return span.status, span.error_type


@pytest.mark.parametrize(
    "fields",
    [
        {"error_type": "connection_error"},
        {"error_type": "ConnectionRefusedError", "error": "[Errno 111] Connection refused"},
        {"error_type": "APIConnectionError"},
        {"error": "Connection error."},  # no type: the message tells
        {"error": "getaddrinfo ENOTFOUND api.openai.com"},
    ],
)
def test_connection_failures_are_connection_errors(fields: dict[str, Any]) -> None:
    assert _decoded(**fields) == ("error", "connection_error")


def test_a_connect_timeout_is_a_timeout() -> None:
    assert _decoded(error_type="ConnectTimeout", error="timed out") == ("error", "timeout")
