"""OTLP/HTTP failures get the documented answers; the valid spans of a mixed batch are kept."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan
from tests.support.llmlens_server import LLMLensServer

PB = {"Content-Type": "application/x-protobuf"}
JS = {"Content-Type": "application/json"}
TRACE = "5b8efff798038103d269b633813fc60c"


def _status(body: bytes) -> tuple[int, str]:
    from google.rpc.status_pb2 import Status

    status = Status()
    status.ParseFromString(body)
    return status.code, status.message


def _proto_span(span_id: bytes, **attrs: Any) -> ProtoSpan:
    span = ProtoSpan(
        trace_id=bytes.fromhex(TRACE),
        span_id=span_id,
        name="chat gpt-4o",
        start_time_unix_nano=1_800_000_000_000_000_000,
        end_time_unix_nano=1_800_000_001_000_000_000,
    )
    for key, value in attrs.items():
        v = AnyValue(int_value=value) if isinstance(value, int) else AnyValue(string_value=value)
        span.attributes.append(KeyValue(key=key, value=v))
    return span


def _request(*spans: ProtoSpan) -> bytes:
    req = ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=list(spans))])])
    return req.SerializeToString()


def test_bad_protobuf_is_400_with_a_status(server: LLMLensServer) -> None:
    with server.client() as c:
        r = c.post("/v1/traces", content=b"\x0a\xff\xff\xff\xff\x0f garbage", headers=PB)
    assert r.status_code == 400
    assert r.headers["content-type"] == "application/x-protobuf"
    code, message = _status(r.content)
    assert code == 3 and "protobuf" in message


def test_truncated_gzip_is_400(server: LLMLensServer) -> None:
    body = gzip.compress(_request(_proto_span(b"\x01" * 8)))[:-12]
    with server.client() as c:
        r = c.post("/v1/traces", content=body, headers={**PB, "Content-Encoding": "gzip"})
    assert r.status_code == 400
    assert "truncated" in _status(r.content)[1] or "gzip" in _status(r.content)[1]


def test_bad_json_is_400_in_json(server: LLMLensServer) -> None:
    with server.client() as c:
        r = c.post("/v1/logs", content=b"{not json", headers=JS)
    assert r.status_code == 400
    assert r.json()["code"] == 3 and "JSON" in r.json()["message"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "", "multipart/form-data"])
@pytest.mark.parametrize("path", ["/v1/traces", "/v1/logs"])
def test_wrong_content_type_is_415(server: LLMLensServer, path: str, content_type: str) -> None:
    with server.client() as c:
        r = c.post(path, content=b"{}", headers={"Content-Type": content_type})
    assert r.status_code == 415
    assert "Content-Type" in r.json()["message"]


def test_unknown_content_encoding_is_400(server: LLMLensServer) -> None:
    with server.client() as c:
        r = c.post("/v1/traces", content=b"xx", headers={**PB, "Content-Encoding": "br"})
    assert r.status_code == 400


def test_mixed_batch_keeps_its_valid_spans_and_reports_the_rest(server: LLMLensServer) -> None:
    good = _proto_span(b"\x02" * 8, **{"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"})
    bad_id = _proto_span(b"\x03" * 3)
    zero_id = _proto_span(b"\x00" * 8)
    with server.client() as c:
        r = c.post("/v1/traces", content=_request(good, bad_id, zero_id), headers=PB)
    assert r.status_code == 200
    answer = ExportTraceServiceResponse()
    answer.ParseFromString(r.content)
    assert answer.partial_success.rejected_spans == 2
    assert "span_id" in answer.partial_success.error_message
    rows = server.sql(f"SELECT span_id, kind, model FROM spans WHERE trace_id = '{TRACE}'")
    assert rows == [{"span_id": "02" * 8, "kind": "llm", "model": "gpt-4o"}]


def test_mixed_json_batch_answers_partial_success_in_json(server: LLMLensServer) -> None:
    trace = "6" * 32
    spans = [
        {"traceId": trace, "spanId": "1" * 16, "name": "ok", "startTimeUnixNano": "1800000000000000000"},
        {"traceId": trace, "spanId": "nothex", "name": "bad", "startTimeUnixNano": "1800000000000000000"},
        {"traceId": trace, "spanId": "2" * 16, "name": "no start"},
    ]
    body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]})
    with server.client() as c:
        r = c.post("/v1/traces", content=body, headers=JS)
    assert r.status_code == 200
    assert r.json()["partialSuccess"]["rejectedSpans"] == "2"  # int64: a string in OTLP/JSON
    assert [row["span_id"] for row in server.sql(f"SELECT span_id FROM spans WHERE trace_id = '{trace}'")] == ["1" * 16]


def test_absurd_attribute_values_are_clipped_not_fatal(server: LLMLensServer) -> None:
    trace = "7" * 32
    attributes = [
        {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
        {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
        {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "99999999999999999999"}},
        {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "-5"}},
        {"key": "gen_ai.request.temperature", "value": {"doubleValue": "NaN"}},
        {"key": "huge", "value": {"stringValue": "x" * 1_200_000}},
        {"key": "deep", "value": _nested(40)},
        {"key": "session.id", "value": {"arrayValue": {"values": [{"intValue": "1"}] * 20_000}}},
    ]
    span = {
        "traceId": trace,
        "spanId": "3" * 16,
        "name": "chat",
        "startTimeUnixNano": "1800000000000000000",
        "endTimeUnixNano": "1700000000000000000",
        "attributes": attributes,
    }
    body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]})
    with server.client() as c:
        r = c.post("/v1/traces", content=body, headers=JS)
    assert r.status_code == 200, r.text
    (row,) = server.sql(
        "SELECT prompt_tokens, completion_tokens, temperature, latency_ms, session_id, attributes "
        f"FROM spans WHERE trace_id = '{trace}'"
    )
    assert (row["prompt_tokens"], row["completion_tokens"], row["temperature"], row["latency_ms"]) == (
        None,
        None,
        None,
        None,
    )
    attrs = json.loads(row["attributes"]) if isinstance(row["attributes"], str) else row["attributes"]
    assert len(attrs["huge"]) <= 1_000_000  # clipped (and maybe truncated further by the pipeline)
    assert attrs["llmlens.ingest_notes"]


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"stringValue": "leaf"}
    for _ in range(depth):
        value = {"arrayValue": {"values": [value]}}
    return value


def test_body_over_the_limit_is_413(tmp_path: Any) -> None:
    with LLMLensServer(tmp_path / "small", env={"LLMLENS_MAX_BODY_BYTES": "1000"}) as srv, srv.client() as c:
        r = c.post("/v1/traces", content=b"\x00" * 5000, headers=PB)
    assert r.status_code == 413
    assert _status(r.content)[0] == 3
