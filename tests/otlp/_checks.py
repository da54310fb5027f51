"""What must be stored for one request of `_instrumented_app`, given what the app itself saw."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from tests.otlp._instrumented_app import SESSION, USER
from tests.support.prices import TokenRates, assert_cost

# The token kinds beyond prompt and completion an instrumentation can report.
TOKEN_DETAILS = frozenset({"cached", "cache_write", "reasoning"})


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def expected_cost(call: dict[str, Any], rates: TokenRates, reported: frozenset[str]) -> float:
    """What the call costs at `rates`, counting only the token details the instrumentation reported:
    a detail it leaves out is billed at the plain input or output rate, as llmlens cannot know better."""
    cached = call.get("cached_tokens", 0) if "cached" in reported else 0
    if "cache_write_tokens" in call:  # Anthropic's counts: cache reads and writes beside the input
        written = call["cache_write_tokens"] if "cache_write" in reported else 0
        uncached = call["prompt_tokens"] + (call["cached_tokens"] - cached) + (call["cache_write_tokens"] - written)
        return rates.anthropic_cost(
            uncached, call["completion_tokens"], cache_read_tokens=cached, cache_write_tokens=written
        )
    reasoning = call.get("reasoning_tokens", 0) if "reasoning" in reported else 0
    return rates.openai_cost(
        call["prompt_tokens"], call["completion_tokens"], cached_tokens=cached, reasoning_tokens=reasoning
    )


def assert_app_trace(
    rows: list[dict[str, Any]],
    seen: dict[str, Any],
    lib: str,
    *,
    reports_streamed: bool,
    rates: Mapping[str, TokenRates],
    reports: frozenset[str] = frozenset(),
    reports_in_streams: frozenset[str] | None = None,
) -> None:
    """`rates`: the prices the server uses, by model; `reports`: the `TOKEN_DETAILS` the library records
    (`reports_in_streams` for streamed calls, when it records less there)."""
    root = next(r for r in rows if r["span_id"] == seen["root"])
    assert (root["kind"], root["http_route"], root["user_id"]) == ("request", "/chat", USER)
    calls = [c for c in seen["calls"] if c.get("kind") not in ("embedding", "retrieval")]
    llm = [r for r in rows if r["kind"] == "llm"]
    assert len(llm) == len(calls), [(r["name"], r["kind"], r["model"]) for r in rows]
    for row in rows:  # inherited from the root span by every span beneath it
        assert (row["user_id"], row["session_id"], row["feature"]) == (USER, SESSION, "support-chat"), row["name"]
        assert row["service"] == "e2e-app"
    for row, call in zip(llm, calls, strict=True):
        what = f"{lib} {row['name']}{' (streamed)' if call.get('streamed') else ''}: "
        assert row["model"] in ("gpt-4o-mini", "claude-sonnet-4-5"), what + str(row["model"])
        if call.get("error"):
            assert (row["status"], row["error_type"]) == ("error", call["error"]), what
            assert row["prompt_tokens"] is None
            continue
        assert (row["prompt_tokens"], row["completion_tokens"]) == (
            call["prompt_tokens"],
            call["completion_tokens"],
        ), what + "tokens"
        reported = reports if not call["streamed"] or reports_in_streams is None else reports_in_streams
        for column, detail in (
            ("cached_tokens", "cached"),
            ("cache_write_tokens", "cache_write"),
            ("reasoning_tokens", "reasoning"),
        ):
            if column in call:
                # A library may leave a zero count out (OpenInference's Anthropic instrumentation does).
                wanted = {call[column], None} if detail in reported and call[column] == 0 else {call[column]}
                assert row[column] in (wanted if detail in reported else {None}), what + column
        assert_cost(row["cost_usd"], expected_cost(call, rates[row["model"]], reported), what + "cost")
        if call["streamed"] and reports_streamed:
            assert row["streamed"] is True, what + "streamed"
        else:
            assert row["streamed"] in (None, call["streamed"]), what + "streamed"
        assert row["response"] == call["text"], what + "response"
        # Feedback names a call by the provider's response id: every library here records it.
        assert row["message_id"] == call["id"], what + "message id"
    for call in seen["calls"]:
        if call.get("kind") == "embedding":
            (row,) = [r for r in rows if r["kind"] == "embedding"]
            assert (row["model"], row["prompt_tokens"]) == (call["model"], call["prompt_tokens"])
            assert call["text"] in row["prompt"]  # OpenInference records the raw request here
            assert_cost(row["cost_usd"], rates[call["model"]].openai_cost(call["prompt_tokens"], 0), "embedding cost")
        elif call.get("kind") == "retrieval":
            (row,) = [r for r in rows if r["kind"] == "retrieval"]
            assert row["retrieval_query"] == call["query"]
            documents = _json(row["documents"])
            # The LangChain instrumentation records contents (no ids or scores from this retriever).
            assert [d["content"] for d in documents] == call["documents"]
    # Every provider call counted once, whatever the number of spans that recorded it.
    tokens = sum(c.get("prompt_tokens") or 0 for c in seen["calls"])
    assert sum(r["prompt_tokens"] or 0 for r in rows) == tokens
