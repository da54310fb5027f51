"""Hostile bodies never hurt the server (issue 22, hostile bodies): compressed bodies that expand a
thousandfold, JSON nested past what a parser follows or holding numbers of thousands of digits, gRPC
log exports that are not protobuf, and timestamps at the edges of each unit. All through a real server
with auth on: refused with a 4xx naming the problem, memory bounded, and the valid events kept."""

from __future__ import annotations

import json
import socket
import struct
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest
from tests.security._support import bearer, create_key
from tests.support.llmlens_server import LLMLensServer

MIB = 1 << 20
LIMIT = 50 * MIB  # max_decompressed_bytes by default
PEAK_RSS_LIMIT_MIB = 300
TRACES = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
LOGS = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Hostile:
    srv: LLMLensServer
    key: str
    grpc_port: int

    def client(self) -> httpx.Client:
        # The gateway (/proxy/...) takes the key in its own header: Authorization is the provider's.
        headers = {**bearer(self.key), "x-llmlens-api-key": self.key}
        return httpx.Client(base_url=self.srv.url, headers=headers, timeout=120)

    def grpc_call(self, method: str, payload: bytes, **kwargs: object) -> grpc.RpcError | None:
        """One raw gRPC call (the payload is sent as it is); the error it ends with, or None."""
        options = [("grpc.max_send_message_length", -1)]
        with grpc.insecure_channel(f"127.0.0.1:{self.grpc_port}", options=options) as channel:
            call = channel.unary_unary(method, request_serializer=lambda b: b, response_deserializer=lambda b: b)
            try:
                call(payload, metadata=[("authorization", f"Bearer {self.key}")], timeout=120, **kwargs)
            except grpc.RpcError as exc:
                return exc
        return None


def _start(data: Path, env: dict[str, str] | None = None) -> tuple[LLMLensServer, int]:
    port = _free_port()
    # The gateway's upstream is a port nothing listens on: a call that got through would end in 502.
    env = {"LLMLENS_UPSTREAMS": json.dumps({"openai": f"http://127.0.0.1:{_free_port()}/v1"}), **(env or {})}
    srv = LLMLensServer(data, args=["--auth", "on", "--otlp-grpc-port", str(port)], env=env)
    return srv.start(), port


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hostile]:
    data = tmp_path_factory.mktemp("hostile")
    srv, port = _start(data)
    try:
        yield Hostile(srv, create_key(data, "default", "admin"), port)
    finally:
        srv.stop()


# -- compressed bodies ------------------------------------------------------------------------


