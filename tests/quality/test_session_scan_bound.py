"""The inferred-feedback scan after an import reads a bounded number of sessions: the latest stored ones, oldest
of them first, from a real DuckDB file. (Scoring in batches is covered by test_inferred_feedback.py, whose 400
sessions end in one scan, two batches.)"""

from __future__ import annotations

import time
from pathlib import Path

from llmlens.model import Span
from llmlens.quality._sessions import sessions_stored_since
from llmlens.store import open_store


def _span(i: int, session: str, start_us: int) -> Span:
    return Span(
        trace_id=f"{i:032x}",
        span_id=f"{i:016x}",
        kind="llm",
        name="chat",
        project="shop",
        start_us=start_us,
        latency_ms=100.0,
        session_id=session,
        model="gpt-4o-mini",
    )


def test_the_latest_stored_sessions_come_back_oldest_first_up_to_the_limit(tmp_path: Path) -> None:
    store = open_store(None, tmp_path)
    try:
        now_us = int(time.time() * 1_000_000)
        # Ten writes, one session each, stored in this order (each write stamps a later ingestion time);
        # their calls happened in the opposite order, so the order checked is storage, not call time.
        for n in range(10):
            store.write([_span(n, f"s{n}", now_us - n * 60_000_000)], [])
        since = time.time() - 3600
        assert sessions_stored_since(store.scoped("shop"), "shop", since, limit=100) == [f"s{n}" for n in range(10)]
        assert sessions_stored_since(store.scoped("shop"), "shop", since, limit=3) == ["s7", "s8", "s9"]
        assert sessions_stored_since(store.scoped("other"), "other", since, limit=100) == []
    finally:
        store.close()
