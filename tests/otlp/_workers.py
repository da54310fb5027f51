"""Start a server's OTLP decode workers and wait until they decode (until then large bodies go to threads)."""

from __future__ import annotations

import time

import httpx
from tests.support.llmlens_server import LLMLensServer


def warm_decode_workers(srv: LLMLensServer, large_body: bytes) -> None:
    """Post `large_body` (protobuf, >= 64 KB) to a project of its own, then wait for the workers' log line."""
    headers = {"Content-Type": "application/x-protobuf", "X-LLMLens-Project": "warm-up"}
    assert httpx.post(f"{srv.url}/v1/traces", content=large_body, headers=headers, timeout=60).status_code == 200
    deadline = time.monotonic() + 30
    while "OTLP decode workers ready" not in srv.log_path.read_text():
        assert time.monotonic() < deadline, "the decode workers did not start"
        time.sleep(0.05)
