"""Every dashboard page on DuckDB and on ClickHouse side by side, over the same N calls (default 10M).

    .venv/bin/python -m benchmarks.bench_clickhouse [--calls 10000000] [--runs 3] [--json out.json]
    .venv/bin/python -m benchmarks.bench_clickhouse --cluster-calls 200000      # only the cluster case

The DuckDB store is bench_dashboard's (benchmarks/.cache/dashboard-N.duckdb, generated once). The
ClickHouse store holds the very same rows: copied once from that file into a clickhouse-server 18.16
whose data folder is kept in benchmarks/.cache/clickhouse-N/ (the rows go in as JSONEachRow through
clickhouse-client, so the materialized views build the rollups as they would under ingest). Then
each page's context is built (what its HTML page and /api/v1 twin run) per time range on both, and
the table gives the ClickHouse/DuckDB ratio (target: within 2x). `--ingest-calls` also times
`Store.write` on both (dedupe check and rollups included).

`--cluster-calls N` measures ingest into a replicated cluster: the two-node cluster of docs/clickhouse.md
("Two machines", started as tests/cluster/ starts it: ZooKeeper and two clickhouse-server on this
machine), one `llmlens serve` per node, and N LLM calls sent as JSON log lines, 1,000 a request,
by two clients per server at once; timed from the first request to the last acknowledgement.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from tests.support.clickhouse_server import ClickHouseServer

from llmlens.server import build_state
from llmlens.settings import Settings
from llmlens.store import FEEDBACK_COLUMNS, SCORE_COLUMNS, SPAN_COLUMNS, Store
from llmlens.store.clickhouse import ClickHouseStore
from llmlens.store.clickhouse._schema import _REQUIRED_FEEDBACK, _REQUIRED_SCORE, _REQUIRED_SPAN
from llmlens.store.duckdb import DuckDBStore

from .bench_dashboard import CACHE, fill_fast, page_timings

DATABASE = "bench"
RANGES = ["24h", "7d", "30d"]
TARGET_RATIO = 2.0


def duckdb_store(calls: int) -> DuckDBStore:
    """bench_dashboard's cached store of `calls` LLM calls, generated when missing."""
    CACHE.mkdir(exist_ok=True)
    db = CACHE / f"dashboard-{calls}.duckdb"
    store = DuckDBStore(db)
    if store.query("SELECT COUNT(*) FROM store.spans WHERE kind = 'llm'").rows[0][0] < calls:
        store.close()
        for f in CACHE.glob(f"dashboard-{calls}.duckdb*"):
            f.unlink()
        store = DuckDBStore(db)
        fill_fast(store, calls)
    return store


def _export_columns(columns: tuple[tuple[str, str, str], ...], required: frozenset[str]) -> tuple[list[str], list[str]]:
    """DuckDB expressions giving each ClickHouse column of `columns` as JSON (timestamps as µs)."""
    names, exprs = [], []
    for col, kind, _ in columns:
        if kind == "timestamp":
            names.append("timestamp_us")
            exprs.append(f"epoch_us({col}) AS timestamp_us")
        elif kind == "json":
            names.append(col)
            exprs.append(f'CAST("{col}" AS VARCHAR) AS "{col}"')
        elif kind == "bool":
            names.append(col)
            exprs.append(f'CAST("{col}" AS INTEGER) AS "{col}"')
        elif col in required:  # not Nullable on ClickHouse; the generated rows leave some empty
            names.append(col)
            exprs.append(f'COALESCE("{col}", \'\') AS "{col}"')
        else:
            names.append(col)
            exprs.append(f'"{col}"')
    return names, exprs


def _copy(duck: DuckDBStore, server: ClickHouseServer, table: str, source: str, columns: Any) -> None:
    """One day at a time: DuckDB writes JSON lines, clickhouse-client inserts them."""
    required = {"llmlens_spans": _REQUIRED_SPAN, "llmlens_feedback": _REQUIRED_FEEDBACK}.get(table, _REQUIRED_SCORE)
    client = shutil.which("clickhouse-client")
    if client is None:
        raise FileNotFoundError("clickhouse-client is not installed (scripts/setup-test-env.sh installs it)")
    names, exprs = _export_columns(columns, required)
    first, last = duck.query(f"SELECT MIN(timestamp), MAX(timestamp) FROM {source}").rows[0]
    first = first.replace(hour=0, minute=0, second=0, microsecond=0)
    days = (last - first).days + 1
    with tempfile.TemporaryDirectory(prefix="bench-ch-copy-") as tmp:
        chunk = Path(tmp) / "rows.json"
        for day in range(days):
            lo, hi = first + dt.timedelta(days=day), first + dt.timedelta(days=day + 1)
            duck.execute(
                f"COPY (SELECT {', '.join(exprs)} FROM {source} WHERE timestamp >= ? AND timestamp < ?) "
                f"TO '{chunk}' (FORMAT json)",
                [lo, hi],
            )
            if not chunk.stat().st_size:
                continue
            with chunk.open("rb") as rows:
                subprocess.run(
                    [
                        client,
                        "--host=127.0.0.1",
                        f"--port={server.tcp_port}",
                        f"--database={DATABASE}",
                        f"--query=INSERT INTO {table} ({', '.join(names)}) FORMAT JSONEachRow",
                    ],
                    stdin=rows,
                    check=True,
                )
            print(f"  {table}: day {day + 1} copied", file=sys.stderr, end="\r")
    print(file=sys.stderr)


