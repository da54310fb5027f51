"""Malformed OTLP bodies: clear OtlpDecodeError (or a per-span rejection), never any other exception."""

from __future__ import annotations

import gzip
import json
import zlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan

from llmlens.codec.otlp import (
    OtlpDecodeError,
    UnsupportedContentType,
    decode_logs,
    decode_logs_request,
    decode_trace_request,
    decode_traces,
    encode_logs_response,
    encode_trace_response,
    gunzip_body,
)
from llmlens.conventions import NOTES_ATTRIBUTE

PB = "application/x-protobuf"
JS = "application/json"
TRACE = "5b8efff798038103d269b633813fc60c"
SPAN = "eee19b7ec3c1b174"


def _json_span(**overrides: Any) -> dict[str, Any]:
    span = {
        "traceId": TRACE,
        "spanId": SPAN,
        "name": "chat gpt-4o",
        "kind": 3,
        "startTimeUnixNano": "1700000000000000000",
        "endTimeUnixNano": "1700000001500000000",
        "attributes": [
            {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
            {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
            {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "12"}},
        ],
    }
    span.update(overrides)
    return span


def _json_body(*spans: Any) -> bytes:
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": list(spans)}]}]}).encode()


# -- whole-request errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "fragment"),
    [
        (b"\xff\xff\xff\xff", PB, "protobuf"),
        (b"\x0a\x05\x0a\x03", PB, "protobuf"),  # truncated length-delimited field
        (b"{not json", JS, "JSON"),
        (b"\xff\xfe\x00", JS, "JSON"),
        (b"[1, 2]", JS, "body must be an object"),
        (b'{"resourceSpans": 5}', JS, "resourceSpans must be a list"),
        (b'{"resourceSpans": [{"scopeSpans": {"spans": []}}]}', JS, "scopeSpans must be a list"),
        (b"[" * 100_000 + b"]" * 100_000, JS, "JSON"),
    ],
)
def test_bad_bodies_are_a_clear_decode_error(body: bytes, content_type: str, fragment: str) -> None:
    with pytest.raises(OtlpDecodeError, match=fragment):
        decode_traces(body, content_type, None)


def test_unsupported_content_type_is_its_own_error() -> None:
    with pytest.raises(UnsupportedContentType, match="text/plain"):
        decode_traces(b"x", "text/plain", None)
    with pytest.raises(UnsupportedContentType):
        decode_trace_request(b"", "")


def test_content_type_parameters_and_empty_bodies() -> None:
    assert decode_traces(b"", "application/x-protobuf; charset=binary", None).spans == []
    assert decode_traces(b"{}", "Application/JSON; charset=utf-8", None).spans == []
    assert decode_logs(b"{}", JS, None).contents == []


def test_gzip_truncated_unsupported_and_bomb() -> None:
    body = gzip.compress(_json_body(_json_span()))
    assert len(decode_traces(body, JS, "gzip").spans) == 1
    with pytest.raises(OtlpDecodeError, match="truncated"):
        gunzip_body(body[: len(body) // 2], "gzip")
    with pytest.raises(OtlpDecodeError, match="not valid gzip"):
        gunzip_body(b"plainly not gzip", "gzip")
    with pytest.raises(OtlpDecodeError, match="unsupported Content-Encoding 'br'"):
        gunzip_body(body, "br")
    with pytest.raises(OtlpDecodeError, match="larger than"):
        gunzip_body(gzip.compress(b"\0" * 10_000), "gzip", max_bytes=1000)
    assert gunzip_body(zlib.compress(b"abc"), "deflate") == b"abc"
    raw = zlib.compressobj(wbits=-15)
    assert gunzip_body(raw.compress(b"abc") + raw.flush(), "deflate") == b"abc"
    assert gunzip_body(b"abc", None) == b"abc"


# -- per-span rejections ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "fragment"),
    [
        ({"traceId": "xyz"}, "traceId"),
        ({"traceId": "0" * 32}, "all zero"),
        ({"spanId": "abc"}, "spanId"),
        ({"spanId": 12}, "spanId"),
        ({"startTimeUnixNano": "soon"}, "startTimeUnixNano"),
        ({"startTimeUnixNano": "0"}, "startTimeUnixNano is missing"),
        ({"kind": "SPAN_KIND_WEIRD"}, "kind"),
        ({"status": "broken"}, "status"),
    ],
)
def test_one_bad_span_is_rejected_and_the_rest_kept(bad: dict[str, Any], fragment: str) -> None:
    good = _json_span()
    decoded = decode_traces(_json_body(good, _json_span(**bad), "not a span"), JS, None)
    assert [s.span_id for s in decoded.spans] == [SPAN]
    assert [i for i, _ in decoded.rejected] == [1, 2]
    assert fragment in decoded.rejected[0][1]


def test_protobuf_span_with_short_ids_is_rejected() -> None:
    good = ProtoSpan(trace_id=bytes.fromhex(TRACE), span_id=bytes.fromhex(SPAN), start_time_unix_nano=1)
    bad = ProtoSpan(trace_id=b"\1" * 5, span_id=bytes.fromhex(SPAN), start_time_unix_nano=1)
    request = ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[bad, good])])])
    decoded = decode_traces(request.SerializeToString(), PB, None)
    assert len(decoded.spans) == 1
    assert decoded.rejected == [(0, "span 0: trace_id must be 16 bytes, got 5")]


