"""OTLP/HTTP ingest throughput by encoding: spans/s until committed, protobuf vs OTLP/JSON batches.

    .venv/bin/python -m benchmarks.bench_otlp_formats [--spans 40000] [--json out.json]

The same realistic 4-span LLM traces (`_otlp_payloads`: request, chain, LLM with ~1.5 KB prompt and
~0.5 KB response, tool; OpenInference attributes) are sent as 500-span batches from 4 concurrent
clients, once as protobuf and once as OTLP/JSON (hex ids, int64 as strings), each to a fresh
`llmlens serve`. llmlens answers after the group commit, so the clock stops at the last answer:
every span counted is durable, and a COUNT(*) checks that all of them are stored. The trace
assembler (context inheritance, duplicate detection, message ids) runs as in production.
"""

from __future__ import annotations

import argparse
import base64
import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from tests.support.llmlens_server import LLMLensServer

from ._otlp_payloads import build_batches

SPANS_PER_BATCH = 500
CLIENTS = 4


def post_all(url: str, bodies: list[bytes], content_type: str) -> None:
    """Send every body from CLIENTS threads (retrying on 503), returning after the last answer."""
    errors: list[str] = []

    def loop(mine: list[bytes]) -> None:
        with httpx.Client(base_url=url, timeout=300) as client:
            for body in mine:
                while True:
                    r = client.post("/v1/traces", content=body, headers={"Content-Type": content_type})
                    if r.status_code == 503:
                        time.sleep(0.2)
                        continue
                    if r.status_code != 200 or b"rejected" in r.content:
                        errors.append(f"{r.status_code} {r.text[:200]}")
                    break

    threads = [threading.Thread(target=loop, args=(bodies[i::CLIENTS],)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"{len(errors)} failed exports, first: {errors[0]}")


def to_otlp_json(body: bytes) -> bytes:
    """A protobuf export as the OTLP/JSON exporter sends it: camelCase, hex ids, int64 as strings."""
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    doc = json_format.MessageToDict(request)
    for resource_spans in doc.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if span.get(key):
                        span[key] = base64.b64decode(span[key]).hex()
    return json.dumps(doc, separators=(",", ":")).encode()


def measure(bodies: list[bytes], n_spans: int, content_type: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp, LLMLensServer(Path(tmp)) as srv:
        t0 = time.perf_counter()
        post_all(srv.url, bodies, content_type=content_type)
        elapsed = time.perf_counter() - t0
        stored = int(srv.sql("SELECT COUNT(*) AS n FROM spans")[0]["n"])
    assert stored == n_spans, (stored, n_spans)
    return {"spans_per_s": n_spans / elapsed, "elapsed_s": elapsed, "mib_sent": sum(map(len, bodies)) / 2**20}


def run(n_spans: int) -> list[dict[str, Any]]:
    protobuf = build_batches(n_spans, SPANS_PER_BATCH)
    total = sum(len(ExportTraceServiceRequest.FromString(b).resource_spans[0].scope_spans[0].spans) for b in protobuf)
    rows = []
    for label, bodies, content_type in (
        ("protobuf", protobuf, "application/x-protobuf"),
        ("OTLP/JSON", [to_otlp_json(b) for b in protobuf], "application/json"),
    ):
        result = measure(bodies, total, content_type)
        rows.append(
            {
                "benchmark": "llmlens OTLP ingest by encoding",
                "case": f"{label}, {total:,} spans, {SPANS_PER_BATCH}-span batches, 4 clients",
                "value": round(result["spans_per_s"]),
                "unit": "spans/s until committed",
                "elapsed_s": round(result["elapsed_s"], 2),
                "mib_sent": round(result["mib_sent"], 1),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=40_000)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    rows = run(args.spans)
    for row in rows:
        print(f"{row['case']:<60} {row['value']:>10,} {row['unit']}  ({row['elapsed_s']} s, {row['mib_sent']} MiB)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