def clickhouse_store(duck: DuckDBStore, server: ClickHouseServer, calls: int) -> ClickHouseStore:
    """The ClickHouse copy of `duck` in the server's kept data folder, made when missing or incomplete."""
    url = f"{server.url.rsplit('/', 1)[0]}/{DATABASE}"
    store = ClickHouseStore(url)
    counts = "SELECT (SELECT COUNT(*) FROM store.spans), (SELECT COUNT(*) FROM store.feedback)"
    scores = "SELECT COUNT(*) FROM store.scores"
    want, have = duck.query(counts).rows[0], store.query(counts).rows[0]
    if list(have) == list(want):
        if not store.query(scores).rows[0][0]:  # copies made before the scores were copied too
            _copy(duck, server, "llmlens_scores", "store.scores", SCORE_COLUMNS)
        return store
    store.close()
    if any(have):
        subprocess.run(
            [
                shutil.which("clickhouse-client") or "clickhouse-client",
                "--host=127.0.0.1",
                f"--port={server.tcp_port}",
                f"--query=DROP DATABASE IF EXISTS {DATABASE}",
            ],
            check=True,
        )
    store = ClickHouseStore(url)
    t0 = time.perf_counter()
    _copy(duck, server, "llmlens_spans", "store.spans", SPAN_COLUMNS)
    _copy(duck, server, "llmlens_feedback", "store.feedback", FEEDBACK_COLUMNS)
    _copy(duck, server, "llmlens_scores", "store.scores", SCORE_COLUMNS)
    print(f"  copied to ClickHouse in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return store


def _state(store: Store, data: Path, url: str | None = None) -> Any:
    return build_state(Settings(data_dir=data, store=url), store)


def ingest_rates(server: ClickHouseServer, calls: int) -> dict[str, float]:
    """Spans per second through `Store.write` in 50k-call batches, on a fresh store of each kind."""
    from .bench_dashboard import fill

    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        stores: dict[str, Store] = {
            "duckdb": DuckDBStore(Path(tmp) / "ingest.duckdb"),
            "clickhouse": ClickHouseStore(f"{server.url.rsplit('/', 1)[0]}/ingest_{uuid.uuid4().hex[:8]}"),
        }
        for name, store in stores.items():
            t0 = time.perf_counter()
            fill(store, calls, batch=50_000)  # type: ignore[arg-type]
            spans = store.query("SELECT COUNT(*) FROM store.spans").rows[0][0]
            out[name] = spans / (time.perf_counter() - t0)
            store.close()
    return out


def _log_lines(start: int, count: int) -> bytes:
    """`count` LLM calls as JSON log lines, in one request body."""
    models = ("gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet-20241022")
    events = [
        {
            "model": models[i % 3],
            "prompt": f"question {i}",
            "response": f"answer {i}",
            "prompt_tokens": 200 + i % 700,
            "completion_tokens": 20 + i % 300,
            "latency_ms": 300.0 + i % 5000,
            "metadata": {"user_id": f"u{i % 500}", "feature": ("chat", "search", "summary")[i % 3]},
        }
        for i in range(start, start + count)
    ]
    return json.dumps(events).encode()


def _send_all(urls: list[str], bodies: list[bytes], clients_per_server: int) -> float:
    """Seconds to have every body acknowledged, sent by `clients_per_server` clients per server at once."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    clients = [url for url in urls for _ in range(clients_per_server)]

    def send(client: int) -> None:
        with httpx.Client(base_url=clients[client], timeout=300, headers={"Content-Type": "application/json"}) as http:
            for body in bodies[client :: len(clients)]:
                while (answer := http.post("/api/v1/ingest", content=body)).status_code == 503:
                    time.sleep(float(answer.headers.get("retry-after", "1")))
                answer.raise_for_status()

    t0 = time.perf_counter()
    with ThreadPoolExecutor(len(clients)) as pool:
        list(pool.map(send, range(len(clients))))
    return time.perf_counter() - t0


def cluster_ingest_rates(calls: int, batch: int = 1000, clients_per_server: int = 2) -> dict[str, float]:
    """LLM calls per second ingested through two llmlens servers, one per node of a replicated cluster; and,
    for scale, through one llmlens server on one ClickHouse server, on the same machine."""
    from tests.cluster._cluster import NODES, LocalCluster, guide_commands, run_llmlens
    from tests.support.llmlens_server import LLMLensServer

    bodies = [_log_lines(start, min(batch, calls - start)) for start in range(0, calls, batch)]
    rates: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        cluster = LocalCluster(Path(tmp)).start()
        servers: list[LLMLensServer] = []
        try:
            migrate = guide_commands()[0]
            done = run_llmlens([cluster.localized(a) for a in migrate[1:]], cwd=Path(tmp))
            if done.returncode != 0:
                raise RuntimeError(done.stderr)
            servers = [LLMLensServer(Path(tmp) / n, args=["--store", cluster.url(n)]).start() for n in NODES]
            elapsed = _send_all([s.url for s in servers], bodies, clients_per_server)
            _check_stored(servers[1], calls)
            rates["cluster, 2 servers"] = calls / elapsed
        finally:
            for server in servers:
                server.stop()
            cluster.stop()
    with ClickHouseServer() as single, tempfile.TemporaryDirectory(prefix="bench-single-") as tmp:
        store = f"{single.url.rsplit('/', 1)[0]}/single"
        with LLMLensServer(Path(tmp), args=["--store", store]) as server:
            elapsed = _send_all([server.url], bodies, clients_per_server)
            _check_stored(server, calls)
            rates["one ClickHouse, 1 server"] = calls / elapsed
    return rates


def _check_stored(server: Any, calls: int) -> None:
    stored = server.sql("SELECT COUNT(*) AS n FROM llm_logs")[0]["n"]
    if stored != calls:
        raise RuntimeError(f"{stored} calls stored, {calls} sent")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--ingest-calls", type=int, default=0, help="also time Store.write of this many calls")
    parser.add_argument(
        "--cluster-calls", type=int, default=0, help="only time ingest of this many calls into a two-node cluster"
    )
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    records: list[dict[str, Any]] = []
    if args.cluster_calls:
        rates = cluster_ingest_rates(args.cluster_calls)
        print(f"\ningest of {args.cluster_calls:,} LLM calls (log lines, 1,000 a request, 2 clients per server)")
        for case, rate in rates.items():
            print(f"{case:<28}{rate:>10,.0f} calls/s")
            records.append({"case": f"ingest calls/s, {case}", "value": round(rate)})
        if args.json:
            args.json.write_text(json.dumps({"cluster_calls": args.cluster_calls, "results": records}, indent=2))
        return 0
    duck = duckdb_store(args.calls)
    with ClickHouseServer(root=CACHE / f"clickhouse-{args.calls}") as server, tempfile.TemporaryDirectory() as tmp:
        ch = clickhouse_store(duck, server, args.calls)
        spans = ch.query("SELECT COUNT(*) FROM store.spans").rows[0][0]
        print(
            f"\n{args.calls:,} LLM calls ({spans:,} spans) on DuckDB and on ClickHouse {'.'.join(map(str, ch.features.version))}"
        )
        print(f"server time per page, median of {args.runs} runs (ms)\n")
        duck_times = page_timings(_state(duck, Path(tmp) / "d"), duck, RANGES, args.runs)
        ch_times = page_timings(_state(ch, Path(tmp) / "c", ch.url), ch, RANGES, args.runs)
        print(f"{'page':<12}{'range':>6}{'DuckDB':>10}{'ClickHouse':>12}{'ratio':>8}")
        met = 0
        for (page, range_), (duck_ms, _) in duck_times.items():
            ch_ms = ch_times[(page, range_)][0]
            ratio = ch_ms / duck_ms if duck_ms else float("inf")  # NaN where a page failed
            met += ratio <= TARGET_RATIO  # the ratio itself, not as rounded in the table
            flag = "" if ratio <= TARGET_RATIO else ("  failed" if math.isnan(ratio) else "  > 2x")
            print(f"{page:<12}{range_:>6}{duck_ms:>10.1f}{ch_ms:>12.1f}{ratio:>8.2f}{flag}")
            records.append(
                {
                    "case": f"{page} {range_}",
                    "duckdb_ms": None if math.isnan(duck_ms) else round(duck_ms, 1),
                    "clickhouse_ms": None if math.isnan(ch_ms) else round(ch_ms, 1),
                    "ratio": None if math.isnan(ratio) else round(ratio, 2),
                }
            )
        print(f"\nwithin {TARGET_RATIO:g}x of DuckDB: {met} of {len(records)} pages")
        ch.close()
        if args.ingest_calls:
            rates = ingest_rates(server, args.ingest_calls)
            print(
                f"Store.write, {args.ingest_calls:,} calls: "
                + ", ".join(f"{k} {v:,.0f} spans/s" for k, v in rates.items())
            )
            records.append({"case": "Store.write spans/s", **{k: round(v) for k, v in rates.items()}})
    duck.close()
    if args.json:
        args.json.write_text(json.dumps({"calls": args.calls, "results": records}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
