"""The trace assembler's memory is bounded in bytes: the least recently seen trace of the project holding the
most goes first and is counted, inheritance still works for traces within the bound, a dropped trace is read
back from the store, and the server applies the setting and shows the bound and the counters in /metrics."""

from __future__ import annotations

import asyncio
import gc
import os
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans
from opentelemetry.proto.trace.v1.trace_pb2 import Span as OtlpSpan
from tests.support.llmlens_server import LLMLensServer

from llmlens.codec.otlp import LogContent
from llmlens.ingest import GroupCommitWriter, IngestPipeline
from llmlens.ingest.trace_context import TraceAssembler
from llmlens.model import Span, now_us
from llmlens.pricing import PriceBook
from llmlens.store.duckdb import DuckDBStore

NOW = now_us()
# Room for a few dozen one-span traces (each is estimated at ~700 bytes).
SMALL_BOUND = 40_000


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[tuple[TraceAssembler, DuckDBStore]]:
    store = DuckDBStore(tmp_path / "t.duckdb")
    writer = GroupCommitWriter(store)
    writer.start()
    pipeline = IngestPipeline(writer, PriceBook.load(None))
    try:
        yield TraceAssembler(pipeline, store, max_bytes=SMALL_BOUND, started_us=NOW - 60_000_000), store
    finally:
        writer.stop()
        store.close()


def _trace_id(n: int, project: str = "") -> str:
    return f"{zlib.crc32(project.encode()):08x}{n:024x}"


def _span(trace_id: str, span_id: str, parent: str | None = None, **fields: Any) -> Span:
    fields.setdefault("start_us", NOW)
    fields.setdefault("latency_ms", 10.0)
    fields.setdefault("kind", "other")
    return Span(trace_id=trace_id, span_id=span_id, parent_span_id=parent, **fields)


def _run(assembler: TraceAssembler, *batches: list[Span]) -> None:
    async def go() -> None:
        for batch in batches:
            await assembler.ingest_spans(batch)

    asyncio.run(go())


def _flood(assembler: TraceAssembler, project: str, traces: int) -> None:
    """`traces` one-span traces of `project`, 50 to a batch."""
    for start in range(0, traces, 50):
        batch = [
            _span(_trace_id(n, project), f"{n:016x}", project=project) for n in range(start, min(start + 50, traces))
        ]
        _run(assembler, batch)


def _user_of(store: DuckDBStore, span_id: str) -> Any:
    return store.query("SELECT user_id FROM store.spans WHERE span_id = ?", [span_id]).rows[0][0]


def test_a_flood_stays_within_the_bound_and_drops_the_oldest(parts: tuple[TraceAssembler, DuckDBStore]) -> None:
    assembler, _ = parts
    _flood(assembler, "default", 400)
    assert 0 < assembler.bytes_held <= SMALL_BOUND
    assert assembler.evicted_traces == 400 - assembler.traces_held
    assert 20 < assembler.traces_held < 400
    # The newest traces are the ones remembered: a late child of the newest inherits without a store read.
    newest = 399
    _run(assembler, [_span(_trace_id(newest, "default"), "c" * 16, f"{newest:016x}")])
    assert assembler.store_reads == 0


def test_inheritance_works_for_traces_within_the_bound(parts: tuple[TraceAssembler, DuckDBStore]) -> None:
    assembler, store = parts
    trace = _trace_id(10_000)
    _run(assembler, [_span(trace, "c" * 16, "r" * 16, kind="llm", model="gpt-4o")])
    _flood(assembler, "default", 20)  # other traces, still within the bound
    _run(assembler, [_span(trace, "r" * 16, kind="request", user_id="u-late")])
    assert assembler.evicted_traces == 0
    assert _user_of(store, "c" * 16) == "u-late"
    assert assembler.store_reads == 0


def test_a_trace_dropped_at_the_bound_is_read_back_from_the_store(parts: tuple[TraceAssembler, DuckDBStore]) -> None:
    assembler, store = parts
    trace = _trace_id(10_000)
    _run(assembler, [_span(trace, "c" * 16, "r" * 16, kind="llm", model="gpt-4o")])
    # Just past the bound: the oldest trace goes, and its id is still remembered as dropped (dropped ids
    # are kept within a sixteenth of the bound: a dozen here).
    sent = 0
    while assembler.evicted_traces == 0 and sent < 1_000:
        _run(assembler, [_span(_trace_id(n), f"{n:016x}") for n in range(sent, sent + 10)])
        sent += 10
    assert 0 < assembler.evicted_traces <= 10
    _run(assembler, [_span(trace, "r" * 16, kind="request", user_id="u-late")])
    assert assembler.store_reads == 1
    assert _user_of(store, "c" * 16) == "u-late"


def test_a_flood_from_one_project_drops_its_own_traces_first(parts: tuple[TraceAssembler, DuckDBStore]) -> None:
    assembler, store = parts
    quiet = _trace_id(1, "quiet")
    _run(assembler, [_span(quiet, "c" * 16, "r" * 16, project="quiet")])
    _flood(assembler, "loud", 400)  # far past the bound, all after the quiet project's trace
    assert assembler.evicted_traces > 300
    _run(assembler, [_span(quiet, "r" * 16, project="quiet", user_id="u-quiet")])
    assert assembler.store_reads == 0  # still in memory: every trace dropped was the loud project's
    assert _user_of(store, "c" * 16) == "u-quiet"


