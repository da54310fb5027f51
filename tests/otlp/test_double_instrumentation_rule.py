"""The double-instrumentation rule on failed, streamed and parallel calls: TraceAssembler over a real DuckDB file.

The spans here have the shapes the real instrumentations give (see test_double_instrumentation_failures.py
for the same cases captured from the real libraries): a failed call has no usage and no response id;
OpenLLMetry's Anthropic span of a stream counts one output token more than the API reported.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llmlens.ingest import GroupCommitWriter, IngestPipeline
from llmlens.ingest.trace_context import TraceAssembler
from llmlens.model import Span, now_us
from llmlens.pricing import PriceBook
from llmlens.store.duckdb import DuckDBStore

TRACE = "d" * 32
ROOT = "r" * 16
NOW = now_us()
SDK = "com.anthropic.sdk.python"
OPENLLMETRY = "opentelemetry.instrumentation.anthropic"
OPENINFERENCE = "openinference.instrumentation.anthropic"


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[tuple[TraceAssembler, DuckDBStore]]:
    store = DuckDBStore(tmp_path / "t.duckdb")
    writer = GroupCommitWriter(store)
    writer.start()
    pipeline = IngestPipeline(writer, PriceBook.load(None))
    try:
        yield TraceAssembler(pipeline, store, started_us=NOW - 60_000_000), store
    finally:
        writer.stop()
        store.close()


def _call(span_id: str, scope: str, parent: str | None = ROOT, **fields: Any) -> Span:
    """An Anthropic call as one library records it; `failed=` a rate limit, `response_id=` the provider's id."""
    failed = fields.pop("failed", False)
    response_id = fields.pop("response_id", None)
    base: dict[str, Any] = {"provider": "anthropic", "model": "claude-sonnet-4-5", "start_us": NOW, "latency_ms": 400.0}
    if failed:
        base.update(status="error", error_type="rate_limit", error_message="429 rate limited")
    else:
        base.update(status="ok", prompt_tokens=12, completion_tokens=6)
    base.update(fields)
    span = Span(trace_id=TRACE, span_id=span_id, parent_span_id=parent, kind="llm", name=scope, **base)
    span.attributes["otel.scope.name"] = scope
    if response_id is not None:
        span.attributes["gen_ai.response.id"] = response_id
    return span


def _root() -> Span:
    return Span(trace_id=TRACE, span_id=ROOT, kind="request", start_us=NOW - 1000, latency_ms=5000.0)


def _ingest(assembler: TraceAssembler, *batches: list[Span]) -> None:
    async def go() -> None:
        for batch in batches:
            await assembler.ingest_spans(batch)

    asyncio.run(go())


def _calls(store: DuckDBStore) -> list[dict[str, Any]]:
    """The LLM calls counted (what llm_logs shows), in span id order."""
    result = store.query("SELECT * FROM store.spans WHERE trace_id = ? AND kind = 'llm' ORDER BY span_id", [TRACE])
    return list(result.dicts())


def _duplicates(store: DuckDBStore) -> dict[str, str]:
    """span id -> the span it was counted on."""
    result = store.query("SELECT span_id, attributes FROM store.spans WHERE trace_id = ?", [TRACE])
    attributes = {span_id: json.loads(raw or "{}") for span_id, raw in result.rows}
    return {sid: a["llmlens.duplicate_of"] for sid, a in attributes.items() if "llmlens.duplicate_of" in a}


def test_a_failure_recorded_side_by_side_by_two_libraries_counts_once(
    parts: tuple[TraceAssembler, DuckDBStore],
) -> None:
    # OpenLLMetry does not make its span current, so the SDK's span is its sibling.
    assembler, store = parts
    instrumentor = _call("a" * 16, OPENLLMETRY, failed=True, prompt="user: hi")
    sdk = _call("b" * 16, SDK, failed=True, start_us=NOW + 2000, latency_ms=395.0)
    _ingest(assembler, [sdk, instrumentor, _root()])
    (call,) = _calls(store)
    assert (call["span_id"], call["status"], call["error_type"]) == ("a" * 16, "error", "rate_limit")
    assert _duplicates(store) == {"b" * 16: "a" * 16}


def test_a_failure_recorded_one_inside_the_other_counts_once(parts: tuple[TraceAssembler, DuckDBStore]) -> None:
    # OpenInference makes its span current: the SDK's span is its child (and the root an ancestor of both).
    assembler, store = parts
    instrumentor = _call("a" * 16, OPENINFERENCE, failed=True, prompt="user: hi")
    sdk = _call("b" * 16, SDK, parent="a" * 16, failed=True, start_us=NOW + 2000, latency_ms=395.0)
    _ingest(assembler, [sdk, instrumentor, _root()])
    assert [c["span_id"] for c in _calls(store)] == ["a" * 16]


def test_a_failure_whose_second_record_comes_later_counts_once(parts: tuple[TraceAssembler, DuckDBStore]) -> None:
    assembler, store = parts
    _ingest(
        assembler,
        [_call("a" * 16, OPENLLMETRY, failed=True, prompt="user: hi")],
        [_call("b" * 16, SDK, failed=True, start_us=NOW + 2000, latency_ms=395.0)],
    )
    assert [c["span_id"] for c in _calls(store)] == ["a" * 16]