def test_json_accepts_snake_case_enum_names_numbers_and_base64_ids() -> None:
    span = {
        "trace_id": "W47/95gDgQPSabYzgT/GDA==",  # base64, as the generic protobuf JSON mapping writes it
        "span_id": SPAN.upper(),
        "parent_span_id": "",
        "name": "x",
        "kind": "SPAN_KIND_SERVER",
        "start_time_unix_nano": 1700000000000000000,
        "end_time_unix_nano": 1700000000250000000,
        "status": {"code": "STATUS_CODE_ERROR", "message": "upstream timed out"},
        "attributes": [{"key": "http.request.method", "value": {"string_value": "GET"}}],
    }
    body = json.dumps({"resource_spans": [{"scope_spans": [{"spans": [span]}]}]}).encode()
    (out,) = decode_traces(body, JS, None).spans
    assert (out.trace_id, out.span_id, out.parent_span_id) == (TRACE, SPAN, None)
    assert (out.kind, out.http_method, out.latency_ms) == ("request", "GET", 250.0)
    assert (out.status, out.error_type) == ("error", "timeout")
    # The protobuf-object path accepts the same body.
    assert len(decode_trace_request(body, JS).resource_spans[0].scope_spans[0].spans) == 1


def test_missing_status_and_kind_default() -> None:
    span = _json_span()
    del span["kind"]
    (out,) = decode_traces(_json_body(span), JS, None).spans
    assert out.status == "unset"
    assert out.kind == "llm"
    assert out.latency_ms == 1500.0
    assert out.start_us == 1_700_000_000_000_000


# -- absurd attribute values --------------------------------------------------------------------


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"stringValue": "leaf"}
    for _ in range(depth):
        value = {"arrayValue": {"values": [value]}}
    return value


def test_absurd_attribute_values_are_clipped_or_dropped_with_a_note() -> None:
    attrs = [
        {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
        {"key": "huge", "value": {"stringValue": "x" * 1_500_000}},
        {"key": "deep", "value": _nested(40)},
        {"key": "gen_ai.request.temperature", "value": {"doubleValue": "NaN"}},
        {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "-5"}},
        {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "99999999999999999999"}},
        {"key": "gen_ai.input.messages", "value": {"stringValue": "[{not json"}},
        {"key": "bad_int", "value": {"intValue": "twelve"}},
        {"key": "no_value"},
        {"value": {"stringValue": "no key"}},
    ]
    (out,) = decode_traces(_json_body(_json_span(attributes=attrs)), JS, None).spans
    assert out.model == "gpt-4o"
    assert len(out.attributes["huge"]) == 1_000_000
    depth, deep = 0, out.attributes["deep"]
    while deep:
        depth, deep = depth + 1, deep[0]
    assert depth < 16  # clipped at the depth limit
    assert out.temperature is None and "gen_ai.request.temperature" not in (out.request_params or {})
    assert out.prompt_tokens is None and out.completion_tokens is None
    assert out.input_messages is None
    notes = " | ".join(out.attributes[NOTES_ATTRIBUTE])
    for fragment in ("huge: string of 1500000 chars clipped", "deep: nested deeper", "non-finite", "twelve"):
        assert fragment in notes


