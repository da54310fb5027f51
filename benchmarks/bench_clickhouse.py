"""DuckDB vs ClickHouse at 1M LLM calls: store write throughput and dashboard-style query times.

    .venv/bin/python -m benchmarks.bench_clickhouse [--calls 1000000] [--clickhouse clickhouse://...] [--json out.json]

Without --clickhouse a temporary clickhouse-server is started (tests/support/clickhouse_server.py).
Writes go through `Store.write` in 50k batches (dedupe check included), as the group-commit writer does.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import random
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from tests.support.clickhouse_server import ClickHouseServer

from llmlens.model import Span
from llmlens.store import Store, open_store

BATCH = 50_000
MODELS = ["gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet", "claude-3-haiku", "llama-3-70b"]
FEATURES = ["chat", "summarize", "code_review", "search", "support_answer"]
NOW = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
WINDOW_START = NOW - dt.timedelta(days=7)

QUERIES = {
    "overview totals (7d)": (
        "SELECT COUNT(*) AS calls, SUM(CASE WHEN status = 'error' THEN 1 ELSE 0 END) AS errors, "
        "SUM(cost_usd) AS cost, quantile_cont(latency_ms, 0.95) AS p95 FROM spans "
        "WHERE project = ? AND kind = 'llm' AND timestamp >= ? AND timestamp < ?"
    ),
    "cost by model per hour (7d)": (
        "SELECT date_trunc('hour', timestamp) AS bucket, COALESCE(model, '(none)') AS model, "
        "SUM(cost_usd) AS cost_usd FROM spans WHERE project = ? AND kind = 'llm' AND timestamp >= ? "
        "AND timestamp < ? GROUP BY date_trunc('hour', timestamp), COALESCE(model, '(none)') ORDER BY bucket"
    ),
    "latency p50/p95 by model (7d)": (
        "SELECT model, quantile_cont(latency_ms, 0.5) AS p50, quantile_cont(latency_ms, 0.95) AS p95 "
        "FROM spans WHERE project = ? AND kind = 'llm' AND timestamp >= ? AND timestamp < ? GROUP BY model"
    ),
    "top 20 users by cost (7d)": (
        "SELECT user_id, SUM(cost_usd) AS cost_usd FROM spans WHERE project = ? AND kind = 'llm' "
        "AND timestamp >= ? AND timestamp < ? GROUP BY user_id ORDER BY cost_usd DESC LIMIT 20"
    ),
}
ROLLUP_QUERIES = {
    "overview totals (7d) from rollup": (
        "SELECT SUM(calls) AS calls, SUM(errors) AS errors, SUM(cost_usd) AS cost FROM llm_hourly "
        "WHERE project = ? AND hour >= ? AND hour < ?"
    ),
    "cost by model per hour (7d) from rollup": (
        "SELECT hour AS bucket, model, SUM(cost_usd) AS cost_usd FROM llm_hourly "
        "WHERE project = ? AND hour >= ? AND hour < ? GROUP BY hour, model ORDER BY bucket"
    ),
}


def batches(total: int, seed: int = 3) -> Iterator[list[Span]]:
    rng = random.Random(seed)
    start_us = int(WINDOW_START.replace(tzinfo=dt.UTC).timestamp() * 1e6)
    spread_us = 7 * 86_400 * 1_000_000
    for first in range(0, total, BATCH):
        batch = []
        for i in range(first, min(first + BATCH, total)):
            prompt_tokens, completion_tokens = rng.randint(50, 3000), rng.randint(10, 600)
            batch.append(
                Span(
                    trace_id=f"{i:032x}",
                    span_id=f"{i:016x}",
                    kind="llm",
                    name="chat",
                    start_us=start_us + rng.randrange(spread_us),
                    latency_ms=rng.lognormvariate(6.5, 0.6),
                    status="error" if rng.random() < 0.02 else "ok",
                    user_id=f"user-{rng.randint(1, 5000)}",
                    feature=rng.choice(FEATURES),
                    model=rng.choice(MODELS),
                    provider="openai",
                    prompt_tokens=prompt_tokens,
                    completion_tokens=completion_tokens,
                    total_tokens=prompt_tokens + completion_tokens,
                    cost_usd=(prompt_tokens * 2.5 + completion_tokens * 10) / 1e6,
                    prompt="Summarise the following ticket for the support team.",
                    response="A short summary.",
                    metadata={"tier": rng.choice(["free", "pro"])},
                )
            )
        yield batch


def bench_store(name: str, store: Store, calls: int, repeats: int = 3) -> dict[str, float]:
    out: dict[str, float] = {}
    written, spent = 0, 0.0
    for batch in batches(calls):
        t0 = time.perf_counter()
        written += store.write(batch, []).spans_written
        spent += time.perf_counter() - t0
    assert written == calls, f"{name}: wrote {written} of {calls}"
    out["ingest calls/s"] = calls / spent
    params = ["default", WINDOW_START, NOW + dt.timedelta(minutes=1)]
    queries = dict(QUERIES)
    if name == "clickhouse":
        queries.update(ROLLUP_QUERIES)
    for label, sql in queries.items():
        store.query(sql, params)  # warm
        timings = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            store.query(sql, params)
            timings.append(time.perf_counter() - t0)
        out[f"{label} ms"] = min(timings) * 1000
    return out


@contextlib.contextmanager
def clickhouse(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    with ClickHouseServer() as server:
        yield server.url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--clickhouse", help="clickhouse://... (default: start a temporary server)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-duckdb-") as tmp, clickhouse(args.clickhouse) as ch_url:
        duck = open_store(f"duckdb://{Path(tmp) / 'bench.duckdb'}", Path(tmp))
        try:
            results["duckdb"] = bench_store("duckdb", duck, args.calls)
        finally:
            duck.close()
        ch = open_store(ch_url.rsplit("/", 1)[0] + f"/bench_{uuid.uuid4().hex[:8]}", Path(tmp))
        try:
            results["clickhouse"] = bench_store("clickhouse", ch, args.calls)
        finally:
            ch.close()
    labels = list(dict.fromkeys(k for r in results.values() for k in r))
    print(f"\n{args.calls:,} LLM calls          " + "".join(f"{b:>14}" for b in results))
    for label in labels:
        cells = "".join(f"{results[b][label]:>14,.1f}" if label in results[b] else f"{'-':>14}" for b in results)
        print(f"{label:<42}{cells}")
    if args.json:
        args.json.write_text(json.dumps({"calls": args.calls, "results": results}, indent=2))


if __name__ == "__main__":
    main()
