"""Durability: a 2xx from ingest means on disk. Several clients ingest; the server is SIGKILLed
mid-stream and restarted; clients retry what was not acknowledged. Every acknowledged event is
present, and no event is stored twice."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest
from tests.support.llmlens_server import LLMLensServer

CLIENTS = 4
BATCH = 50

pytestmark = pytest.mark.slow


def _batch(client: int, seq: int) -> list[dict[str, object]]:
    now = time.time()
    return [
        {
            "type": "llm",
            # ids are never all zeros (invalid in W3C trace context, so the decoder would replace them)
            "span_id": f"{client + 1:02x}{seq:06x}{i + 1:08x}",
            "trace_id": f"{client + 1:02x}{seq:06x}" + "0" * 23 + "1",
            "timestamp": now,
            "model": "gpt-4o",
            "prompt": f"client {client} batch {seq} event {i}",
            "response": "ok",
            "prompt_tokens": 10,
            "completion_tokens": 2,
        }
        for i in range(BATCH)
    ]


class Client(threading.Thread):
    """Sends batches in order; a batch is retried until acknowledged (as the SDK does)."""

    def __init__(self, index: int, url: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.index = index
        self.url = url
        self.stop = stop
        self.acked: list[str] = []
        self.sent_ids: set[str] = set()
        self.retries = 0
        self.unreachable = 0  # attempts that got no answer at all (the server was down)
        self.errors: list[str] = []

    def run(self) -> None:
        seq = 0
        with httpx.Client(timeout=10) as http:
            while not self.stop.is_set():
                batch = _batch(self.index, seq)
                self.sent_ids.update(str(e["span_id"]) for e in batch)
                while True:  # until acknowledged
                    try:
                        r = http.post(self.url + "/api/v1/ingest", json=batch)
                        if r.status_code == 200:
                            self.acked.extend(str(e["span_id"]) for e in batch)
                            break
                        if r.status_code != 503:
                            self.errors.append(f"{r.status_code}: {r.text[:200]}")
                    except httpx.HTTPError:
                        self.unreachable += 1  # the server is down: retry the same batch
                    self.retries += 1
                    time.sleep(0.1)
                seq += 1


def test_sigkill_during_sustained_ingest_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    env = {"LLMLENS_SQL_MAX_ROWS": "1000000"}
    srv = LLMLensServer(tmp_path / "data", env=env).start()
    stop = threading.Event()
    try:
        clients = [Client(i, srv.url, stop) for i in range(CLIENTS)]
        for c in clients:
            c.start()
        deadline = time.monotonic() + 30
        while sum(len(c.acked) for c in clients) < 2000 and time.monotonic() < deadline:
            time.sleep(0.05)
        acked_before_kill = {i for c in clients for i in c.acked}
        assert acked_before_kill, "no batch acknowledged before the kill"
        unreachable_before = [c.unreachable for c in clients]
        srv.stop(kill=True)  # SIGKILL: no shutdown, no flush
        deadline = time.monotonic() + 30
        # Restart only once every client has found the server gone (and so holds a batch to retry).
        while any(c.unreachable == n for c, n in zip(clients, unreachable_before, strict=True)):
            assert time.monotonic() < deadline, "a client never noticed the server was gone"
            time.sleep(0.05)
        srv.start()  # same port and data directory
        restart_mark = sum(len(c.acked) for c in clients)
        deadline = time.monotonic() + 30
        while sum(len(c.acked) for c in clients) < restart_mark + 1000 and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        for c in clients:
            c.join(30)
            assert not c.is_alive()
        assert [e for c in clients for e in c.errors] == []
        assert sum(c.retries for c in clients) > 0, "no client noticed the kill"

        acked = [i for c in clients for i in c.acked]
        sent = {i for c in clients for i in c.sent_ids}
        assert len(acked) == len(set(acked))
        rows = srv.sql("SELECT span_id FROM spans")
        stored = [str(r["span_id"]) for r in rows]
        assert len(stored) == len(set(stored)), "an event was stored twice"
        lost = sorted(acked_before_kill - set(stored))
        assert not lost, f"{len(lost)} of {len(acked_before_kill)} acknowledged events lost in the crash: {lost[:5]}"
        assert set(acked) <= set(stored)
        assert set(stored) <= sent
        # every batch was finally acknowledged, so everything sent is there exactly once
        assert set(stored) == set(acked)
    finally:
        stop.set()
        srv.stop()
