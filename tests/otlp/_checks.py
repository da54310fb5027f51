"""What must be stored for one request of `_instrumented_app`, given what the app itself saw."""

from __future__ import annotations

import json
from typing import Any

from tests.otlp._instrumented_app import SESSION, USER


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def assert_app_trace(rows: list[dict[str, Any]], seen: dict[str, Any], lib: str, *, reports_streamed: bool) -> None:
    root = next(r for r in rows if r["span_id"] == seen["root"])
    assert (root["kind"], root["http_route"], root["user_id"]) == ("request", "/chat", USER)
    calls = [c for c in seen["calls"] if c.get("kind") not in ("embedding", "retrieval")]
    llm = [r for r in rows if r["kind"] == "llm"]
    assert len(llm) == len(calls), [(r["name"], r["kind"], r["model"]) for r in rows]
    for row in rows:  # inherited from the root span by every span beneath it
        assert (row["user_id"], row["session_id"], row["feature"]) == (USER, SESSION, "support-chat"), row["name"]
        assert row["service"] == "e2e-app"
    for row, call in zip(llm, calls, strict=True):
        what = f"{lib} {row['name']}: "
        assert row["model"] in ("gpt-4o-mini", "claude-sonnet-4-5"), what + str(row["model"])
        if call.get("error"):
            assert (row["status"], row["error_type"]) == ("error", call["error"]), what
            assert row["prompt_tokens"] is None
            continue
        assert (row["prompt_tokens"], row["completion_tokens"]) == (
            call["prompt_tokens"],
            call["completion_tokens"],
        ), what + "tokens"
        assert row["cost_usd"] is not None and row["cost_usd"] > 0, what + "cost"
        if call["streamed"] and reports_streamed:
            assert row["streamed"] is True, what + "streamed"
        else:
            assert row["streamed"] in (None, call["streamed"]), what + "streamed"
        assert row["response"] == call["text"], what + "response"
        assert row["message_id"] in (call["id"], row["span_id"]), what + "message id"
    for call in seen["calls"]:
        if call.get("kind") == "embedding":
            (row,) = [r for r in rows if r["kind"] == "embedding"]
            assert (row["model"], row["prompt_tokens"]) == (call["model"], call["prompt_tokens"])
            assert call["text"] in row["prompt"]  # OpenInference records the raw request here
            assert row["cost_usd"] is not None and row["cost_usd"] > 0
        elif call.get("kind") == "retrieval":
            (row,) = [r for r in rows if r["kind"] == "retrieval"]
            assert row["retrieval_query"] == call["query"]
            documents = _json(row["documents"])
            # The LangChain instrumentation records contents (no ids or scores from this retriever).
            assert [d["content"] for d in documents] == call["documents"]
    # Every provider call counted once, whatever the number of spans that recorded it.
    tokens = sum(c.get("prompt_tokens") or 0 for c in seen["calls"])
    assert sum(r["prompt_tokens"] or 0 for r in rows) == tokens