def test_buffered_log_content_takes_at_most_its_share(parts: tuple[TraceAssembler, DuckDBStore]) -> None:
    assembler, _ = parts
    contents = [LogContent(_trace_id(n), f"{n:016x}", response="x" * 2_000) for n in range(100)]
    asyncio.run(assembler.ingest_log_content(contents))
    assert 0 < assembler.buffered_log_count < 100
    assert assembler.dropped_log_content == 100 - assembler.buffered_log_count
    assert assembler.bytes_held <= SMALL_BOUND


def _bench_like_trace(n: int) -> list[Span]:
    """A request, chain, LLM and tool span with user, session and metadata, as bench_otlp sends."""
    trace = os.urandom(16).hex()
    ids = [os.urandom(8).hex() for _ in range(4)]
    user = f"user-{n % 500:03d}"
    return [
        _span(trace, ids[0], kind="request", user_id=user, session_id=f"s-{n}"),
        _span(trace, ids[1], ids[0], kind="chain", user_id=user, metadata={"feature": "support_chat"}),
        _span(trace, ids[2], ids[1], kind="llm", model="gpt-4o", prompt_tokens=400, user_id=user, session_id=f"s-{n}"),
        _span(trace, ids[3], ids[1], kind="tool", tool_name="search_kb"),
    ]


def test_the_estimate_does_not_undercount_what_is_held() -> None:
    """What tracemalloc sees held after assembling (spans dropped) stays within the byte bound."""
    bound = 4 * 1024 * 1024
    assembler = TraceAssembler(None, None, max_bytes=bound, started_us=0)  # type: ignore[arg-type]
    gc.collect()
    tracemalloc.start()
    try:
        for start in range(0, 4_000, 250):
            batch = [span for n in range(start, start + 250) for span in _bench_like_trace(n)]
            assembler.assemble(batch)
            del batch
        gc.collect()
        snapshot = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    # Only what this test and the assembler allocated (the spans' strings, the assembler's records and the
    # dataclasses' generated code): threads left by other tests in this process allocate meanwhile.
    mine = snapshot.filter_traces(
        [
            tracemalloc.Filter(True, __file__),
            tracemalloc.Filter(True, "*/ingest/trace_context.py"),
            tracemalloc.Filter(True, "*/ingest/_duplicates.py"),
            tracemalloc.Filter(True, "<string>"),
        ]
    )
    held = sum(stat.size for stat in mine.statistics("filename"))
    assert assembler.evicted_traces > 0
    assert assembler.bytes_held <= bound
    assert held <= bound, f"{held} bytes held for a bound of {bound} (estimate {assembler.bytes_held})"
    assert held >= bound // 2, "the estimate is far above what is held: the bound wastes its memory"


# -- through a server --------------------------------------------------------------------------------


def _otlp_body(first: int, traces: int) -> bytes:
    spans = []
    for n in range(first, first + traces):
        trace_id = (n + 1).to_bytes(16, "big")  # an all-zero id is invalid
        root = (n * 2 + 1).to_bytes(8, "big")
        child = (n * 2 + 2).to_bytes(8, "big")
        user = KeyValue(key="user.id", value=AnyValue(string_value=f"user-{n}"))
        for span_id, parent, attrs in ((root, b"", [user]), (child, root, [])):
            spans.append(
                OtlpSpan(
                    trace_id=trace_id,
                    span_id=span_id,
                    parent_span_id=parent,
                    name="step",
                    start_time_unix_nano=time.time_ns(),
                    end_time_unix_nano=time.time_ns() + 1_000_000,
                    attributes=attrs,
                )
            )
    request = ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])])
    return request.SerializeToString()


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics:\n{text[:2000]}")


def test_the_server_applies_the_setting_and_reports_the_bound(tmp_path: Path) -> None:
    with LLMLensServer(tmp_path, env={"LLMLENS_TRACE_CONTEXT_MEMORY_MB": "1"}) as srv, srv.client() as client:
        for first in range(0, 3_000, 500):
            r = client.post(
                "/v1/traces", content=_otlp_body(first, 500), headers={"Content-Type": "application/x-protobuf"}
            )
            assert r.status_code == 200, r.text
        metrics = client.get("/metrics").text
    assert _metric(metrics, "llmlens_trace_context_max_bytes") == 1024 * 1024
    assert 0 < _metric(metrics, "llmlens_trace_context_bytes") <= 1024 * 1024
    evicted = _metric(metrics, "llmlens_trace_context_evicted_traces_total")
    assert evicted > 0
    assert evicted + _metric(metrics, "llmlens_trace_context_traces") == 3_000


def test_a_bound_below_one_mb_is_refused(tmp_path: Path) -> None:
    srv = LLMLensServer(tmp_path, env={"LLMLENS_TRACE_CONTEXT_MEMORY_MB": "0"}, startup_timeout_s=30)
    with pytest.raises(RuntimeError, match="trace_context_memory_mb must be at least 1"):
        srv.start()
    srv.stop()
