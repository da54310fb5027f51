"""DuckDB rollup folds: commits store spans only and the rollups catch up later, yet nothing that reads
the rollups sees them behind, an old store is not counted twice, and a crashed process's spans are
folded once by whoever opens the file next."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import duckdb

from llmlens.model import Span
from llmlens.pricing import PriceBook
from llmlens.store.duckdb import DuckDBStore
from llmlens.store.duckdb._pending_rollups import WATERMARK_KEY

NOW_US = int(time.time() * 1_000_000)
HOUR_US = 3_600_000_000
_PRICES = PriceBook.load(None)


def _llm(i: int) -> Span:
    span = Span(
        trace_id=f"{i + 1:032x}",
        span_id=f"{i + 1:016x}",
        kind="llm",
        name="chat",
        model=("gpt-4o", "gpt-4o-mini")[i % 2],
        provider="openai",
        start_us=NOW_US - (i % 5) * HOUR_US,
        latency_ms=100.0 + i,
        prompt_tokens=1000 + i,
        completion_tokens=100,
        status="ok",
        feature=("chat", "search")[i % 3 == 0],
        user_id=f"u{i % 4}",
    )
    _PRICES.price_span(span)
    return span


def _rollup_by_model(store: DuckDBStore) -> dict[str, tuple[int, int]]:
    rows = store.query(
        "SELECT model, sum(calls), sum(prompt_tokens) FROM store.rollup_hour GROUP BY model HAVING sum(calls) <> 0"
    ).rows
    return {r[0]: (int(r[1]), int(r[2])) for r in rows}


def _raw_by_model(store: DuckDBStore) -> dict[str, tuple[int, int]]:
    rows = store.query("SELECT model, count(*), sum(prompt_tokens) FROM store.spans GROUP BY model").rows
    return {r[0]: (int(r[1]), int(r[2])) for r in rows}


def _watermark(db: Path) -> int:
    with duckdb.connect(str(db), read_only=True) as con:
        row = con.execute("SELECT value FROM llmlens_meta WHERE key = ?", [WATERMARK_KEY]).fetchone()
    assert row is not None
    return int(row[0])


def test_a_read_of_the_rollups_folds_what_was_committed_before_it(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "s.duckdb")
    store.write([_llm(i) for i in range(20)], [])
    # Nothing folded yet: the rollup tables themselves hold none of the 20 spans.
    assert store._con.execute("SELECT count(*) FROM store.rollup_hour").fetchone() == (0,)
    assert _rollup_by_model(store) == _raw_by_model(store)  # the read folded first
    store.write([_llm(i) for i in range(20, 30)], [])
    assert store.query("SELECT sum(calls) AS n FROM store.rollup_day").rows == [[30]]
    store.close()


def test_a_store_written_before_folds_is_not_counted_twice(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    store = DuckDBStore(db)
    store.write([_llm(i) for i in range(10)], [])
    store.close()  # folds
    # A file from an llmlens without folds: rollups kept in each commit, no watermark.
    with duckdb.connect(str(db)) as con:
        con.execute("DELETE FROM llmlens_meta WHERE key = ?", [WATERMARK_KEY])
    store = DuckDBStore(db)
    assert _rollup_by_model(store) == _raw_by_model(store) == {"gpt-4o": (5, 5020), "gpt-4o-mini": (5, 5025)}
    store.write([_llm(i) for i in range(10, 14)], [])
    assert _rollup_by_model(store) == _raw_by_model(store)
    store.close()


_CRASHING_WRITER = """
import os, sys
sys.path[:0] = {path!r}
from tests.store.test_rollup_folds import _llm
from llmlens.store.duckdb import DuckDBStore
store = DuckDBStore({db!r})
store.write([_llm(i) for i in range(40)], [])
os._exit(0)  # dies like a killed process: no close, no fold
"""


def test_spans_of_a_crashed_process_are_folded_once_by_the_next_open(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    code = _CRASHING_WRITER.format(path=sys.path, db=str(db))
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2], timeout=60)
    assert _watermark(db) == 0, "the crashed writer folded: this test proves nothing"

    # Read-only, the file cannot be folded: its rollups are not offered, raw spans answer instead.
    reader = DuckDBStore(db, read_only=True)
    assert reader.has_rollups is False
    reader.close()

    store = DuckDBStore(db)
    assert store.has_rollups
    assert store._con.execute("SELECT sum(calls) FROM store.rollup_hour").fetchone() == (40,)
    assert _rollup_by_model(store) == _raw_by_model(store)
    store.close()
    store = DuckDBStore(db)  # a second open finds nothing left to fold
    assert _rollup_by_model(store) == _raw_by_model(store)
    store.close()
