"""Under an ingest flood the server says 503 + Retry-After before it reads or decodes a body it has no
room for, and /healthz keeps answering.

A server with a one-event writer queue is kept busy by clients re-sending large batches. Probes sent
meanwhile show what the server does with a request it cannot take: one whose body is not JSON would
be a 400 had it been decoded, and one whose body never comes could not be answered at all had the
server waited to read it."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.support.llmlens_server import LLMLensServer

FLOOD_CLIENTS = 3
BATCH_EVENTS = 40
PROMPT_CHARS = 40_000  # large text is slow to write and quick to decode: the writer falls behind


@pytest.fixture
def flooded(tmp_path: Path) -> Iterator[tuple[LLMLensServer, list[int]]]:
    env = {"LLMLENS_MAX_QUEUED_EVENTS": "1"}
    with LLMLensServer(tmp_path / "data", env=env) as srv:
        stop = threading.Event()
        statuses: list[int] = []
        threads = [
            threading.Thread(target=_flood, args=(srv.url, stop, statuses), daemon=True) for _ in range(FLOOD_CLIENTS)
        ]
        for t in threads:
            t.start()
        try:
            yield srv, statuses
        finally:
            stop.set()
            for t in threads:
                t.join(60)


def _flood(url: str, stop: threading.Event, statuses: list[int]) -> None:
    filler = "lorem ipsum dolor sit amet " * (PROMPT_CHARS // 27)
    with httpx.Client(base_url=url, timeout=60) as c:
        while not stop.is_set():
            tag = uuid.uuid4().hex
            batch = [
                {"type": "llm", "model": "gpt-4o", "prompt": f"{tag} {i} {filler}", "response": "ok"}
                for i in range(BATCH_EVENTS)
            ]
            try:
                statuses.append(c.post("/api/v1/ingest", content=json.dumps(batch).encode()).status_code)
            except httpx.HTTPError:
                statuses.append(0)


def test_requests_the_server_has_no_room_for_are_refused_unread(flooded: tuple[LLMLensServer, list[int]]) -> None:
    srv, flood_statuses = flooded
    refused: list[httpx.Response] = []
    health: list[int] = []
    deadline = time.monotonic() + 90
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        while not refused:
            assert time.monotonic() < deadline, f"no probe was refused during the flood: {flood_statuses[-20:]}"
            health.append(c.get("/healthz").status_code)
            # not JSON: a 400 if it had been decoded
            probe = c.post("/api/v1/ingest", content=b"this is not JSON", headers={"Content-Type": "application/json"})
            assert probe.status_code in (400, 503), probe.text
            if probe.status_code == 503:
                refused.append(probe)
    answer = refused[0]
    assert int(answer.headers["retry-after"]) >= 1
    assert "queue is full" in answer.json()["error"]
    assert set(health) == {200}, health
    assert {200, 503} >= set(flood_statuses), set(flood_statuses)

    # A request whose body never comes gets its 503 all the same while the server is busy.
    deadline = time.monotonic() + 90
    while (status := _status_without_sending_the_body(srv)) != 503:
        assert status is None, status  # not answered: the queue had room, so the server waits for the body
        assert time.monotonic() < deadline, "no body-less request was refused during the flood"
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        assert c.get("/healthz").status_code == 200


def _status_without_sending_the_body(srv: LLMLensServer) -> int | None:
    """Headers announcing a 1 MB body, and no body: the status if the server answers within 2 s."""
    assert srv.port is not None
    head = (
        f"POST /api/v1/ingest HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\nContent-Type: application/json\r\n"
        "Content-Length: 1000000\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", srv.port), timeout=2) as sock:
        sock.sendall(head.encode())
        try:
            first = sock.recv(64)
        except TimeoutError:
            return None  # waiting for the body, as it should when it has room
    return int(first.split(b" ", 2)[1]) if first else None
