"""Rollups stay exact across crashes. A commit stores spans only; their rollup deltas are folded in later,
so a server killed between the two leaves committed spans outside the rollups. Here a real server is
SIGKILLed twice mid-ingest (once before any fold, once after folds ran while it served), and restarted
each time; the rollup tables in its DuckDB file must then equal a recount of them from the raw spans,
with every acknowledged event stored."""

from __future__ import annotations

import random
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
from tests.support.llmlens_server import LLMLensServer

from llmlens.store.duckdb import DuckDBStore
from llmlens.store.duckdb._pending_rollups import FOLD_AFTER_S, WATERMARK_KEY
from llmlens.store.duckdb._rollups import TABLES

pytestmark = pytest.mark.slow

MODELS = ("gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet-20241022")
SINGLE_CLIENTS = 8
BATCH_CLIENTS = 2
BATCH = 20


def _event(phase: int, client: int, seq: int, rng: random.Random) -> dict[str, Any]:
    failed = rng.random() < 0.1
    return {
        "type": "llm",
        "span_id": f"{phase:02x}{client + 1:02x}{seq + 1:012x}",
        "trace_id": f"{phase:02x}{client + 1:02x}{seq + 1:012x}" + "0" * 15 + "1",
        # Spread over the last few hours so several hourly buckets are touched.
        "timestamp": time.time() - rng.uniform(0, 4 * 3600),
        "model": rng.choice(MODELS),
        "provider": "openai",
        "prompt": "hello",
        "response": "hi",
        "prompt_tokens": rng.randint(10, 3000),
        "completion_tokens": rng.randint(1, 500),
        "latency_ms": rng.uniform(50, 9000),
        "ttft_ms": rng.uniform(10, 500),
        "status": "error" if failed else "ok",
        "error_type": "rate_limit" if failed else None,
        "metadata": {"user_id": f"user-{rng.randint(1, 5)}", "feature": rng.choice(["chat", "search"])},
    }


class Sender(threading.Thread):
    """Posts events (one a request, or `batch` a request) until stopped; remembers what was acknowledged."""

    def __init__(self, url: str, phase: int, client: int, batch: int) -> None:
        super().__init__(daemon=True)
        self.url, self.phase, self.client, self.batch = url, phase, client, batch
        self.stop = threading.Event()
        self.acked: list[str] = []
        self.first_ack_at: float | None = None
        self.errors: list[str] = []

    def run(self) -> None:
        rng = random.Random(self.phase * 100 + self.client)
        seq = 0
        with httpx.Client(base_url=self.url, timeout=10) as http:
            while not self.stop.is_set():
                events = [_event(self.phase, self.client, seq + i, rng) for i in range(self.batch)]
                seq += self.batch
                try:
                    r = http.post("/api/v1/ingest", json=events[0] if self.batch == 1 else events)
                except httpx.HTTPError:
                    return  # the server was killed
                if r.status_code != 200:
                    self.errors.append(f"{r.status_code}: {r.text[:200]}")
                    return
                self.acked.extend(e["span_id"] for e in events)
                if self.first_ack_at is None:
                    self.first_ack_at = time.monotonic()


def _ingest_then_kill(srv: LLMLensServer, phase: int, kill_when: Callable[[list[Sender]], bool]) -> set[str]:
    senders = [Sender(srv.url, phase, c, 1) for c in range(SINGLE_CLIENTS)]
    senders += [Sender(srv.url, phase, SINGLE_CLIENTS + c, BATCH) for c in range(BATCH_CLIENTS)]
    for s in senders:
        s.start()
    deadline = time.monotonic() + 60
    while not kill_when(senders):
        assert time.monotonic() < deadline, "the clients did not get far enough in 60 s"
        assert not any(s.errors for s in senders), [e for s in senders for e in s.errors]
        time.sleep(0.02)
    srv.stop(kill=True)  # SIGKILL while requests are in flight: no shutdown, no fold at close
    for s in senders:
        s.stop.set()
        s.join(15)
        assert not s.is_alive()
    assert not any(s.errors for s in senders), [e for s in senders for e in s.errors]
    return {i for s in senders for i in s.acked}


def _unfolded(db: Path) -> tuple[int, int]:
    """(spans stored after the watermark, the watermark) as the killed server left its file."""
    with duckdb.connect(str(db), read_only=True) as con:
        row = con.execute("SELECT value FROM llmlens_meta WHERE key = ?", [WATERMARK_KEY]).fetchone()
        assert row is not None, "the store keeps no fold watermark"
        through = int(row[0])
        count = con.execute(
            "SELECT count(*) FROM store.spans WHERE ingested_at > make_timestamp(?::BIGINT)", [through]
        ).fetchone()
        return int(count[0]) if count else 0, through


