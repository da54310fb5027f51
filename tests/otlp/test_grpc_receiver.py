"""The OTLP/gRPC receiver: export, partial success, and API keys when auth is on (as over HTTP)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from tests.otlp._workers import warm_decode_workers
from tests.security._support import bearer, create_key
from tests.support.llmlens_server import LLMLensServer
from tests.support.prices import CUSTOM_RATES, assert_cost, write_price_file

NOW_NS = time.time_ns()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _request(trace: str, *span_ids: bytes, project: str | None = None) -> ExportTraceServiceRequest:
    attrs = [
        KeyValue(key="gen_ai.operation.name", value=AnyValue(string_value="chat")),
        KeyValue(key="gen_ai.request.model", value=AnyValue(string_value="gpt-4o")),
        KeyValue(key="gen_ai.usage.input_tokens", value=AnyValue(int_value=10)),
        KeyValue(key="gen_ai.usage.output_tokens", value=AnyValue(int_value=5)),
        KeyValue(key="gen_ai.usage.cache_read.input_tokens", value=AnyValue(int_value=4)),
    ]
    spans = [
        Span(
            trace_id=bytes.fromhex(trace),
            span_id=sid,
            name="chat gpt-4o",
            start_time_unix_nano=NOW_NS,
            end_time_unix_nano=NOW_NS + 10**9,
            attributes=attrs,
        )
        for sid in span_ids
    ]
    resource = Resource()
    if project:
        resource.attributes.append(KeyValue(key="llmlens.project", value=AnyValue(string_value=project)))
    return ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(resource=resource, scope_spans=[ScopeSpans(spans=spans)])]
    )


def _wait_rows(srv: LLMLensServer, query: str, n: int, **kwargs: object) -> list[dict[str, object]]:
    deadline = time.monotonic() + 10
    while True:
        rows = srv.sql(query, **kwargs)  # type: ignore[arg-type]
        if len(rows) >= n or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


@pytest.fixture(scope="module")
def grpc_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LLMLensServer, int]]:
    port = _free_port()
    data = tmp_path_factory.mktemp("grpc")
    args = ["--otlp-grpc-port", str(port), "--price-file", str(write_price_file(data))]
    with LLMLensServer(data, args=args) as srv:
        yield srv, port


def test_export_keeps_valid_spans_and_reports_partial_success(grpc_server: tuple[LLMLensServer, int]) -> None:
    srv, port = grpc_server
    trace = "ab" * 16
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        answer = stub.Export(_request(trace, b"\x01" * 8, b"\x02" * 3), timeout=20)
    assert answer.partial_success.rejected_spans == 1
    rows = _wait_rows(srv, f"SELECT span_id, cost_usd, cost_source FROM spans WHERE trace_id = '{trace}'", 1)
    assert [r["span_id"] for r in rows] == ["01" * 8]
    # 10 input tokens of which 4 read from the cache, 5 output tokens, each at its own rate.
    assert_cost(rows[0]["cost_usd"], CUSTOM_RATES["gpt-4o"].openai_cost(10, 5, cached_tokens=4))
    assert rows[0]["cost_source"] == "custom"


def test_large_export_is_decoded_by_a_worker_and_redacted(tmp_path: Path) -> None:
    # ~300 KB: decoded in a decode worker process, whose spans arrive already redacted.
    port = _free_port()
    trace = "ef" * 16
    request = _request(trace, *(i.to_bytes(8, "big") for i in range(1, 301)))
    secret = "sk-proj-abcdefghijklmnopqrstuvwx1234"
    for span in request.resource_spans[0].scope_spans[0].spans:
        span.attributes.append(
            KeyValue(key="gen_ai.prompt.0.content", value=AnyValue(string_value=f"key {secret} " + "x" * 900))
        )
    assert request.ByteSize() > 64 * 1024
    env = {"LLMLENS_DECODE_WORKERS": "1"}
    with LLMLensServer(tmp_path, args=["--otlp-grpc-port", str(port)], env=env) as srv:
        warm_decode_workers(srv, request.SerializeToString())
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            answer = trace_service_pb2_grpc.TraceServiceStub(channel).Export(request, timeout=30)
            assert answer.partial_success.rejected_spans == 0
            with pytest.raises(grpc.RpcError) as failed:
                channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")(
                    b"\xff\xff not protobuf", timeout=10
                )
        assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        rows = srv.sql(f"SELECT count(*) AS n, count(prompt) AS prompts FROM spans WHERE trace_id = '{trace}'")
        assert rows == [{"n": 300, "prompts": 300}]
        leaked = srv.sql(
            f"SELECT count(*) AS n FROM spans WHERE prompt LIKE '%{secret}%' OR attributes::VARCHAR LIKE '%{secret}%'"
        )
        assert leaked == [{"n": 0}]


def test_logs_export_fills_the_span_content(grpc_server: tuple[LLMLensServer, int]) -> None:
    srv, port = grpc_server
    trace = "cd" * 16
    record = LogRecord(
        trace_id=bytes.fromhex(trace),
        span_id=b"\x05" * 8,
        event_name="gen_ai.choice",
        body=AnyValue(
            kvlist_value={
                "values": [
                    KeyValue(key="index", value=AnyValue(int_value=0)),
                    KeyValue(key="finish_reason", value=AnyValue(string_value="stop")),
                    KeyValue(
                        key="message",
                        value=AnyValue(
                            kvlist_value={"values": [KeyValue(key="content", value=AnyValue(string_value="hi there"))]}
                        ),
                    ),
                ]
            }
        ),
    )
    logs = ExportLogsServiceRequest(resource_logs=[ResourceLogs(scope_logs=[ScopeLogs(log_records=[record])])])
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        trace_service_pb2_grpc.TraceServiceStub(channel).Export(_request(trace, b"\x05" * 8), timeout=20)
        logs_service_pb2_grpc.LogsServiceStub(channel).Export(logs, timeout=20)
    rows = _wait_rows(srv, f"SELECT response FROM spans WHERE trace_id = '{trace}' AND response IS NOT NULL", 1)
    assert rows == [{"response": "hi there"}]


def test_with_auth_on_a_key_is_needed_and_decides_the_project(tmp_path: Path) -> None:
    data = tmp_path / "secured"
    ingest_key = create_key(data, "alpha", "ingest")
    read_key = create_key(data, "alpha", "read")
    port = _free_port()
    with LLMLensServer(data, args=["--auth", "on", "--otlp-grpc-port", str(port)]) as srv:
        trace = "ef" * 16
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = trace_service_pb2_grpc.TraceServiceStub(channel)
            with pytest.raises(grpc.RpcError) as missing:
                stub.Export(_request(trace, b"\x07" * 8), timeout=20)
            assert missing.value.code() == grpc.StatusCode.UNAUTHENTICATED
            with pytest.raises(grpc.RpcError) as reader:
                stub.Export(
                    _request(trace, b"\x07" * 8), metadata=[("authorization", f"Bearer {read_key}")], timeout=20
                )
            assert reader.value.code() == grpc.StatusCode.PERMISSION_DENIED
            metadata = [("authorization", f"Bearer {ingest_key}")]
            stub.Export(_request(trace, b"\x07" * 8, project="beta"), metadata=metadata, timeout=20)
        query = f"SELECT project FROM spans WHERE trace_id = '{trace}'"
        assert _wait_rows(srv, query, 1, headers=bearer(read_key)) == [{"project": "alpha"}]
