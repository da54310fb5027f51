"""The batch exporter: batching, retries with Retry-After, drops, spool, fork safety, never raising."""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.sdk._capture import CaptureServer

import llmlens


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_batches_by_count_and_sends_gzip_ndjson(init_capture: Callable[..., CaptureServer]) -> None:
    cap = init_capture(max_batch_size=10, schedule_delay_s=30)
    for i in range(25):
        llmlens.log_tool_call(f"t{i}", {}, None, 1.0, True)
    deadline = time.monotonic() + 5
    while len(cap.events) < 20 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [len(r["events"]) for r in cap.requests][:2] == [10, 10]  # full batches went without waiting
    assert llmlens.flush(5)
    assert [e["name"] for e in cap.events] == [f"t{i}" for i in range(25)]
    request = cap.requests[0]
    assert request["path"] == "/api/v1/ingest"
    assert request["headers"]["Content-Type"] == "application/x-ndjson"
    stats = llmlens.stats()
    assert stats["sent"] == 25 and stats["queued"] == 0 and stats["batches"] == 3


def test_retries_429_and_503_honouring_retry_after(init_capture: Callable[..., CaptureServer]) -> None:
    cap = init_capture()
    cap.script.extend([(503, {"Retry-After": "0.3"}), (429, {"Retry-After": "0.2"}), (500, {})])
    started = time.monotonic()
    llmlens.log_tool_call("once", {}, None, 1.0, True)
    assert llmlens.flush(10)
    # flush cuts one backoff short, but the rest is honoured
    assert time.monotonic() - started >= 0.2
    assert [r["status"] for r in cap.requests] == [503, 429, 500, 200]
    assert len({r["events"][0]["span_id"] for r in cap.requests}) == 1  # the same batch, same ids
    assert [e["name"] for e in cap.events] == ["once"]
    assert llmlens.stats()["retried"] == 3 and llmlens.stats()["sent"] == 1


def test_a_refused_batch_is_counted_not_retried(
    init_capture: Callable[..., CaptureServer], caplog: pytest.LogCaptureFixture
) -> None:
    cap = init_capture()
    cap.script.append((400, {}))
    with caplog.at_level(logging.WARNING, logger="llmlens"):
        llmlens.log_tool_call("bad", {}, None, 1.0, True)
        assert llmlens.flush(5)
    assert llmlens.stats()["failed"] == 1 and len(cap.requests) == 1
    assert "HTTP 400" in caplog.text


def test_full_queue_drops_oldest_counts_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    port = _free_port()  # nothing listens: every send fails
    llmlens.init(url=f"http://127.0.0.1:{port}", max_queue_size=100, max_batch_size=10, schedule_delay_s=0.01)
    from llmlens.sdk import _internal

    _internal._seen_warnings.discard("queue-full")
    with caplog.at_level(logging.WARNING, logger="llmlens"):
        for i in range(1000):
            llmlens.log_tool_call(f"t{i}", {}, None, 1.0, True)
    stats = llmlens.stats()
    # Never blocked by the dead server: the calls went on and the oldest events made room for the newest (a
    # caller waiting for the exporter to make room would have dropped none).
    assert stats["dropped"] >= 1000 - 100 - 10
    assert stats["queued"] <= 110
    assert caplog.text.count("export queue full") == 1
    assert llmlens.flush(0.2) is False  # cannot deliver: says so, does not hang


def test_unreachable_server_never_raises_and_shutdown_has_a_deadline() -> None:
    llmlens.init(url=f"http://127.0.0.1:{_free_port()}", schedule_delay_s=0.01)
    for _ in range(10):
        llmlens.log_llm_call("p", "r", "m", 1, 1, 1.0, None)
    started = time.monotonic()
    llmlens.shutdown(timeout=0.5)
    assert time.monotonic() - started < 2


def test_spool_keeps_batches_through_an_outage(tmp_path: Path, capture: CaptureServer) -> None:
    port = _free_port()
    spool = tmp_path / "spool"
    llmlens.init(
        url=f"http://127.0.0.1:{port}",
        spool_dir=str(spool),
        max_queue_size=50,
        max_batch_size=10,
        schedule_delay_s=0.01,
    )
    deadline = time.monotonic() + 30
    for i in range(300):  # six times what memory holds
        llmlens.log_tool_call(f"t{i}", {}, None, 1.0, True)
        # Before the next ten, wait until the worker has spilled enough to disk to make room for them.
        while i % 10 == 9 and llmlens.stats()["queued"] > 40:
            assert time.monotonic() < deadline, f"the worker does not spill: {llmlens.stats()}"
            time.sleep(0.005)
    assert llmlens.stats()["dropped"] == 0
    llmlens.shutdown(timeout=1)  # spills what is left to disk
    files = list(spool.glob("*.ndjson.gz"))
    assert files
    # A new process (here: a new init) sends the spool once the server answers.
    llmlens.init(url=capture.url, spool_dir=str(spool), schedule_delay_s=0.01)
    assert llmlens.flush(10)
    names = [e["name"] for e in capture.events]
    assert sorted(names) == sorted(f"t{i}" for i in range(300))  # every one, once
    assert not list(spool.glob("*.ndjson.gz"))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is not available on this platform")
def test_exporter_works_in_a_forked_child(init_capture: Callable[..., CaptureServer]) -> None:
    cap = init_capture()
    llmlens.log_tool_call("parent", {}, None, 1.0, True)
    assert llmlens.flush(5)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: like a gunicorn or celery worker
        code = 1
        try:
            llmlens.log_tool_call("child", {}, None, 1.0, True)
            ok = llmlens.flush(5)
            os.write(write_fd, json.dumps({"ok": ok, "stats": llmlens.stats()}).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_fd)
    _, status = os.waitpid(pid, 0)
    report = json.loads(os.read(read_fd, 10_000))
    os.close(read_fd)
    assert status == 0 and report["ok"] and report["stats"]["sent"] == 1
    assert sorted(e["name"] for e in cap.events) == ["child", "parent"]
