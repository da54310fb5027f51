"""TraceAssembler over a real DuckDB file: inheritance both ways, logs before/after spans, duplicate calls."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llmlens.codec.otlp import LogContent
from llmlens.ingest import GroupCommitWriter, IngestPipeline
from llmlens.ingest.trace_context import TraceAssembler
from llmlens.model import Span, now_us
from llmlens.pricing import PriceBook
from llmlens.store import confined_to
from llmlens.store.duckdb import DuckDBStore

TRACE = "a" * 32
NOW = now_us()


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[tuple[TraceAssembler, DuckDBStore]]:
    store = DuckDBStore(tmp_path / "t.duckdb")
    writer = GroupCommitWriter(store)
    writer.start()
    pipeline = IngestPipeline(writer, PriceBook.load(None))
    try:
        yield TraceAssembler(pipeline, store, max_traces=3, started_us=NOW - 60_000_000), store
    finally:
        writer.stop()
        store.close()


def _span(span_id: str, parent: str | None = None, kind: str = "other", **fields: Any) -> Span:
    fields.setdefault("start_us", NOW)
    fields.setdefault("latency_ms", 1000.0)
    return Span(trace_id=fields.pop("trace_id", TRACE), span_id=span_id, parent_span_id=parent, kind=kind, **fields)


def _llm(span_id: str, parent: str | None, **fields: Any) -> Span:
    base: dict[str, Any] = {"provider": "openai", "model": "gpt-4o", "prompt_tokens": 100, "completion_tokens": 20}
    base.update(fields)
    return _span(span_id, parent, "llm", **base)


def _rows(store: DuckDBStore, trace_id: str = TRACE) -> dict[str, dict[str, Any]]:
    result = store.query("SELECT * FROM store.spans WHERE trace_id = ?", [trace_id])
    return {row["span_id"]: row for row in result.dicts()}


def _run(assembler: TraceAssembler, *batches: list[Span]) -> None:
    async def go() -> None:
        for batch in batches:
            await assembler.ingest_spans(batch)

    asyncio.run(go())


def test_root_arriving_last_fills_stored_descendants(parts: tuple[TraceAssembler, DuckDBStore]) -> None:
    assembler, store = parts
    root = _span("r" * 16, kind="request", user_id="u1", session_id="s1", feature="chat", metadata={"tier": "pro"})
    chain = _span("c" * 16, "r" * 16, "chain", metadata={"step": "answer"}, template_id="tpl", template_version="v2")
    llm = _llm("l" * 16, "c" * 16, user_id="own-user")
    tool = _span("t" * 16, "c" * 16, "tool", tool_name="search")
    _run(assembler, [llm], [tool], [chain], [root])
    rows = _rows(store)
    assert rows["l" * 16]["user_id"] == "own-user"  # a span's own value wins
    assert rows["l" * 16]["session_id"] == "s1"
    assert rows["l" * 16]["template_version"] == "v2"  # templates reach LLM spans
    assert json.loads(rows["l" * 16]["metadata"]) == {"tier": "pro", "step": "answer"}
    assert (rows["t" * 16]["user_id"], rows["t" * 16]["feature"]) == ("u1", "chat")
    assert rows["t" * 16]["template_version"] is None
    assert rows["c" * 16]["session_id"] == "s1"
    assert store.query("SELECT count(*) FROM store.spans").rows == [[4]]
    assert assembler.store_reads == 0


def test_root_arriving_first_fills_children_before_storing(parts: tuple[TraceAssembler, DuckDBStore]) -> None:
    assembler, store = parts
    _run(assembler, [_span("r" * 16, kind="request", user_id="u1")], [_llm("l" * 16, "r" * 16)])
    assert _rows(store)["l" * 16]["user_id"] == "u1"


def test_evicted_trace_is_read_back_once(parts: tuple[TraceAssembler, DuckDBStore]) -> None:
    assembler, store = parts
    _run(assembler, [_llm("l" * 16, "r" * 16)])
    for n in range(4):  # max_traces=3: the first trace falls out of memory
        _run(assembler, [_span(f"{n:016x}", trace_id=f"{n + 1:032x}")])
    _run(assembler, [_span("r" * 16, kind="request", user_id="late")])
    assert assembler.store_reads == 1
    assert _rows(store)["l" * 16]["user_id"] == "late"


def test_log_content_before_and_after_its_span(parts: tuple[TraceAssembler, DuckDBStore]) -> None:
    assembler, store = parts
    early = LogContent(TRACE, "e" * 16, prompt="user: hi", response="early answer", finish_reason="stop")
    late = LogContent(TRACE, "l" * 16, prompt="user: later", response="late answer")

    async def go() -> None:
        assert await assembler.ingest_log_content([early]) == 0
        assert assembler.buffered_log_count == 1
        await assembler.ingest_spans([_llm("e" * 16, None), _llm("l" * 16, None, response="kept")])
        assert assembler.buffered_log_count == 0
        assert await assembler.ingest_log_content([late]) == 1

    asyncio.run(go())
    rows = _rows(store)
    assert (rows["e" * 16]["response"], rows["e" * 16]["finish_reason"]) == ("early answer", "stop")
    assert (rows["l" * 16]["prompt"], rows["l" * 16]["response"]) == ("user: later", "kept")


def test_log_buffer_is_bounded_in_time(parts: tuple[TraceAssembler, DuckDBStore]) -> None:
    assembler, _ = parts
    now = [0.0]
    assembler._clock = lambda: now[0]
    asyncio.run(assembler.ingest_log_content([LogContent(TRACE, "x" * 16, response="r")]))
    now[0] = assembler.log_ttl_s + 1
    asyncio.run(assembler.ingest_log_content([]))
    assert assembler.buffered_log_count == 0


def test_sdk_span_beneath_instrumentor_span_counts_once(parts: tuple[TraceAssembler, DuckDBStore]) -> None:
    assembler, store = parts
    outer = _llm("o" * 16, "r" * 16, prompt="user: hi", response="hello", start_us=NOW, latency_ms=900.0)
    inner = _llm("i" * 16, "o" * 16, response_model="gpt-4o-2024-08-06", start_us=NOW + 10_000, latency_ms=850.0)
    inner.attributes["gen_ai.response.id"] = "chatcmpl-1"
    _run(assembler, [inner, outer, _span("r" * 16, kind="request")])
    rows = _rows(store)
    kept, other = rows["o" * 16], rows["i" * 16]
    assert kept["kind"] == "llm" and other["kind"] == "other"
    assert (kept["prompt_tokens"], kept["completion_tokens"]) == (100, 20)
    assert kept["cost_usd"] > 0 and other["cost_usd"] is None and other["prompt_tokens"] is None
    assert kept["response_model"] == "gpt-4o-2024-08-06"  # taken from the duplicate
    attrs = json.loads(other["attributes"])
    assert attrs["llmlens.duplicate_of"] == "o" * 16
    assert attrs["llmlens.duplicate_usage"]["prompt_tokens"] == 100
    total = store.query("SELECT sum(prompt_tokens), count(*) FROM store.spans WHERE kind = 'llm'").rows
    assert total == [[100, 1]]


def test_sibling_duplicate_arriving_later_yields(parts: tuple[TraceAssembler, DuckDBStore]) -> None:
    assembler, store = parts
    first = _llm("a" * 16, "r" * 16, start_us=NOW, latency_ms=500.0)
    second = _llm("b" * 16, "r" * 16, start_us=NOW + 1000, latency_ms=499.0)
    _run(assembler, [first], [second])
    rows = _rows(store)
    assert (rows["a" * 16]["kind"], rows["b" * 16]["kind"]) == ("llm", "other")


def test_different_calls_are_not_duplicates(parts: tuple[TraceAssembler, DuckDBStore]) -> None:
    assembler, store = parts
    sequential = [
        _llm("a" * 16, "r" * 16, start_us=NOW, latency_ms=500.0),
        _llm("b" * 16, "r" * 16, start_us=NOW + 600_000, latency_ms=500.0),
    ]
    parallel_other_tokens = [
        _llm("c" * 16, "r" * 16, start_us=NOW, latency_ms=500.0, prompt_tokens=7),
        _llm("d" * 16, "r" * 16, start_us=NOW, latency_ms=500.0, model="claude-sonnet-4"),
    ]
    failed_in_parallel = [
        _llm("e" * 16, "r" * 16, prompt_tokens=None, completion_tokens=None, status="error"),
        _llm("f" * 16, "r" * 16, prompt_tokens=None, completion_tokens=None, status="error"),
    ]
    _run(assembler, sequential + parallel_other_tokens + failed_in_parallel)
    assert {row["kind"] for row in _rows(store).values()} == {"llm"}


def test_message_id_from_response_id_else_span_id(parts: tuple[TraceAssembler, DuckDBStore]) -> None:
    assembler, store = parts
    with_id = _llm("a" * 16, None)
    with_id.attributes["gen_ai.response.id"] = "chatcmpl-xyz"
    _run(assembler, [with_id, _llm("b" * 16, None, start_us=NOW + 5_000_000), _span("c" * 16, kind="tool")])
    rows = _rows(store)
    assert rows["a" * 16]["message_id"] == "chatcmpl-xyz"
    assert rows["b" * 16]["message_id"] == "b" * 16
    assert rows["c" * 16]["message_id"] is None


def test_same_ids_in_two_projects_are_two_traces(parts: tuple[TraceAssembler, DuckDBStore]) -> None:
    # Without auth the resource names the project: one batch may carry both.
    assembler, store = parts
    beta_child = _llm("c" * 16, "r" * 16, project="beta")
    beta_root = _span("r" * 16, kind="request", project="beta", user_id="beta-user", feature="beta-feature")
    alpha_child = _llm("c" * 16, "r" * 16, project="alpha")
    alpha_root = _span("r" * 16, kind="request", project="alpha", user_id="INJECTED")
    early = LogContent(TRACE, "l" * 16, project="beta", prompt="user: beta question")
    asyncio.run(assembler.ingest_log_content([early]))
    _run(
        assembler,
        [beta_child],
        [beta_root, alpha_child],
        [alpha_root, _llm("l" * 16, "r" * 16, project="alpha", prompt_tokens=7)],
    )
    asyncio.run(assembler.ingest_log_content([LogContent(TRACE, "c" * 16, project="alpha", prompt="user: INJECTED")]))
    result = store.query(
        "SELECT project, span_id, user_id, feature, prompt FROM store.spans WHERE trace_id = ?", [TRACE]
    )
    rows = {(p, s): (u, f, prompt) for p, s, u, f, prompt in result.rows}
    assert rows[("beta", "c" * 16)] == ("beta-user", "beta-feature", None)
    assert rows[("alpha", "c" * 16)] == ("INJECTED", None, "user: INJECTED")
    assert rows[("alpha", "l" * 16)] == ("INJECTED", None, None)
    assert assembler.buffered_log_count == 1  # beta's content still waits for beta's span
    assert "duplicate_of" not in str(store.query("SELECT attributes FROM store.spans").rows)


def test_a_confined_caller_is_assembled_in_its_own_project(parts: tuple[TraceAssembler, DuckDBStore]) -> None:
    assembler, store = parts
    _run(assembler, [_span("r" * 16, kind="request", project="beta", user_id="beta-user")])
    waiting = LogContent(TRACE, "w" * 16, project="beta", prompt="user: beta question")
    asyncio.run(assembler.ingest_log_content([waiting]))
    with confined_to("alpha"):  # spans and content that claim beta are alpha's
        _run(assembler, [_llm("c" * 16, "r" * 16, project="beta"), _llm("w" * 16, None, project="beta")])
        asyncio.run(assembler.ingest_log_content([LogContent(TRACE, "r" * 16, project="beta", prompt="user: x")]))
    result = store.query("SELECT project, span_id, user_id, prompt FROM store.spans WHERE trace_id = ?", [TRACE])
    assert sorted(result.rows) == [
        ["alpha", "c" * 16, None, None],
        ["alpha", "w" * 16, None, None],
        ["beta", "r" * 16, "beta-user", None],
    ]
