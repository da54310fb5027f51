"""Ingest flood: many clients re-sending 10,000-event batches; how soon a client told to back off hears
so (503 + Retry-After), and whether /healthz keeps answering meanwhile.

    .venv/bin/python -m benchmarks.bench_flood [--clients 64] [--events 10000] [--probes 100] [--json out.json]

The flood runs in a process of its own (asyncio, one keep-alive connection per client, each client
sending its next batch as soon as the last one is answered, or after Retry-After when told to wait), so
the /healthz prober in this process is not slowed by the load generator's own work. Every event carries
a unique message id, so the server writes every accepted batch in full. Prints the latency of the 503
answers (the time a client waited to be told to back off), of the accepted batches, and of the /healthz
probes with how many missed their timeout, plus the load average: on a shared machine other processes'
load shows up in every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.llmlens_server import LLMLensServer  # noqa: E402

ROUND = b"@ROUND@"


def _batch_template(client: int, events: int) -> bytes:
    """One client's batch; ROUND is replaced on every send so that no event repeats."""
    now = time.time()
    batch = [
        {
            "timestamp": now,
            "model": "gpt-4o-mini",
            "prompt": "What is the capital of France? Answer in one word.",
            "response": "Paris.",
            "prompt_tokens": 14,
            "completion_tokens": 2,
            "total_tokens": 16,
            "latency_ms": 420.0,
            "metadata": {"user_id": f"user-{i % 500}", "feature": "chat", "message_id": f"c{client}-{i}-@ROUND@"},
        }
        for i in range(events)
    ]
    return json.dumps(batch).encode()


async def _client(url: str, client: int, events: int, until: float, results: list[tuple[int, float, bool]]) -> None:
    import httpx

    template = _batch_template(client, events)
    sent = 0
    async with httpx.AsyncClient(base_url=url, timeout=300) as http:
        while time.monotonic() < until:
            body = template.replace(ROUND, str(sent).encode())
            sent += 1
            started = time.perf_counter()
            try:
                r = await http.post("/api/v1/ingest", content=body, headers={"Content-Type": "application/json"})
            except httpx.HTTPError:
                results.append((0, time.perf_counter() - started, False))
                continue
            results.append((r.status_code, time.perf_counter() - started, "retry-after" in r.headers))
            if r.status_code in (429, 503):
                # As the SDK does: wait as long as told before sending again.
                await asyncio.sleep(min(5.0, float(r.headers.get("retry-after", "1"))))


def _flood(url: str, clients: int, events: int, seconds: float, out: Any) -> None:
    async def main() -> list[tuple[int, float, bool]]:
        results: list[tuple[int, float, bool]] = []
        until = time.monotonic() + seconds
        await asyncio.gather(*(_client(url, c, events, until, results) for c in range(clients)))
        return results

    out.put(asyncio.run(main()))


def _probe_healthz(url: str, probes: int, interval_s: float, timeout_s: float) -> tuple[list[float], int]:
    import httpx

    latencies: list[float] = []
    timeouts = 0
    for _ in range(probes):
        started = time.perf_counter()
        try:
            # A new connection each time, as a load balancer's health check makes.
            r = httpx.get(f"{url}/healthz", timeout=timeout_s)
            if r.status_code == 200:
                latencies.append(time.perf_counter() - started)
            else:
                timeouts += 1
        except httpx.HTTPError:
            timeouts += 1
        time.sleep(max(0.0, interval_s - (time.perf_counter() - started)))
    return latencies, timeouts


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(
    url: str, *, clients: int, events: int, probes: int, interval_s: float = 0.5, timeout_s: float = 1.0
) -> dict[str, Any]:
    warm_up_s = 3.0
    seconds = warm_up_s + probes * interval_s + 2.0
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    load_before = os.getloadavg()[0]
    flood = ctx.Process(target=_flood, args=(url, clients, events, seconds, out), daemon=True)
    flood.start()
    time.sleep(warm_up_s)  # a benchmark's pacing, not synchronisation: let the flood build up first
    healthz, healthz_timeouts = _probe_healthz(url, probes, interval_s, timeout_s)
    results: list[tuple[int, float, bool]] = out.get(timeout=seconds + 600)
    flood.join(60)
    busy = [lat for status, lat, _ in results if status == 503]
    accepted = [lat for status, lat, _ in results if status == 200]
    return {
        "clients": clients,
        "events_per_batch": events,
        "requests": len(results),
        "accepted": len(accepted),
        "answered_503": len(busy),
        "503_with_retry_after": sum(1 for status, _, retry in results if status == 503 and retry),
        "other": len(results) - len(accepted) - len(busy),
        "time_to_503_p50_s": round(_pct(busy, 0.5), 3),
        "time_to_503_p99_s": round(_pct(busy, 0.99), 3),
        "time_to_503_max_s": round(max(busy, default=float("nan")), 3),
        "accepted_p50_s": round(_pct(accepted, 0.5), 3),
        "accepted_max_s": round(max(accepted, default=float("nan")), 3),
        "healthz_probes": probes,
        "healthz_timeout_s": timeout_s,
        "healthz_timeouts": healthz_timeouts,
        "healthz_p50_ms": round(_pct(healthz, 0.5) * 1000, 1),
        "healthz_p99_ms": round(_pct(healthz, 0.99) * 1000, 1),
        "load_before": round(load_before, 2),
        "load_after": round(os.getloadavg()[0], 2),
    }


def run(quick: bool = False) -> list[dict[str, Any]]:
    clients, probes = (16, 40) if quick else (64, 100)
    with LLMLensServer() as srv:
        doc = measure(srv.url, clients=clients, events=10_000, probes=probes)
    case = f"{clients} clients x 10k-event batches"
    rows = [
        ("time to 503 p50", doc["time_to_503_p50_s"], "s"),
        ("time to 503 max", doc["time_to_503_max_s"], "s"),
        ("/healthz p50", doc["healthz_p50_ms"], "ms"),
        ("/healthz p99", doc["healthz_p99_ms"], "ms"),
        (f"/healthz over {doc['healthz_timeout_s']:g} s", doc["healthz_timeouts"], f"of {probes} probes"),
    ]
    return [{"benchmark": "ingest flood", "case": f"{case}: {name}", "value": v, "unit": u} for name, v, u in rows]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--events", type=int, default=10_000, help="events per batch")
    parser.add_argument("--probes", type=int, default=100, help="/healthz probes, one every 0.5 s")
    parser.add_argument("--url", help="flood a running server instead of starting one")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    if args.url:
        doc = measure(args.url, clients=args.clients, events=args.events, probes=args.probes)
    else:
        with LLMLensServer() as srv:
            doc = measure(srv.url, clients=args.clients, events=args.events, probes=args.probes)
    for key, value in doc.items():
        print(f"{key:<22} {value}")
    if args.json:
        args.json.write_text(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
