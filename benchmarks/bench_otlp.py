"""llmlens OTLP/HTTP ingest: spans/s until durable and queryable, peak RSS, disk bytes per span,
start-up time and idle RSS of `llmlens serve`.

    .venv/bin/python -m benchmarks.bench_otlp [--quick]

Sends the realistic 4-span LLM traces of `_otlp_payloads` as protobuf batches from 4 concurrent
clients. llmlens answers an export after its group commit, so every acknowledged span is durable;
the clock stops when a COUNT(*) over the store sees every span. The CPU the server process and its
decode workers spent per span over the same window is reported too: on a shared machine it moves
much less than the wall-clock rate.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from tests.support.llmlens_server import LLMLensServer

from ._otlp_payloads import build_batches
from ._proc import PeakRss, cpu_split_s, dir_bytes, rss_mib

CLIENTS = 4
SPANS_PER_BATCH = 1000


def post_all(url: str, bodies: list[bytes], clients: int = CLIENTS, path: str = "/v1/traces") -> float:
    """Send every body (split across `clients` threads); seconds until the last answer."""
    errors: list[str] = []

    def loop(mine: list[bytes]) -> None:
        with httpx.Client(base_url=url, timeout=300) as c:
            for body in mine:
                for _ in range(100):
                    r = c.post(path, content=body, headers={"Content-Type": "application/x-protobuf"})
                    if r.status_code in (429, 503):
                        time.sleep(0.2)
                        continue
                    if r.status_code >= 300:
                        errors.append(f"{r.status_code} {r.text[:200]}")
                    break

    threads = [threading.Thread(target=loop, args=(bodies[i::clients],)) for i in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"{len(errors)} failed exports, first: {errors[0]}")
    return time.perf_counter() - t0


def _count(srv: LLMLensServer) -> int:
    return int(srv.sql("SELECT COUNT(*) AS n FROM spans")[0]["n"])


def measure_llmlens(bodies: list[bytes], n_spans: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        t0 = time.perf_counter()
        srv = LLMLensServer(data)
        srv.start()
        try:
            assert srv.proc is not None
            startup_s = time.perf_counter() - t0
            time.sleep(1.0)
            idle = rss_mib(srv.proc.pid)
            with PeakRss(srv.proc.pid) as peak:
                own_0, workers_0 = cpu_split_s(srv.proc.pid)
                t1 = time.perf_counter()
                post_all(srv.url, bodies)
                while _count(srv) < n_spans:
                    time.sleep(0.01)
                elapsed = time.perf_counter() - t1
                own_1, workers_1 = cpu_split_s(srv.proc.pid)
            stored = _count(srv)
        finally:
            srv.stop()
        disk = dir_bytes(data)
    return {
        "startup_s": startup_s,
        "idle_rss_mib": idle,
        "peak_rss_mib": peak.peak,
        "spans_per_s": stored / elapsed,
        "elapsed_s": elapsed,
        "stored": stored,
        "bytes_per_span": disk / max(stored, 1),
        "server_cpu_us": (own_1 - own_0) / max(stored, 1) * 1e6,
        "worker_cpu_us": (workers_1 - workers_0) / max(stored, 1) * 1e6,
    }


def run(quick: bool = False) -> list[dict[str, Any]]:
    n = 40_000 if quick else 200_000
    full = measure_llmlens(build_batches(n, SPANS_PER_BATCH), n)
    bare = measure_llmlens(build_batches(n // 2, SPANS_PER_BATCH, text=False), n // 2)
    b = "llmlens OTLP ingest"
    return [
        {
            "benchmark": b,
            "case": f"{n:,} spans, 4 clients, to queryable",
            "value": round(full["spans_per_s"]),
            "unit": "spans/s",
            "target": ">= 25,000",
            "met": full["spans_per_s"] >= 25_000,
        },
        {
            "benchmark": b,
            "case": f"CPU per span: server process (decode workers {full['worker_cpu_us']:.0f} µs)",
            "value": round(full["server_cpu_us"], 1),
            "unit": "µs",
        },
        {"benchmark": b, "case": "server peak RSS under load", "value": round(full["peak_rss_mib"]), "unit": "MiB"},
        {
            "benchmark": b,
            "case": "disk per span, with prompt/response text",
            "value": round(full["bytes_per_span"]),
            "unit": "bytes",
            "target": "< 800",
            "met": full["bytes_per_span"] < 800,
        },
        {
            "benchmark": b,
            "case": "disk per span, no prompt/response text",
            "value": round(bare["bytes_per_span"]),
            "unit": "bytes",
            "target": "< 300",
            "met": bare["bytes_per_span"] < 300,
        },
        {
            "benchmark": "llmlens serve",
            "case": "start to ready",
            "value": round(full["startup_s"], 2),
            "unit": "s",
            "target": "< 2",
            "met": full["startup_s"] < 2,
        },
        {
            "benchmark": "llmlens serve",
            "case": "idle RSS (empty store)",
            "value": round(full["idle_rss_mib"]),
            "unit": "MiB",
            "target": "< 150",
            "met": full["idle_rss_mib"] < 150,
        },
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    for row in run(parser.parse_args().quick):
        print(f"{row['case']:<45} {row['value']:>12,} {row['unit']}")
