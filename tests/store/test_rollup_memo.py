"""The Latency page's hourly and daily sketches are kept between page views (`store/rollups/_memo.py`) and
read again once their buckets change: the answers equal a raw recount after late calls, deletes, a
rebuild and for a second project with the same hours, and a repeated view reads no whole bucket again."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Any

from tests.store._page_reports import RawOnly, differences, plain

from llmlens.model import Span
from llmlens.query import Scope, latency, parse_window
from llmlens.store import QueryResult
from llmlens.store.duckdb import DuckDBStore

NOW = dt.datetime.now(dt.UTC).replace(tzinfo=None, second=0, microsecond=0)
_EPOCH = dt.datetime(1970, 1, 1)
MODELS = ("gpt-4o", "claude-3-5-haiku")


def _us(t: dt.datetime) -> int:
    return int((t - _EPOCH).total_seconds() * 1_000_000)


def _calls(first: int, count: int, rng: random.Random, *, project: str = "default", slow: float = 1.0) -> list[Span]:
    """LLM calls over the last 9 days, `slow` times as long as usual."""
    return [
        Span(
            trace_id=f"{project[0]}{i:031x}", span_id=f"{project[0]}{i:015x}", kind="llm",
            start_us=_us(NOW) - int(rng.uniform(0.2, 9 * 24) * 3_600_000_000),
            latency_ms=rng.uniform(50, 6000) * slow, ttft_ms=rng.uniform(20, 900), model=MODELS[i % 2],
            completion_tokens=rng.randint(5, 400), status="ok", project=project,
        )
        for i in range(first, first + count)
    ]  # fmt: skip


class _Counting:
    """The store, counting the statements that read whole hours or days of sketches."""

    def __init__(self, store: DuckDBStore) -> None:
        self._store = store
        self.sketch_reads = 0
        self.has_rollups = store.has_rollups
        self.page_rollups = store.page_rollups
        self.rollup_memo = store.rollup_memo

    def query(self, sql: str, params: Any = ()) -> QueryResult:
        if "store.sketch_hour" in sql or "store.sketch_day" in sql:
            self.sketch_reads += 1
        result: QueryResult = self._store.query(sql, params)
        return result


def _assert_raw(store: DuckDBStore, project: str = "default", model: str | None = None) -> None:
    for range_ in ("24h", "7d", "30d"):
        scope = Scope(project, parse_window(range_, now=NOW))
        got = latency.latency_report(store, scope, model=model)
        expected = latency.latency_report(RawOnly(store), scope, model=model)
        found = differences(plain(got), plain(expected), f"{project}.{range_}")
        assert not found, "\n".join(found[:10])


def test_a_repeated_view_reads_no_whole_bucket_again(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "s.duckdb")
    try:
        store.write(_calls(0, 600, random.Random(1)), [])
        store.fold_rollups()
        counting = _Counting(store)
        scope = Scope("default", parse_window("7d", now=NOW))
        first = latency.latency_report(counting, scope)  # type: ignore[arg-type]
        reads = counting.sketch_reads
        again = latency.latency_report(counting, scope)  # type: ignore[arg-type]
        assert plain(again) == plain(first)
        # Only the totals (not kept: they merge every bucket of the window) read the sketch tables again.
        assert counting.sketch_reads - reads < reads
        _assert_raw(store)
    finally:
        store.close()


def test_changed_buckets_are_read_again(tmp_path: Path) -> None:
    rng = random.Random(2)
    store = DuckDBStore(tmp_path / "s.duckdb")
    try:
        store.write(_calls(0, 500, rng), [])
        store.fold_rollups()
        _assert_raw(store)
        for model in (*MODELS, MODELS[0]):  # one model's buckets are not another's
            _assert_raw(store, model=model)
        # Late calls into hours already kept, far slower than the rest: every percentile of those hours moves.
        store.write(_calls(500, 300, rng, slow=20.0), [])
        _assert_raw(store)
        _assert_raw(store, model=MODELS[0])
        store.execute("DELETE FROM store.spans WHERE project = ? AND latency_ms > ?", ["default", 30_000.0])
        _assert_raw(store)
        store.update_span_fields("default", {f"d{i:015x}": {"model": "gpt-4.1"} for i in range(0, 100)})
        _assert_raw(store)
        store.rebuild_rollups()
        _assert_raw(store)
    finally:
        store.close()


def test_projects_keep_their_own_buckets(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "s.duckdb")
    try:
        # The same hours in two projects, one ten times slower: neither is answered from the other's.
        store.write(_calls(0, 400, random.Random(3)) + _calls(0, 400, random.Random(3), project="other", slow=10), [])
        store.fold_rollups()
        for project in ("default", "other", "default"):
            _assert_raw(store, project)
            _assert_raw(store.scoped(project), project)  # type: ignore[arg-type]
    finally:
        store.close()