def _deflate_repeated(prefix: bytes, block: bytes, repeats: int, suffix: bytes) -> tuple[bytes, int, int, int]:
    """Raw deflate of prefix + block * repeats + suffix without compressing it all: after a full flush
    the compressor starts afresh, so every copy of `block` compresses to the same bytes. Returns the
    data, and the CRC-32, Adler-32 and length of the uncompressed whole."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    head = compressor.compress(prefix) + compressor.flush(zlib.Z_FULL_FLUSH)
    one = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    tail = compressor.compress(suffix) + compressor.flush()
    crc, adler = zlib.crc32(prefix), zlib.adler32(prefix)
    for _ in range(repeats):
        crc, adler = zlib.crc32(block, crc), zlib.adler32(block, adler)
    crc, adler = zlib.crc32(suffix, crc), zlib.adler32(suffix, adler)
    return head + one * repeats + tail, crc, adler, len(prefix) + len(block) * repeats + len(suffix)


def _bomb(
    encoding: str, prefix: bytes = b"", block: bytes = bytes(MIB), repeats: int = 1024, suffix: bytes = b""
) -> bytes:
    """About 1 MiB that expands to 1 GiB (by default of zeros), as gzip or as (zlib-wrapped) deflate."""
    raw, crc, adler, size = _deflate_repeated(prefix, block, repeats, suffix)
    if encoding == "gzip":
        return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + raw + struct.pack("<II", crc, size & 0xFFFFFFFF)
    return b"\x78\xda" + raw + struct.pack(">I", adler)


def _peak_rss_mib(pid: int) -> dict[int, float]:
    """VmHWM (the most resident memory a process ever had) of `pid` and of each of its descendants."""
    peaks: dict[int, float] = {}
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            for task in Path(f"/proc/{current}/task").iterdir():
                todo.extend(int(child) for child in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            continue  # it ended meanwhile
        line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
        peaks[current] = int(line.split()[1]) / 1024
    return peaks


def test_compression_bombs_get_413_on_every_path_and_memory_stays_bounded(tmp_path: Path) -> None:
    """1 MiB that expands to 1 GiB once took the server to 2.2 GB (gzip), 4.3 GB (deflate) and, as a
    valid event with a 1 GiB prompt, 7.2 GB and a 200. Now every path stops at max_decompressed_bytes."""
    srv, grpc_port = _start(tmp_path)
    try:
        hostile = Hostile(srv, create_key(tmp_path, "default", "admin"), grpc_port)
        prompt_bomb = _bomb("gzip", b'[{"type": "llm", "model": "gpt-4o", "prompt": "', b"a" * MIB, 1024, b'"}]')
        bodies = {"gzip": _bomb("gzip"), "deflate": _bomb("deflate")}
        assert all(len(body) < 1.1 * MIB for body in (*bodies.values(), prompt_bomb))
        cases = [
            ("/api/v1/ingest", "application/json", "gzip", prompt_bomb),
            ("/v1/traces", "application/x-protobuf", "gzip", bodies["gzip"]),
            ("/v1/traces", "application/json", "deflate", bodies["deflate"]),
            ("/v1/logs", "application/x-protobuf", "deflate", bodies["deflate"]),
            ("/v1/logs", "application/json", "gzip", bodies["gzip"]),
            ("/proxy/openai/v1/chat/completions", "application/json", "gzip", bodies["gzip"]),
            ("/proxy/openai/v1/chat/completions", "application/json", "deflate", bodies["deflate"]),
        ]
        cases += [("/api/v1/ingest", "application/x-ndjson", enc, body) for enc, body in bodies.items()]
        with hostile.client() as c:
            for path, content_type, encoding, body in cases:
                headers = {"content-type": content_type, "content-encoding": encoding}
                r = c.post(path, content=body, headers=headers)
                assert r.status_code == 413, (path, encoding, r.status_code, r.text[:300])
                assert f"{LIMIT}-byte limit".encode() in r.content, (path, encoding, r.content[:300])
        # gRPC compression: grpc itself stops decompressing at the limit (RESOURCE_EXHAUSTED).
        zeros = bytes(LIMIT + 16 * MIB)
        for method in (TRACES, LOGS):
            error = hostile.grpc_call(method, zeros, compression=grpc.Compression.Gzip)
            assert error is not None and error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, (method, error)
        del zeros
        peaks = _peak_rss_mib(srv.proc.pid)  # type: ignore[union-attr]
        assert peaks and max(peaks.values()) < PEAK_RSS_LIMIT_MIB, peaks
        with hostile.client() as c:  # and the server still works
            assert (
                c.post("/api/v1/ingest", json=[{"type": "llm", "model": "gpt-4o", "prompt": "hi"}]).status_code == 200
            )
    finally:
        srv.stop()


def test_the_decompressed_limit_is_a_setting_and_bodies_under_it_are_read(tmp_path: Path) -> None:
    srv, grpc_port = _start(tmp_path, {"LLMLENS_MAX_DECOMPRESSED_BYTES": str(MIB)})
    try:
        hostile = Hostile(srv, create_key(tmp_path, "default", "admin"), grpc_port)
        event = {"type": "llm", "model": "gpt-4o", "prompt": "p" * (MIB // 2), "span_id": "00000000000000e1"}
        under = zlib.compress(json.dumps([event]).encode())
        over = _bomb("gzip", repeats=2)  # 2 MiB of zeros
        with hostile.client() as c:
            r = c.post("/api/v1/ingest", content=under, headers={"content-encoding": "deflate"})
            assert r.status_code == 200 and r.json()["accepted"] == 1, r.text[:300]
            r = c.post("/api/v1/ingest", content=over, headers={"content-encoding": "gzip"})
            assert r.status_code == 413 and f"{MIB}-byte limit" in r.json()["error"], r.text[:300]
        # A gRPC message may not pass the limit either: refused before it is decoded (else INVALID_ARGUMENT).
        error = hostile.grpc_call(LOGS, bytes(2 * MIB), compression=grpc.Compression.Gzip)
        assert error is not None and error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error
    finally:
        srv.stop()


def test_a_compressed_gateway_request_is_read_for_the_record(hostile: Hostile) -> None:
    """The gateway forwards the body as sent, and reads the call (model, prompt) from it decompressed."""
    request = {"model": "gpt-4o", "messages": [{"role": "user", "content": "zipped question"}]}
    with hostile.client() as c:
        r = c.post(
            "/proxy/openai/v1/chat/completions",
            content=zlib.compress(json.dumps(request).encode()),
            headers={"content-type": "application/json", "content-encoding": "deflate", "x-llmlens-user-id": "zip"},
        )
        assert r.status_code == 502, r.text[:300]  # the upstream is down; the call is recorded all the same
    rows = _wait_rows(hostile, "SELECT model, prompt FROM llm_logs WHERE user_id = 'zip'")
    assert rows == [{"model": "gpt-4o", "prompt": "zipped question"}]


# -- nesting and numbers ----------------------------------------------------------------------


def _nested(depth: int, leaf: str = '"leaf"') -> str:
    return '{"a": ' * depth + leaf + "}" * depth


def _sql(hostile: Hostile, query: str) -> list[dict[str, object]]:
    with hostile.client() as c:
        r = c.post("/api/v1/sql", json={"query": query})
        assert r.status_code == 200, r.text[:300]
        doc = r.json()
        return [dict(zip(doc["columns"], row, strict=True)) for row in doc["rows"]]


def _wait_rows(hostile: Hostile, query: str, n: int = 1) -> list[dict[str, object]]:
    deadline = time.monotonic() + 15
    while True:
        rows = _sql(hostile, query)
        if len(rows) >= n or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


def test_a_batch_keeps_its_valid_events_beside_deep_and_huge_number_events(hostile: Hostile) -> None:
    """Nesting ~900 deep and integers of hundreds or thousands of digits once failed the whole batch (500)."""
    digits = "9" * 400
    many_digits = "9" * 5000  # past the 4300 digits Python converts from text
    llm = '"type": "llm", "model": "gpt-4o", "prompt": "p"'
    events = [
        f'{{"type": "tool", "tool_name": "t", "span_id": "00000000000000a0", "args": {_nested(900)}}}',
        f'{{{llm}, "latency_ms": {digits}}}',
        f'{{{llm}, "cost_usd": {many_digits}}}',
        f'{{{llm}, "temperature": {digits}}}',
        f'{{{llm}, "prompt_tokens": {many_digits}}}',
        f'{{"type": "llm", "model": "gpt-4o", "prompt": "deep", "span_id": "00000000000000a5", "metadata": {_nested(900)}}}',
        '{"type": "llm", "model": "gpt-4o", "prompt": "valid", "span_id": "00000000000000a6", "latency_ms": 12.5}',
    ]
    with hostile.client() as c:
        r = c.post("/api/v1/ingest", content="[" + ",".join(events) + "]", headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text[:500]
    doc = r.json()
    rejected = {item["index"]: item["error"] for item in doc["rejected"]}
    assert sorted(rejected) == [1, 2, 3, 4] and doc["accepted"] == 3, doc
    for index, field in ((1, "latency_ms"), (2, "cost_usd"), (3, "temperature"), (4, "prompt_tokens")):
        assert rejected[index].startswith(field), rejected[index]
    assert "out of range" in rejected[1] and "too large" in rejected[4]
    rows = _wait_rows(
        hostile, "SELECT span_id, CAST(tool_args AS VARCHAR) AS args FROM spans WHERE span_id = '00000000000000a0'"
    )
    assert rows and "nested deeper than 64 levels" in str(rows[0]["args"]), rows
    assert str(rows[0]["args"]).count('{"a"') == 64
    rows = _sql(
        hostile,
        "SELECT prompt, metadata FROM llm_logs WHERE span_id IN ('00000000000000a5', '00000000000000a6') ORDER BY 1",
    )
    assert [row["prompt"] for row in rows] == ["deep", "valid"]
    assert "nested deeper than 64 levels" in str(rows[0]["metadata"])


@pytest.mark.parametrize("path", ["/api/v1/ingest", "/v1/traces", "/v1/logs", "/api/v1/sql"])
def test_json_nested_past_the_parser_is_a_400_naming_the_depth(hostile: Hostile, path: str) -> None:
    """A body nested 100,000 deep once made the parser raise RecursionError: a 500."""
    with hostile.client() as c:
        r = c.post(path, content="[" * 100_000 + "]" * 100_000, headers={"content-type": "application/json"})
    assert r.status_code == 400, (r.status_code, r.text[:300])
    assert "nested too deeply" in r.text and "64 levels" in r.text, r.text[:300]


def test_an_ndjson_line_nested_past_the_parser_is_rejected_alone(hostile: Hostile) -> None:
    lines = [json.dumps({"type": "llm", "model": "gpt-4o", "prompt": "kept"}), "[" * 100_000 + "]" * 100_000]
    with hostile.client() as c:
        r = c.post("/api/v1/ingest", content="\n".join(lines), headers={"content-type": "application/x-ndjson"})
    assert r.status_code == 200, r.text[:300]
    doc = r.json()
    assert doc["accepted"] == 1 and [item["index"] for item in doc["rejected"]] == [1], doc
    assert "nested too deeply" in doc["rejected"][0]["error"]


def test_otlp_spans_with_deep_json_and_infinite_numbers_are_stored(hostile: Hostile) -> None:
    """A JSON attribute nested ~900 deep and a time to first token of 1e308 s once failed the batch (500)."""
    now = time.time_ns()
    attrs = [
        {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
        {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
        {"key": "gen_ai.tool.call.arguments", "value": {"stringValue": _nested(900)}},
        {"key": "gen_ai.response.time_to_first_chunk", "value": {"doubleValue": 1e308}},
        {"key": "gen_ai.request.temperature", "value": {"doubleValue": 1e308}},
    ]
    span = {
        "traceId": "c0" * 16,
        "spanId": "00000000000000c1",
        "name": "chat gpt-4o",
        "startTimeUnixNano": str(now),
        "endTimeUnixNano": str(now + 10**9),
        "attributes": attrs,
    }
    body = {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}
    with hostile.client() as c:
        r = c.post("/v1/traces", json=body)
    assert r.status_code == 200, r.text[:300]
    rows = _wait_rows(hostile, "SELECT model, ttft_ms, temperature FROM spans WHERE span_id = '00000000000000c1'")
    assert rows == [{"model": "gpt-4o", "ttft_ms": None, "temperature": None}]


def test_grpc_logs_that_are_not_protobuf_are_invalid_argument(hostile: Hostile) -> None:
    error = hostile.grpc_call(LOGS, b"\xff\xff\xff\xff not protobuf at all")
    assert error is not None and error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
    assert "not a valid protobuf ExportLogsServiceRequest" in (error.details() or "")


# -- timestamps -------------------------------------------------------------------------------

# (sent, stored): the coarsest unit in which a number is at or before 9999-12-31 is the one it is read in.
BOUNDARIES = [
    (0, "1970-01-01T00:00:00Z"),
    (1767225600, "2026-01-01T00:00:00Z"),
    (253402300799, "9999-12-31T23:59:59Z"),  # once stored as 1978
    (253402300800, "1978-01-11T21:31:40.800000Z"),  # one past the last second: milliseconds
    (1767225600123, "2026-01-01T00:00:00.123000Z"),
    (253402300799999, "9999-12-31T23:59:59.999000Z"),
    (253402300800000, "1978-01-11T21:31:40.800000Z"),  # microseconds
    (1767225600123456, "2026-01-01T00:00:00.123456Z"),
    (253402300799999999, "9999-12-31T23:59:59.999999Z"),
    (253402300800000000, "1978-01-11T21:31:40.800000Z"),  # nanoseconds
    (1767225600123456789, "2026-01-01T00:00:00.123456Z"),
    (2**64 - 1, "2554-07-21T23:34:33.709551Z"),
    ("253402300799", "9999-12-31T23:59:59Z"),
    ("9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59.999999Z"),
]
OUT_OF_RANGE = [2**64, 1e20, -1, "1e400", "9" * 5000, "0001-01-01T00:00:00Z", "9999-12-31T23:59:59-01:00"]


def test_timestamps_are_read_in_the_right_unit_up_to_each_boundary(hostile: Hostile) -> None:
    events = [
        {"type": "llm", "model": "gpt-4o", "prompt": f"ts{i}", "span_id": f"{0xD0 + i:016x}", "timestamp": sent}
        for i, (sent, _) in enumerate(BOUNDARIES)
    ]
    with hostile.client() as c:
        r = c.post("/api/v1/ingest", json=events)
    assert r.status_code == 200 and r.json()["accepted"] == len(events), r.text[:500]
    ids = ", ".join(f"'{e['span_id']}'" for e in events)
    rows = _sql(hostile, f"SELECT span_id, timestamp FROM llm_logs WHERE span_id IN ({ids})")
    stored = {row["span_id"]: row["timestamp"] for row in rows}
    assert [stored.get(e["span_id"]) for e in events] == [expected for _, expected in BOUNDARIES]


def test_timestamps_outside_1970_to_9999_are_rejected_by_index(hostile: Hostile) -> None:
    events = [{"type": "llm", "model": "gpt-4o", "prompt": "x", "timestamp": value} for value in OUT_OF_RANGE]
    events.insert(2, {"type": "llm", "model": "gpt-4o", "prompt": "in range", "timestamp": 1767225600})
    body = json.dumps(events).replace(json.dumps("9" * 5000), "9" * 5000)  # that one as a bare number
    with hostile.client() as c:
        r = c.post("/api/v1/ingest", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text[:300]
    doc = r.json()
    assert doc["accepted"] == 1 and [item["index"] for item in doc["rejected"]] == [0, 1, 3, 4, 5, 6, 7], doc
    assert all("1970-9999" in item["error"] or "finite" in item["error"] for item in doc["rejected"]), doc
