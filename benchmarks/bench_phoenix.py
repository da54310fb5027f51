"""llmlens beside Arize Phoenix on this machine, in the same run, on the same OTLP payloads.

    .venv/bin/python -m benchmarks.bench_phoenix [--quick] [--spans 20000] [--budget 90]

Phoenix is installed into its own venv (benchmarks/.cache/phoenix-venv, gitignored) on first use and
started with `phoenix serve` on loopback with its SQLite default in a temporary working directory.
Both servers get the same protobuf batches of 4-span LLM traces from 4 concurrent clients; the clock
stops when each system's own store holds every span (llmlens: COUNT(*) over its spans; Phoenix:
COUNT(*) of its SQLite `spans` table). Phoenix writes far slower than it accepts, so its run is
bounded: after `--budget` seconds the spans it has stored so far give its rate (stored / elapsed).
"""

from __future__ import annotations

import argparse
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from ._otlp_payloads import build_batches
from ._proc import PeakRss, dir_bytes, rss_mib
from .bench_otlp import measure_llmlens, post_all

VENV = Path(__file__).parent / ".cache" / "phoenix-venv"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_phoenix() -> Path:
    exe = VENV / "bin" / "phoenix"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", "arize-phoenix"], check=True)
    return exe


def _phoenix_count(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
            return int(con.execute("SELECT COUNT(*) FROM spans").fetchone()[0])
    except sqlite3.Error:
        return 0


def measure_phoenix(bodies: list[bytes], n_spans: int, budget_s: float) -> dict[str, Any]:
    exe = ensure_phoenix()
    version = subprocess.run(
        [str(VENV / "bin" / "python"), "-c", "import phoenix; print(phoenix.__version__)"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        port = _free_port()
        env = {
            **os.environ,
            "PHOENIX_WORKING_DIR": str(work),
            "PHOENIX_PORT": str(port),
            "PHOENIX_HOST": "127.0.0.1",
            "PHOENIX_GRPC_PORT": str(_free_port()),
            "PHOENIX_TELEMETRY_ENABLED": "false",
        }
        log = open(work / "phoenix.log", "wb")  # noqa: SIM115 - the child's output
        t0 = time.perf_counter()
        proc = subprocess.Popen([str(exe), "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"phoenix exited: {(work / 'phoenix.log').read_text()[-2000:]}")
                try:
                    if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.perf_counter() - t0 > 120:
                    raise RuntimeError("phoenix did not start in 120 s")
                time.sleep(0.1)
            startup_s = time.perf_counter() - t0
            time.sleep(2)
            idle = rss_mib(proc.pid)
            db = work / "phoenix.db"
            with PeakRss(proc.pid) as peak:
                t1 = time.perf_counter()
                accept_s = post_all(url, bodies)
                while _phoenix_count(db) < n_spans and time.perf_counter() - t1 < budget_s:
                    time.sleep(0.5)
                elapsed = time.perf_counter() - t1
                stored = _phoenix_count(db)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()
        disk = dir_bytes(work) - (work / "phoenix.log").stat().st_size
    return {
        "version": version,
        "startup_s": startup_s,
        "idle_rss_mib": idle,
        "peak_rss_mib": peak.peak,
        "accepted_per_s": n_spans / accept_s,
        "spans_per_s": stored / elapsed,
        "stored": stored,
        "elapsed_s": elapsed,
        "complete": stored >= n_spans,
        "bytes_per_span": disk / max(stored, 1),
    }


def _row(case: str, ours: float, theirs: float, unit: str, better: str, target: str | None = None) -> dict[str, Any]:
    ratio = (ours / theirs if better == "higher" else theirs / ours) if ours and theirs else None
    row: dict[str, Any] = {
        "benchmark": "llmlens vs Phoenix",
        "case": case,
        "value": round(ours, 2),
        "unit": unit,
        "peer": "Phoenix",
        "peer_value": round(theirs, 2),
        "ratio": round(ratio, 1) if ratio else None,
    }
    if target:
        row["target"] = target
    return row


def run(quick: bool = False, spans: int | None = None, budget_s: float | None = None) -> list[dict[str, Any]]:
    n = spans or (4_000 if quick else 20_000)
    budget = budget_s or (30.0 if quick else 90.0)
    bodies = build_batches(n, 1000)
    ours = measure_llmlens(bodies, n)
    theirs = measure_phoenix(bodies, n, budget)
    how = "all" if theirs["complete"] else f"{theirs['stored']:,} in the {budget:g} s budget"
    speed = _row(
        f"{n:,} spans to queryable (Phoenix {theirs['version']}: {how})",
        ours["spans_per_s"],
        theirs["spans_per_s"],
        "spans/s",
        "higher",
        ">= 100x",
    )
    speed["met"] = bool(speed["ratio"] and speed["ratio"] >= 100)
    return [
        speed,
        _row(
            "Phoenix accepted over HTTP (not yet stored)",
            ours["spans_per_s"],
            theirs["accepted_per_s"],
            "spans/s",
            "higher",
        ),
        _row("server start to ready", ours["startup_s"], theirs["startup_s"], "s", "lower"),
        _row("idle RSS", ours["idle_rss_mib"], theirs["idle_rss_mib"], "MiB", "lower"),
        _row("peak RSS under ingest", ours["peak_rss_mib"], theirs["peak_rss_mib"], "MiB", "lower"),
        _row("disk per stored span (with text)", ours["bytes_per_span"], theirs["bytes_per_span"], "bytes", "lower"),
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--spans", type=int)
    parser.add_argument("--budget", type=float)
    a = parser.parse_args()
    for row in run(a.quick, a.spans, a.budget):
        print(row)