def test_protobuf_absurd_values_do_not_crash() -> None:
    deep = AnyValue(string_value="leaf")
    for _ in range(40):
        deep = AnyValue(array_value={"values": [deep]})
    span = ProtoSpan(
        trace_id=bytes.fromhex(TRACE),
        span_id=bytes.fromhex(SPAN),
        start_time_unix_nano=10,
        end_time_unix_nano=5,  # ends before it starts
        attributes=[
            KeyValue(key="deep", value=deep),
            KeyValue(key="nan", value=AnyValue(double_value=float("nan"))),
            KeyValue(key="blob", value=AnyValue(bytes_value=b"\0\1")),
            KeyValue(key="llm.token_count.prompt", value=AnyValue(int_value=-3)),
        ],
    )
    request = ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[span])])])
    (out,) = decode_traces(request.SerializeToString(), PB, None).spans
    assert out.latency_ms is None
    assert out.prompt_tokens is None
    assert out.attributes["blob"] == "AAE="
    assert "nan" not in out.attributes
    assert any("before startTimeUnixNano" in n for n in out.attributes[NOTES_ATTRIBUTE])


# -- logs -------------------------------------------------------------------------------------


def test_log_records_with_bad_ids_are_rejected_and_others_ignored() -> None:
    records = [
        {"eventName": "gen_ai.user.message", "traceId": TRACE, "spanId": "zz", "body": {"stringValue": "hi"}},
        {"eventName": "app.started", "body": {"stringValue": "not genai"}},
        {
            "attributes": [{"key": "event.name", "value": {"stringValue": "gen_ai.user.message"}}],
            "traceId": TRACE,
            "spanId": SPAN,
            "body": {"kvlistValue": {"values": [{"key": "content", "value": {"stringValue": "hello"}}]}},
        },
    ]
    body = json.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": records}]}]}).encode()
    decoded = decode_logs(body, JS, None)
    assert [i for i, _ in decoded.rejected] == [0]
    (content,) = decoded.contents
    assert (content.span_id, content.prompt) == (SPAN, "user: hello")
    with pytest.raises(OtlpDecodeError):
        decode_logs(b'{"resourceLogs": {}}', JS, None)
    with pytest.raises(OtlpDecodeError):
        decode_logs_request(b"\xff\xff", PB)


# -- responses --------------------------------------------------------------------------------


def test_responses_follow_the_request_encoding() -> None:
    assert encode_trace_response(0, "", PB) == b""
    assert encode_trace_response(0, "", JS) == b"{}"
    parsed = ExportTraceServiceResponse.FromString(encode_trace_response(2, "2 spans had bad ids", PB))
    assert (parsed.partial_success.rejected_spans, parsed.partial_success.error_message) == (
        2,
        "2 spans had bad ids",
    )
    as_json = json.loads(encode_trace_response(3, "bad", JS))
    assert as_json == {"partialSuccess": {"rejectedSpans": "3", "errorMessage": "bad"}}
    logs = ExportLogsServiceResponse.FromString(encode_logs_response(1, "x", PB))
    assert logs.partial_success.rejected_log_records == 1
    assert json.loads(encode_logs_response(1, "x", JS)) == {
        "partialSuccess": {"rejectedLogRecords": "1", "errorMessage": "x"}
    }


# -- properties -------------------------------------------------------------------------------

_json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=40))
_json_values = st.recursive(
    _json_leaf,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=20), children, max_size=4)
    ),
    max_leaves=30,
)
_keys = st.sampled_from(
    [
        "resourceSpans", "scopeSpans", "spans", "traceId", "spanId", "parentSpanId", "attributes", "key",
        "value", "stringValue", "intValue", "doubleValue", "arrayValue", "kvlistValue", "values", "status",
        "code", "kind", "events", "startTimeUnixNano", "endTimeUnixNano", "resourceLogs", "scopeLogs",
        "logRecords", "eventName", "body", "gen_ai.input.messages", "llm.input_messages.0.message.role",
    ]
)  # fmt: skip
_otlp_shaped = st.recursive(
    _json_leaf,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(_keys, children, max_size=5)),
    max_leaves=40,
)