def test_failures_of_one_library_side_by_side_are_separate_calls(parts: tuple[TraceAssembler, DuckDBStore]) -> None:
    # Two calls made in parallel and both rate-limited: nothing tells them apart but the library.
    assembler, store = parts
    _ingest(assembler, [_call("a" * 16, OPENLLMETRY, failed=True), _call("b" * 16, OPENLLMETRY, failed=True)])
    assert len(_calls(store)) == 2 and _duplicates(store) == {}


def test_failures_of_different_kinds_are_separate_calls(parts: tuple[TraceAssembler, DuckDBStore]) -> None:
    assembler, store = parts
    timed_out = _call("b" * 16, SDK, failed=True, error_type="timeout")
    _ingest(assembler, [_call("a" * 16, OPENLLMETRY, failed=True), timed_out])
    assert len(_calls(store)) == 2


def test_a_retry_after_a_rate_limit_is_a_second_call(parts: tuple[TraceAssembler, DuckDBStore]) -> None:
    assembler, store = parts
    failed = [_call("a" * 16, OPENLLMETRY, failed=True), _call("b" * 16, SDK, failed=True, start_us=NOW + 1000)]
    later = NOW + 450_000
    retried = [
        _call("c" * 16, OPENLLMETRY, start_us=later, response_id="msg_2"),
        _call("d" * 16, SDK, start_us=later + 1000, response_id="msg_2"),
    ]
    _ingest(assembler, [*failed, *retried, _root()])
    assert [(c["status"], c["error_type"]) for c in _calls(store)] == [("error", "rate_limit"), ("ok", None)]


def test_identical_calls_of_one_library_side_by_side_are_separate_calls(
    parts: tuple[TraceAssembler, DuckDBStore],
) -> None:
    # Same prompt twice at once: same model, same tokens, overlapping. Formerly merged into one call.
    assembler, store = parts
    _ingest(assembler, [_call("a" * 16, OPENLLMETRY), _call("b" * 16, OPENLLMETRY, start_us=NOW + 1000)])
    assert len(_calls(store)) == 2


def test_different_response_ids_are_separate_calls(parts: tuple[TraceAssembler, DuckDBStore]) -> None:
    assembler, store = parts
    first = _call("a" * 16, OPENLLMETRY, response_id="msg_1")
    second = _call("b" * 16, SDK, response_id="msg_2", start_us=NOW + 1000)
    _ingest(assembler, [first, second])
    assert len(_calls(store)) == 2


def test_a_stream_with_one_response_id_counts_once_with_the_providers_usage(
    parts: tuple[TraceAssembler, DuckDBStore],
) -> None:
    # OpenLLMetry adds message_start's placeholder output token to the final count; the SDK does not.
    assembler, store = parts
    instrumentor = _call(
        "a" * 16, OPENLLMETRY, response_id="msg_1", streamed=True, completion_tokens=7, total_tokens=19, response="Hi"
    )
    sdk = _call("b" * 16, SDK, response_id="msg_1", streamed=True, total_tokens=18, ttft_ms=80.0, start_us=NOW + 2000)
    _ingest(assembler, [instrumentor, sdk, _root()])
    (call,) = _calls(store)
    assert call["span_id"] == "a" * 16  # it has the content
    assert (call["prompt_tokens"], call["completion_tokens"], call["total_tokens"]) == (12, 6, 18)
    assert (call["ttft_ms"], call["streamed"], call["response"]) == (80.0, True, "Hi")
    assert call["message_id"] == "msg_1"


def test_the_kept_call_gets_the_providers_response_id_as_message_id(
    parts: tuple[TraceAssembler, DuckDBStore],
) -> None:
    # OpenInference's Anthropic span has no response id; the SDK's span beneath it has.
    assembler, store = parts
    instrumentor = _call("a" * 16, OPENINFERENCE, prompt="user: hi")
    sdk = _call("b" * 16, SDK, parent="a" * 16, response_id="msg_9", start_us=NOW + 2000, latency_ms=395.0)
    _ingest(assembler, [sdk, instrumentor, _root()])
    (call,) = _calls(store)
    assert (call["span_id"], call["message_id"]) == ("a" * 16, "msg_9")


def test_each_parallel_failure_counts_once_when_two_libraries_record_them(
    parts: tuple[TraceAssembler, DuckDBStore],
) -> None:
    # Three calls at once, each recorded by both libraries (the SDK's span 50 us after the
    # instrumentor's), ending in no particular order. Each record pairs with its own call's, and a call
    # takes at most one record from each library: three calls, never one or six.
    assembler, store = parts
    starts = {"0": NOW + 2000, "1": NOW + 3000, "2": NOW}
    spans = {}
    for n, start in starts.items():
        spans[n + "a"] = _call(n.ljust(16, "a"), OPENLLMETRY, failed=True, start_us=start)
        spans[n + "b"] = _call(n.ljust(16, "b"), SDK, failed=True, start_us=start + 50)
    ended = [spans[name] for name in ("0a", "1b", "1a", "0b", "2a", "2b")]
    _ingest(assembler, [*ended, _root()])
    assert len(_calls(store)) == 3
    assert sorted(_duplicates(store).items()) == [(n.ljust(16, "b"), n.ljust(16, "a")) for n in "012"]
