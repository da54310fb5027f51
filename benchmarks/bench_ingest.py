"""Native ingest throughput: events/s until committed (every request is answered after its commit),
with batches of 1 and 500 events from 1 and 8 concurrent clients, against a real `llmlens serve`."""

from __future__ import annotations

import json
import random
import threading
import time
from typing import Any

import httpx
from tests.support.llmlens_server import LLMLensServer


def _event(rng: random.Random, i: int) -> dict[str, Any]:
    prompt_tokens = rng.randint(100, 3000)
    completion_tokens = rng.randint(10, 600)
    return {
        "timestamp": time.time(),
        "model": rng.choice(["gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet-20241022"]),
        "prompt": "Summarise the following text. " + "lorem ipsum " * 100,
        "response": "A summary. " * 30,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "latency_ms": rng.uniform(200, 4000),
        "cost_usd": None,
        "metadata": {
            "user_id": f"user{rng.randint(1, 500)}",
            "feature": rng.choice(["chat", "summarize"]),
            "message_id": f"bench-{i}-{rng.random()}",
        },
    }


def _client_loop(url: str, bodies: list[bytes], counts: list[int], errors: list[str]) -> None:
    with httpx.Client(base_url=url, timeout=60) as client:
        for body in bodies:
            r = client.post("/api/v1/ingest", content=body, headers={"Content-Type": "application/json"})
            if r.status_code != 200:
                errors.append(f"{r.status_code} {r.text[:100]}")
                continue
            counts.append(r.json()["accepted"])


def measure(url: str, *, batch: int, clients: int, total_events: int) -> float:
    """Events/s acknowledged (= committed) for `total_events` unique events."""
    rng = random.Random(batch * 100 + clients)
    per_client = max(1, total_events // batch // clients)
    work = [
        [json.dumps([_event(rng, c * 10**7 + j * batch + k) for k in range(batch)]).encode() for j in range(per_client)]
        for c in range(clients)
    ]
    counts: list[int] = []
    errors: list[str] = []
    threads = [threading.Thread(target=_client_loop, args=(url, w, counts, errors)) for w in work]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{len(errors)} failed requests, first: {errors[0]}")
    return sum(counts) / elapsed


def run(quick: bool = False) -> list[dict[str, Any]]:
    results = []
    with LLMLensServer() as srv:
        for batch in (1, 500):
            for clients in (1, 8):
                total = (1_000 if batch == 1 else 20_000) * (1 if quick else 3)
                rate = measure(srv.url, batch=batch, clients=clients, total_events=total)
                results.append(
                    {
                        "benchmark": "native ingest",
                        "case": f"batch {batch}, {clients} client(s)",
                        "value": round(rate),
                        "unit": "events/s committed",
                    }
                )
    return results


if __name__ == "__main__":
    for row in run():
        print(f"{row['benchmark']:<16} {row['case']:<24} {row['value']:>10,} {row['unit']}")