def _only_decode_errors(body: bytes, content_type: str) -> None:
    for decode in (decode_traces, decode_logs):
        try:
            decode(body, content_type, None)
        except OtlpDecodeError:
            pass
    for decode_request in (decode_trace_request, decode_logs_request):
        try:
            decode_request(body, content_type)
        except OtlpDecodeError:
            pass


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_random_bytes_only_raise_decode_errors(body: bytes) -> None:
    _only_decode_errors(body, PB)
    _only_decode_errors(body, JS)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_json_values, _otlp_shaped))
def test_random_json_only_raises_decode_errors(value: Any) -> None:
    _only_decode_errors(json.dumps(value).encode(), JS)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(
                [
                    "gen_ai.input.messages", "gen_ai.output.messages", "llm.input_messages.0.message.content",
                    "llm.output_messages.1.message.tool_calls.0.tool_call.function.arguments",
                    "llm.invocation_parameters", "gen_ai.usage.input_tokens", "llm.token_count.prompt",
                    "gen_ai.prompt.0.content", "gen_ai.completion.0.tool_calls.0.arguments", "metadata",
                    "openinference.span.kind", "gen_ai.operation.name", "http.response.status_code",
                    "traceloop.entity.input", "input.value", "output.value", "error.type", "user.id",
                ]
            ),
            _json_values,
        ),
        max_size=8,
    )
)  # fmt: skip
def test_any_attribute_values_map_without_crashing(pairs: list[tuple[str, Any]]) -> None:
    def any_value(v: Any) -> dict[str, Any]:
        if isinstance(v, bool):
            return {"boolValue": v}
        if isinstance(v, int):
            return {"intValue": str(v)}
        if isinstance(v, float):
            return {"doubleValue": v if v == v else "NaN"}
        if isinstance(v, str):
            return {"stringValue": v if len(v) % 3 else json.dumps(v)}
        if isinstance(v, list):
            return {"arrayValue": {"values": [any_value(x) for x in v]}}
        if isinstance(v, dict):
            return {"kvlistValue": {"values": [{"key": k, "value": any_value(x)} for k, x in v.items()]}}
        return {}

    attrs = [{"key": k, "value": any_value(v)} for k, v in pairs]
    decoded = decode_traces(_json_body(_json_span(attributes=attrs)), JS, None)
    assert len(decoded.spans) + len(decoded.rejected) == 1


def test_public_names_are_pinned() -> None:
    import llmlens.codec.otlp as otlp
    import llmlens.conventions as conventions

    assert otlp.__all__ == [
        "MAX_DECOMPRESSED_BYTES",
        "DecodedLogs",
        "DecodedTraces",
        "LogContent",
        "OtlpBodyTooLarge",
        "OtlpDecodeError",
        "UnsupportedContentType",
        "content_from_logs_request",
        "decode_logs",
        "decode_logs_request",
        "decode_trace_request",
        "decode_traces",
        "encode_logs_response",
        "encode_trace_response",
        "gunzip_body",
        "merge_log_content",
        "spans_from_trace_request",
    ]
    assert "span_from_otlp" in conventions.__all__ and "OtlpSpanData" in conventions.__all__


def test_a_mapping_failure_rejects_only_that_span(monkeypatch: pytest.MonkeyPatch) -> None:
    import llmlens.codec.otlp as otlp

    real = otlp.span_from_otlp

    def flaky(data: Any) -> Any:
        if data.index == 0:
            raise KeyError("boom")
        return real(data)

    monkeypatch.setattr(otlp, "span_from_otlp", flaky)
    other = _json_span(spanId="1111111111111111")
    decoded = decode_traces(_json_body(_json_span(), other), JS, None)
    assert [s.span_id for s in decoded.spans] == ["1111111111111111"]
    assert decoded.rejected[0][0] == 0 and "boom" in decoded.rejected[0][1]
