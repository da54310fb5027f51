"""Gateway overhead: the same chat requests direct to a fake provider and through llmlens, streamed and not.

    .venv/bin/python benchmarks/bench_gateway.py [--requests 1500] [--concurrency 50] [--json out.json]

Starts a lean stand-in upstream (raw asyncio, OpenAI chat-completion SSE frames or one JSON answer, one
process) and an `llmlens serve` as subprocesses, then runs `--concurrency` workers that each alternate a
direct and a proxied request over their own keep-alive connections, so both paths see the same load at
the same time; every other round is non-streamed (`--no-json` leaves those out). The upstream and the load
generator are raw asyncio so that, on a small machine, what is measured is the gateway rather than the
measuring tools. Prints p50/p99 of total latency and of time to the first content chunk per path (streamed),
of total latency (non-streamed), the gateway's added time, the gateway process's CPU per proxied request
(event loop and span recording together, also split by thread), and the load average before and after: on a
shared machine other processes' load shows up as added latency, so read the figures beside it (the CPU
figures move much less with load than the latencies).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.llmlens_server import LLMLensServer  # noqa: E402


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _frames(chunks: int) -> tuple[bytes, list[bytes], bytes]:
    envelope = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o-mini-2024-07-18",
    }

    def frame(payload: dict[str, Any]) -> bytes:
        data = b"data: " + json.dumps(envelope | payload, separators=(",", ":")).encode() + b"\n\n"
        return b"%x\r\n%s\r\n" % (len(data), data)

    first = frame({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]})
    words = [
        frame({"choices": [{"index": 0, "delta": {"content": "word "}, "finish_reason": None}]}) for _ in range(chunks)
    ]
    usage = {"prompt_tokens": 5, "completion_tokens": chunks, "total_tokens": 5 + chunks}
    last = frame({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}) + frame(
        {"choices": [], "usage": usage}
    )
    done = b"data: [DONE]\n\n"
    last += b"%x\r\n%s\r\n0\r\n\r\n" % (len(done), done)
    return first, words, last


def _completion(chunks: int) -> bytes:
    """The non-streamed answer: the same completion as one JSON body."""
    doc = {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "word " * chunks}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": chunks, "total_tokens": 5 + chunks},
    }
    body = json.dumps(doc, separators=(",", ":")).encode()
    head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
    head += f"content-length: {len(body)}\r\nx-request-id: req_bench\r\n\r\n"
    return head.encode() + body


async def _serve_upstream(port: int, ttft_s: float, chunk_s: float, chunks: int) -> None:
    """A stand-in OpenAI upstream: every POST gets the same chat completion, streamed when asked (after the
    same generation time either way)."""
    first, words, last = _frames(chunks)
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\ntransfer-encoding: chunked\r\nx-request-id: req_bench\r\n\r\n"
    whole = _completion(chunks)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in request.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length)
                if b'"stream": true' not in body:
                    await asyncio.sleep(ttft_s + chunks * chunk_s)
                    writer.write(whole)
                    continue
                writer.write(head + first)
                await asyncio.sleep(ttft_s)
                for word in words:
                    writer.write(word)
                    await asyncio.sleep(chunk_s)
                writer.write(last)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


def _start_upstream(port: int, ttft_s: float, chunk_s: float, chunks: int) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, __file__, "--serve-upstream", str(port), "--ttft", str(ttft_s)]
    cmd += ["--chunk-delay", str(chunk_s), "--chunks", str(chunks)]
    proc = subprocess.Popen(cmd, cwd=REPO)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            import socket

            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the stand-in upstream did not start")


class _Connection:
    """One keep-alive HTTP/1.1 connection of the load generator (raw asyncio: cheap, so it measures little
    of itself)."""

    def __init__(self, port: int, path: str, headers: dict[str, str], body: bytes) -> None:
        self.port = port
        lines = [f"POST {path} HTTP/1.1", f"host: 127.0.0.1:{port}", f"content-length: {len(body)}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.request = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def call(self) -> tuple[float, float]:
        """(total seconds, seconds to the first content chunk) of one chat completion; not streamed (a
        Content-Length answer), the first content comes with the whole answer."""
        if self.reader is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        reader, writer = self.reader, self.writer
        assert writer is not None
        started = time.perf_counter()
        first = None
        writer.write(self.request)
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"answered {head[:200]!r}")
        for line in head.lower().split(b"\r\n"):
            if line.startswith(b"content-length:"):
                await reader.readexactly(int(line.split(b":", 1)[1]))
                ended = time.perf_counter()
                return ended - started, ended - started
        while True:
            size = int((await reader.readuntil(b"\r\n"))[:-2], 16)
            data = await reader.readexactly(size + 2)
            if size == 0:
                break
            if first is None and b'"content":"word' in data:
                first = time.perf_counter()
        ended = time.perf_counter()
        return ended - started, (first or ended) - started


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _thread_cpu_seconds(pid: int) -> dict[int, float]:
    """User + system CPU time of each thread of a process so far (Linux), by thread id."""
    out: dict[int, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended
            continue
        out[int(task.name)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


PATHS = ("direct", "gateway", "direct-json", "gateway-json")


async def _run(
    upstream_port: int,
    gateway_port: int,
    requests: int,
    concurrency: int,
    spread_s: float = 0.0,
    *,
    with_json: bool = True,
) -> dict[str, list[tuple[float, float]]]:
    """Each worker starts `index * spread_s / concurrency` late: with `spread_s` the length of a stream,
    the streams' chunks arrive spread out in time, as from independent clients; with 0 they arrive in
    bursts (every stream's chunk at the same tick), the worst case for any relay. `requests` counts
    streamed requests per path; `with_json` adds as many non-streamed ones per path."""
    doc: dict[str, Any] = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "bench"}]}
    streamed = json.dumps(doc | {"stream": True, "stream_options": {"include_usage": True}}).encode()
    whole = json.dumps(doc | {"stream": False}).encode()
    headers = {"authorization": "Bearer sk-bench", "content-type": "application/json"}
    gateway_headers = headers | {"x-llmlens-user-id": "bench-user", "x-llmlens-feature": "bench"}
    results: dict[str, list[tuple[float, float]]] = {path: [] for path in PATHS}
    remaining = {"": requests, "-json": requests if with_json else 0}

    async def worker(index: int) -> None:
        await asyncio.sleep(index * spread_s / concurrency)
        connections = {
            "direct": _Connection(upstream_port, "/v1/chat/completions", headers, streamed),
            "gateway": _Connection(gateway_port, "/proxy/openai/v1/chat/completions", gateway_headers, streamed),
            "direct-json": _Connection(upstream_port, "/v1/chat/completions", headers, whole),
            "gateway-json": _Connection(gateway_port, "/proxy/openai/v1/chat/completions", gateway_headers, whole),
        }
        order = ("direct", "gateway") if index % 2 else ("gateway", "direct")
        rounds = 0
        while remaining[""] > 0 or remaining["-json"] > 0:
            kind = "-json" if (rounds % 2 and remaining["-json"] > 0) or remaining[""] <= 0 else ""
            rounds += 1
            remaining[kind] -= 1
            for path in order:
                results[path + kind].append(await connections[path + kind].call())
        for connection in connections.values():
            if connection.writer is not None:
                connection.writer.close()

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=1500, help="requests per path (default 1500)")
    parser.add_argument("--concurrency", type=int, default=50, help="concurrent streams (default 50)")
    parser.add_argument("--ttft", type=float, default=0.2, help="upstream's time to first token (s, default 0.2)")
    parser.add_argument(
        "--chunk-delay", type=float, default=0.02, help="upstream's gap between chunks (s, default 0.02)"
    )
    parser.add_argument("--chunks", type=int, default=20, help="content chunks per stream (default 20)")
    parser.add_argument(
        "--synchronized",
        action="store_true",
        help="start every worker at once, so all streams' chunks arrive in bursts (default: starts spread over one stream's length)",
    )
    parser.add_argument(
        "--no-json", action="store_true", help="streamed requests only (default: as many non-streamed ones too)"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--serve-upstream", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_upstream:
        asyncio.run(_serve_upstream(args.serve_upstream, args.ttft, args.chunk_delay, args.chunks))
        return 0

    fake_port = _free_port()
    fake = _start_upstream(fake_port, args.ttft, args.chunk_delay, args.chunks)
    try:
        with LLMLensServer(
            args=["--upstream", f"openai=http://127.0.0.1:{fake_port}/v1", "--log-level", "warning"]
        ) as srv:
            assert srv.port is not None
            with_json = not args.no_json
            warm_up = 2 * args.concurrency
            asyncio.run(_run(fake_port, srv.port, warm_up, args.concurrency, with_json=with_json))
            assert srv.proc is not None
            srv_pid = srv.proc.pid  # the main thread's id: uvicorn's event loop runs there
            load_before = os.getloadavg()[0]
            cpu_before, threads_before = _cpu_seconds(srv.proc.pid), _thread_cpu_seconds(srv.proc.pid)
            started = time.perf_counter()
            spread_s = 0.0 if args.synchronized else args.ttft + args.chunks * args.chunk_delay
            results = asyncio.run(
                _run(fake_port, srv.port, args.requests, args.concurrency, spread_s, with_json=with_json)
            )
            elapsed = time.perf_counter() - started
            proxied = len(results["gateway"]) + len(results["gateway-json"])
            expected = proxied + warm_up * (2 if with_json else 1)
            deadline = time.monotonic() + 30
            while True:  # spans are recorded in batches after the answers: wait for the last batch
                recorded = srv.sql("SELECT count(*) AS n FROM llm_logs WHERE feature = 'bench'")[0]["n"]
                if recorded >= expected or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            # Measured once the last spans are stored, so their recording counts too.
            gateway_cpu = _cpu_seconds(srv.proc.pid) - cpu_before
            threads_cpu = _thread_cpu_seconds(srv.proc.pid)
    finally:
        fake.terminate()
        fake.wait(10)

    report: dict[str, Any] = {
        "requests_per_path": args.requests,
        "concurrency": args.concurrency,
        "fake_ttft_s": args.ttft,
        "fake_chunk_delay_s": args.chunk_delay,
        "synchronized_starts": args.synchronized,
        "seconds": round(elapsed, 2),
        "cpus": os.cpu_count(),
        "recorded_spans": recorded,
        "gateway_cpu_ms_per_request": round(gateway_cpu * 1000 / proxied, 3),
        "gateway_event_loop_cpu_ms_per_request": round(
            (threads_cpu.get(srv_pid, 0.0) - threads_before.get(srv_pid, 0.0)) * 1000 / proxied, 3
        ),
        "load_average_1m_before": load_before,
        "load_average_1m": os.getloadavg()[0],
    }
    rows = []
    metrics = [("total", "", 0), ("ttft", "", 1)] + ([("json", "-json", 0)] if with_json else [])
    for metric, kind, position in metrics:
        for q, name in ((0.5, "p50"), (0.99, "p99")):
            direct = _pct([r[position] for r in results["direct" + kind]], q) * 1000
            gateway = _pct([r[position] for r in results["gateway" + kind]], q) * 1000
            report[f"{metric}_{name}_direct_ms"] = round(direct, 3)
            report[f"{metric}_{name}_gateway_ms"] = round(gateway, 3)
            report[f"{metric}_{name}_added_ms"] = round(gateway - direct, 3)
            rows.append((f"{metric} {name}", direct, gateway, gateway - direct))
    starts = "synchronized starts (bursts)" if args.synchronized else "starts spread over a stream"
    json_note = f" and {len(results['gateway-json'])} non-streamed" if with_json else ""
    print(
        f"{args.requests} streamed{json_note} requests per path, {args.concurrency} concurrent ({starts}), "
        f"{elapsed:.1f} s; {recorded} gateway spans recorded"
    )
    print(
        f"gateway CPU {report['gateway_cpu_ms_per_request']:.2f} ms per proxied request "
        f"({report['gateway_event_loop_cpu_ms_per_request']:.2f} ms of it on the event loop); "
        f"load average (1 min) {load_before:.2f} before, {report['load_average_1m']:.2f} after, on {os.cpu_count()} CPUs"
    )
    print("total: streamed, whole answer; ttft: streamed, first content chunk; json: not streamed")
    print(f"{'metric':<12}{'direct ms':>12}{'gateway ms':>12}{'added ms':>12}")
    for name, direct, gateway, added in rows:
        print(f"{name:<12}{direct:>12.3f}{gateway:>12.3f}{added:>12.3f}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
