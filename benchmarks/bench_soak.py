"""Soak: steady ingest and dashboard reads against a real `llmlens serve` (auth on) for N minutes.

    python -m benchmarks.bench_soak [--minutes 10] [--rate 1000] [--json out.json]

Reports the server's resident memory at start and end (and its peak), events acknowledged, reads
answered, and errors, which must be none (503 backpressure answers are counted apart and retried).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from tests.support.llmlens_server import LLMLensServer

from ._proc import dir_bytes, rss_mib

_READS = (
    ("GET", "/api/v1/overview", {"range": "1h"}),
    ("GET", "/api/v1/cost", {"range": "24h"}),
    ("GET", "/api/v1/latency", {"range": "1h"}),
    ("GET", "/api/v1/traces", {"range": "1h"}),
    ("GET", "/api/v1/tools", {"range": "1h"}),
    ("POST", "/api/v1/sql", {"query": "SELECT model, count(*) AS n, avg(latency_ms) FROM llm_logs GROUP BY model"}),
)


@dataclass
class SoakResult:
    minutes: float
    rate_target: float
    events_acked: int = 0
    events_per_s: float = 0.0
    reads: int = 0
    read_p95_ms: float = 0.0
    backpressure_503: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    rss_start_mib: float = 0.0
    rss_end_mib: float = 0.0
    rss_peak_mib: float = 0.0
    store_mib: float = 0.0
    rss_samples: list[tuple[float, float]] = field(default_factory=list)


def _events(rng: random.Random, n: int, seq: int, worker: int) -> list[dict[str, Any]]:
    now = time.time()
    out: list[dict[str, Any]] = []
    for i in range(n):
        trace = f"{worker + 1:04x}{seq:012x}{i + 1:016x}"
        out.append(
            {
                "type": "llm",
                "trace_id": trace,
                "span_id": trace[16:],
                "timestamp": now,
                "model": rng.choice(("gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet-20241022")),
                "prompt": "Summarise this ticket for the on-call engineer. " + "details " * rng.randint(10, 80),
                "response": "Summary: " + "words " * rng.randint(5, 40),
                "prompt_tokens": rng.randint(100, 3000),
                "completion_tokens": rng.randint(10, 500),
                "latency_ms": rng.uniform(200, 4000),
                "user_id": f"user-{rng.randint(1, 300)}",
                "session_id": f"s-{worker}-{seq // 10}",
                "feature": rng.choice(("chat", "summarize", "search")),
            }
        )
        if i % 5 == 0:
            out.append(
                {
                    "type": "tool",
                    "trace_id": trace,
                    "span_id": f"{seq:08x}{i + 1:08x}"[::-1],
                    "timestamp": now,
                    "tool_name": rng.choice(("search_web", "lookup_order")),
                    "args": {"q": "x"},
                    "result": "ok",
                    "latency_ms": rng.uniform(5, 500),
                    "success": rng.random() > 0.1,
                }
            )
    return out


class _Shared:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.acked = 0
        self.reads: list[float] = []
        self.busy = 0
        self.errors: list[str] = []

    def error(self, text: str) -> None:
        with self.lock:
            self.errors.append(text)


def _ingester(url: str, key: str, worker: int, rate: float, stop: threading.Event, shared: _Shared) -> None:
    rng = random.Random(worker)
    batch = 100
    interval = batch / rate
    seq = 0
    next_at = time.monotonic()
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as c:
        while not stop.is_set():
            events = _events(rng, batch, seq, worker)
            while not stop.is_set():
                try:
                    r = c.post("/api/v1/ingest", json=events)
                except httpx.HTTPError as exc:
                    shared.error(f"ingest: {exc!r}")
                    time.sleep(1)
                    continue
                if r.status_code == 200:
                    with shared.lock:
                        shared.acked += r.json()["accepted"]
                    break
                if r.status_code == 503:
                    with shared.lock:
                        shared.busy += 1
                    time.sleep(float(r.headers.get("retry-after", "1")))
                    continue
                shared.error(f"ingest {r.status_code}: {r.text[:200]}")
                break
            seq += 1
            next_at += interval
            stop.wait(max(0.0, next_at - time.monotonic()))


def _reader(url: str, key: str, stop: threading.Event, shared: _Shared) -> None:
    i = 0
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120) as c:
        while not stop.is_set():
            method, path, params = _READS[i % len(_READS)]
            i += 1
            started = time.perf_counter()
            try:
                r = c.post(path, json=params) if method == "POST" else c.get(path, params=params)
            except httpx.HTTPError as exc:
                shared.error(f"read {path}: {exc!r}")
                continue
            elapsed = (time.perf_counter() - started) * 1000
            if r.status_code != 200:
                shared.error(f"read {path} {r.status_code}: {r.text[:200]}")
            else:
                with shared.lock:
                    shared.reads.append(elapsed)
            stop.wait(0.2)


def _key(data: Path, role: str) -> str:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "llmlens.cli",
            "keys",
            "create",
            "--project",
            "soak",
            "--role",
            role,
            "--create-project",
            "--data",
            str(data),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.splitlines()[0].strip()


def soak(minutes: float, rate: float, *, ingesters: int = 3, readers: int = 2, warmup_s: float = 15.0) -> SoakResult:
    result = SoakResult(minutes=minutes, rate_target=rate)
    with tempfile.TemporaryDirectory(prefix="llmlens-soak-") as tmp:
        data = Path(tmp)
        with LLMLensServer(data, args=["--auth", "on"]) as srv:
            assert srv.proc is not None
            pid = srv.proc.pid
            ingest_key, read_key = _key(data, "ingest"), _key(data, "read")
            shared = _Shared()
            stop = threading.Event()
            threads = [
                threading.Thread(target=_ingester, args=(srv.url, ingest_key, w, rate / ingesters, stop, shared))
                for w in range(ingesters)
            ] + [threading.Thread(target=_reader, args=(srv.url, read_key, stop, shared)) for _ in range(readers)]
            for t in threads:
                t.start()
            started = time.monotonic()
            stop.wait(min(warmup_s, minutes * 60 / 4))  # caches, price tables and pools warm up first
            result.rss_start_mib = rss_mib(pid)
            acked_at_start = shared.acked
            measure_from = time.monotonic()
            deadline = started + minutes * 60
            while time.monotonic() < deadline:
                rss = rss_mib(pid)
                result.rss_samples.append((round(time.monotonic() - started, 1), round(rss, 1)))
                result.rss_peak_mib = max(result.rss_peak_mib, rss)
                time.sleep(min(5.0, max(0.0, deadline - time.monotonic())))
            result.rss_end_mib = rss_mib(pid)
            result.rss_peak_mib = max(result.rss_peak_mib, result.rss_end_mib)
            stop.set()
            for t in threads:
                t.join(60)
            elapsed = time.monotonic() - measure_from
            result.events_acked = shared.acked
            result.events_per_s = round((shared.acked - acked_at_start) / elapsed, 1) if elapsed > 0 else 0.0
            reads = sorted(shared.reads)
            result.reads = len(reads)
            result.read_p95_ms = round(reads[int(len(reads) * 0.95)] if reads else 0.0, 1)
            result.backpressure_503 = shared.busy
            result.errors = len(shared.errors)
            result.error_samples = shared.errors[:10]
            result.store_mib = round(dir_bytes(data) / 2**20, 1)
            health = httpx.get(srv.url + "/healthz", timeout=10)
            if health.status_code != 200:
                result.errors += 1
                result.error_samples.append(f"healthz {health.status_code}")
    result.rss_start_mib = round(result.rss_start_mib, 1)
    result.rss_end_mib = round(result.rss_end_mib, 1)
    result.rss_peak_mib = round(result.rss_peak_mib, 1)
    return result


def run(quick: bool) -> list[dict[str, Any]]:
    """For `python -m benchmarks`: a 1-minute soak when quick, else 10 minutes."""
    r = soak(1.0 if quick else 10.0, 1000.0)
    case = f"{r.minutes:g} min, {r.rate_target:g} events/s"
    return [
        {"benchmark": "soak", "case": f"{case} rss start", "value": r.rss_start_mib, "unit": "MiB"},
        {"benchmark": "soak", "case": f"{case} rss end", "value": r.rss_end_mib, "unit": "MiB"},
        {"benchmark": "soak", "case": f"{case} events acked", "value": r.events_acked, "unit": "events"},
        {"benchmark": "soak", "case": f"{case} read p95", "value": r.read_p95_ms, "unit": "ms"},
        {
            "benchmark": "soak",
            "case": f"{case} errors",
            "value": r.errors,
            "unit": "errors",
            "target": 0,
            "met": r.errors == 0,
        },
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=1000.0, help="LLM events per second to ingest (all clients)")
    parser.add_argument("--json", type=Path, help="write the result here")
    args = parser.parse_args()
    r = soak(args.minutes, args.rate)
    rows = [
        ("duration", f"{r.minutes:g} min"),
        ("ingest target", f"{r.rate_target:g} LLM events/s (+ tool spans)"),
        ("events acknowledged", f"{r.events_acked} ({r.events_per_s} /s)"),
        ("dashboard reads", f"{r.reads} (p95 {r.read_p95_ms} ms)"),
        ("503 backpressure (retried)", str(r.backpressure_503)),
        ("errors", str(r.errors)),
        ("RSS start / end / peak", f"{r.rss_start_mib} / {r.rss_end_mib} / {r.rss_peak_mib} MiB"),
        ("store on disk", f"{r.store_mib} MiB"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    for sample in r.error_samples:
        print("  error:", sample)
    if args.json:
        args.json.write_text(json.dumps(asdict(r), indent=2))
    return 0 if r.errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