def _rollup_contents(db: Path) -> dict[str, set[tuple[Any, ...]]]:
    """Every rollup table merged by key (as readers merge it), costs rounded past float summation noise."""
    out: dict[str, set[tuple[Any, ...]]] = {}
    with duckdb.connect(str(db), read_only=True) as con:
        for table in TABLES:
            keys = ", ".join(f'"{k}"' for k in ("project", "bucket", *table.keys))
            merged = ", ".join(f'round(SUM("{col}"), 9)' if col == "cost_usd" else agg for col, agg in table.merged)
            rows = con.execute(
                f"SELECT {keys}, {merged} FROM store.{table.name} GROUP BY ALL HAVING {table.merged[0][1]} <> 0"
            ).fetchall()
            out[table.name] = set(rows)
    return out


def _assert_rollups_equal_a_recount(db: Path, scratch: Path) -> None:
    stored = _rollup_contents(db)
    shutil.copyfile(db, scratch)
    wal = db.with_name(db.name + ".wal")  # a killed server leaves its last commits in the WAL
    if wal.exists():
        shutil.copyfile(wal, scratch.with_name(scratch.name + ".wal"))
    recount = DuckDBStore(scratch)
    recount.rebuild_rollups()  # every rollup recomputed from the raw spans of the same file
    recount.close()
    expected = _rollup_contents(scratch)
    for table in TABLES:
        assert stored[table.name], f"{table.name} is empty"
        missing = expected[table.name] - stored[table.name]
        extra = stored[table.name] - expected[table.name]
        assert not missing and not extra, (
            f"{table.name}: {len(missing)} recounted rows differ from the stored ones, e.g. "
            f"recount {sorted(missing, key=str)[:2]} vs stored {sorted(extra, key=str)[:2]}"
        )
    with duckdb.connect(str(db), read_only=True) as con:
        calls = con.execute("SELECT sum(calls) FROM store.rollup_hour").fetchone()
        spans = con.execute("SELECT count(*) FROM store.spans WHERE kind = 'llm'").fetchone()
        assert calls == spans


def _stored_ids(db: Path) -> list[str]:
    with duckdb.connect(str(db), read_only=True) as con:
        return [str(r[0]) for r in con.execute("SELECT span_id FROM store.spans").fetchall()]


def test_rollups_equal_a_raw_recount_after_sigkills_mid_ingest(tmp_path: Path) -> None:
    data = tmp_path / "data"
    db = data / "llmlens.duckdb"
    srv = LLMLensServer(data)
    try:
        # 1. Killed well before a fold is due: every committed span is still outside the rollups.
        srv.start()

        def early(senders: list[Sender]) -> bool:
            firsts = [s.first_ack_at for s in senders if s.first_ack_at is not None]
            acked = sum(len(s.acked) for s in senders)
            return bool(firsts) and (acked >= 300 or time.monotonic() - min(firsts) > FOLD_AFTER_S / 3)

        acked_1 = _ingest_then_kill(srv, 1, early)
        assert acked_1, "nothing was acknowledged before the kill"
        unfolded, _ = _unfolded(db)
        assert unfolded > 0, "the kill left no committed span outside the rollups: this run proves nothing"

        # 2. Restarted (the open folds what the crash left), then killed after folds ran while serving.
        srv.start()
        restarted = time.monotonic()

        def after_a_fold(senders: list[Sender]) -> bool:
            return time.monotonic() - restarted > FOLD_AFTER_S + 2 and sum(len(s.acked) for s in senders) > 0

        acked_2 = _ingest_then_kill(srv, 2, after_a_fold)
        unfolded, through = _unfolded(db)
        assert unfolded > 0, "the second kill left no committed span outside the rollups"
        with duckdb.connect(str(db), read_only=True) as con:
            first_2 = con.execute(
                "SELECT epoch_us(min(ingested_at)) FROM store.spans WHERE span_id LIKE '02%'"
            ).fetchone()
        assert first_2 is not None and first_2[0] is not None
        assert through >= first_2[0], "no fold ran while the restarted server served"

        # 3. The third start folds the rest; killed again at once, so nothing else touches the file.
        srv.start()
        srv.stop(kill=True)
        assert _unfolded(db)[0] == 0
        _assert_rollups_equal_a_recount(db, tmp_path / "recount.duckdb")

        stored = _stored_ids(db)
        assert len(stored) == len(set(stored)), "a span was stored twice"
        lost = (acked_1 | acked_2) - set(stored)
        assert not lost, f"{len(lost)} acknowledged events lost: {sorted(lost)[:5]}"
    finally:
        srv.stop()
