"""Backpressure (503 + Retry-After instead of unbounded memory; the SDK waits and retries) and
idempotency (events carry ids: the same batch sent twice is stored once)."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import httpx
from tests.support.llmlens_server import LLMLensServer

import llmlens


def _batch(tag: str, n: int) -> list[dict[str, object]]:
    return [
        {"type": "llm", "span_id": uuid.uuid4().hex[:16], "model": "gpt-4o", "prompt": f"{tag} {i}", "response": "r"}
        for i in range(n)
    ]


def test_same_batch_twice_is_stored_once(server: LLMLensServer) -> None:
    tag = uuid.uuid4().hex
    batch = _batch(tag, 20)
    batch.append({"type": "feedback", "message_id": f"{tag}-m", "feedback_type": "thumbs_up", "feedback_id": tag})
    # LLM events without a span_id get one derived from their message id: retries stay idempotent too
    batch.append({"type": "llm", "message_id": f"{tag}-m", "model": "gpt-4o", "prompt": f"{tag} derived"})
    for _ in range(3):
        assert server.ingest(batch)["accepted"] == 22
    rows = server.sql(f"SELECT count(*) AS n, count(DISTINCT span_id) AS d FROM llm_logs WHERE prompt LIKE '{tag}%'")
    assert rows == [{"n": 21, "d": 21}]
    assert server.sql(f"SELECT count(*) AS n FROM feedback_events WHERE feedback_id = '{tag}'") == [{"n": 1}]


def test_backpressure_answers_503_with_retry_after_and_the_sdk_waits(tmp_path: Path) -> None:
    env = {"LLMLENS_MAX_QUEUED_EVENTS": "1", "LLMLENS_SQL_MAX_ROWS": "100000"}
    with LLMLensServer(tmp_path / "data", env=env) as srv:
        answers: list[httpx.Response] = []
        acked: list[str] = []
        lock = threading.Lock()

        def blast(index: int) -> None:
            with httpx.Client(base_url=srv.url, timeout=30) as c:
                for seq in range(6):
                    batch = _batch(f"blast-{index}-{seq}", 400)
                    while True:
                        r = c.post("/api/v1/ingest", json=batch)
                        with lock:
                            answers.append(r)
                        if r.status_code == 200:
                            with lock:
                                acked.extend(str(e["span_id"]) for e in batch)
                            break
                        time.sleep(float(r.headers.get("retry-after", "1")) / 10)

        llmlens.init(url=srv.url, schedule_delay_s=0.01, max_batch_size=200, raise_internal_errors=True)
        try:
            threads = [threading.Thread(target=blast, args=(i,)) for i in range(6)]
            for t in threads:
                t.start()
            for i in range(1000):
                llmlens.log_llm_call(f"sdk {i}", "r", "gpt-4o", 10, 2, 100.0, 0.0001)
            for t in threads:
                t.join(120)
            assert llmlens.flush(60)
            stats = llmlens.stats()
        finally:
            llmlens.shutdown()
        statuses = {r.status_code for r in answers}
        assert statuses <= {200, 503}, statuses
        busy = [r for r in answers if r.status_code == 503]
        assert busy, "the writer never fell behind: no 503 to check"
        assert all(int(r.headers["retry-after"]) >= 1 for r in busy)
        assert "queue is full" in busy[0].json()["error"]
        assert stats["dropped"] == 0 and stats["failed"] == 0
        stored = {str(r["span_id"]) for r in srv.sql("SELECT span_id FROM llm_logs WHERE prompt LIKE 'blast-%'")}
        assert set(acked) <= stored
        assert srv.sql("SELECT count(*) AS n FROM llm_logs WHERE prompt LIKE 'sdk %'") == [{"n": 1000}]
