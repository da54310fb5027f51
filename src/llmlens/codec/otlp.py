"""OTLP/HTTP bodies (protobuf or JSON, optionally gzip) -> `Span` records and GenAI log content; responses.

Pure: bytes in, model records out. The server maps `OtlpDecodeError` to 400 and
`UnsupportedContentType` to 415. Spans and log records that cannot be used are returned as
rejections, so the server can answer `partial_success` without dropping the rest of the batch.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsPartialSuccess,
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from llmlens.conventions import OtlpSpanData, span_from_otlp
from llmlens.model import Span

from ._otlp_logs import (
    LogContent,
    contents_from_records,
    merge_log_content,
    records_from_json,
    records_from_proto,
)
from ._otlp_traces import Rejection, StructureError, span_data_from_json, span_data_from_proto
from .compressed import MAX_DECOMPRESSED_BYTES, DecompressedTooLarge, InvalidCompressedBody, decompress_body
from .json_text import JsonTooDeep, loads_untrusted

__all__ = [
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

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_PROTOBUF_TYPES = frozenset({PROTOBUF, "application/protobuf", "application/vnd.google.protobuf"})


class OtlpDecodeError(ValueError):
    """The body is not a valid OTLP export (answer 400, do not retry)."""


class OtlpBodyTooLarge(OtlpDecodeError):
    """The body expands past the decompressed-size limit (answer 413)."""


class UnsupportedContentType(ValueError):
    """Neither protobuf nor JSON (answer 415)."""


@dataclass(slots=True)
class DecodedTraces:
    spans: list[Span] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)


@dataclass(slots=True)
class DecodedLogs:
    contents: list[LogContent] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)


# -- bodies -----------------------------------------------------------------------------------


def gunzip_body(body: bytes, encoding: str | None, *, max_bytes: int = MAX_DECOMPRESSED_BYTES) -> bytes | bytearray:
    """Undo `Content-Encoding` (gzip, deflate or identity) in a stream: OtlpBodyTooLarge as soon as
    the output passes `max_bytes`, OtlpDecodeError for data that is not valid in its encoding."""
    try:
        return decompress_body(body, encoding, max_bytes)
    except DecompressedTooLarge as exc:
        raise OtlpBodyTooLarge(str(exc)) from None
    except InvalidCompressedBody as exc:
        raise OtlpDecodeError(str(exc)) from None


def _media_type(content_type: str | None) -> str:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media in _PROTOBUF_TYPES:
        return PROTOBUF
    if media == JSON or (media.startswith("application/") and media.endswith("+json")):
        return JSON
    raise UnsupportedContentType(
        f"unsupported Content-Type {content_type!r}: send application/x-protobuf or application/json"
    )


def _load_json(body: bytes | bytearray) -> Any:
    try:
        return loads_untrusted(body)
    except JsonTooDeep as exc:
        raise OtlpDecodeError(f"body is not valid JSON: {exc}") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise OtlpDecodeError(f"body is not valid JSON: {exc}") from None


def _parse_proto(message: Any, body: bytes | bytearray, what: str) -> None:
    try:
        message.ParseFromString(body)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise OtlpDecodeError(f"body is not a valid protobuf {what}: {exc}") from None


# -- traces -----------------------------------------------------------------------------------


def decode_trace_request(body: bytes, content_type: str) -> ExportTraceServiceRequest:
    """Protobuf or OTLP/JSON body -> `ExportTraceServiceRequest` (ids in JSON are hex, as OTLP says)."""
    request = ExportTraceServiceRequest()
    if _media_type(content_type) == PROTOBUF:
        _parse_proto(request, body, "ExportTraceServiceRequest")
        return request
    data = _load_json(body)
    _ids_to_base64(data, ("resourceSpans", "resource_spans"), ("scopeSpans", "scope_spans"), ("spans", "spans"))
    _parse_dict(data, request)
    return request


def spans_from_trace_request(req: ExportTraceServiceRequest) -> tuple[list[Span], list[Rejection]]:
    """Every OTLP span -> `Span` through the conventions; unusable spans come back as (index, reason)."""
    data, rejected = span_data_from_proto(req)
    return _spans(data, rejected)


def decode_traces(
    body: bytes,
    content_type: str,
    content_encoding: str | None = None,
    max_decompressed_bytes: int = MAX_DECOMPRESSED_BYTES,
) -> DecodedTraces:
    """The server's entry point for POST /v1/traces. Raises OtlpDecodeError (OtlpBodyTooLarge past
    `max_decompressed_bytes`) or UnsupportedContentType."""
    media = _media_type(content_type)
    raw = gunzip_body(body, content_encoding, max_bytes=max_decompressed_bytes)
    if media == PROTOBUF:
        request = ExportTraceServiceRequest()
        _parse_proto(request, raw, "ExportTraceServiceRequest")
        data, rejected = span_data_from_proto(request)
    else:
        try:
            data, rejected = span_data_from_json(_load_json(raw))
        except StructureError as exc:
            raise OtlpDecodeError(str(exc)) from None
    spans, rejected = _spans(data, rejected)
    return DecodedTraces(spans=spans, rejected=rejected)


def _spans(data: list[OtlpSpanData], rejected: list[Rejection]) -> tuple[list[Span], list[Rejection]]:
    spans: list[Span] = []
    for item in data:
        try:
            spans.append(span_from_otlp(item))
        except Exception as exc:  # a mapping bug on one odd span must not sink the batch
            rejected.append((item.index, f"span {item.index}: could not be mapped: {exc!r}"))
    rejected.sort()
    return spans, rejected


# -- logs -------------------------------------------------------------------------------------


def decode_logs_request(body: bytes, content_type: str) -> ExportLogsServiceRequest:
    """Protobuf or OTLP/JSON body -> `ExportLogsServiceRequest`."""
    request = ExportLogsServiceRequest()
    if _media_type(content_type) == PROTOBUF:
        _parse_proto(request, body, "ExportLogsServiceRequest")
        return request
    data = _load_json(body)
    _ids_to_base64(data, ("resourceLogs", "resource_logs"), ("scopeLogs", "scope_logs"), ("logRecords", "log_records"))
    _parse_dict(data, request)
    return request


def content_from_logs_request(req: ExportLogsServiceRequest) -> list[LogContent]:
    """GenAI content log records -> one `LogContent` per span they belong to."""
    records, _ = records_from_proto(req)
    return contents_from_records(records)


def decode_logs(
    body: bytes,
    content_type: str,
    content_encoding: str | None = None,
    max_decompressed_bytes: int = MAX_DECOMPRESSED_BYTES,
) -> DecodedLogs:
    """The server's entry point for POST /v1/logs and gRPC LogsService/Export. Non-GenAI log records
    are ignored, not rejected. Raises like `decode_traces`."""
    media = _media_type(content_type)
    raw = gunzip_body(body, content_encoding, max_bytes=max_decompressed_bytes)
    if media == PROTOBUF:
        request = ExportLogsServiceRequest()
        _parse_proto(request, raw, "ExportLogsServiceRequest")
        records, rejected = records_from_proto(request)
    else:
        try:
            records, rejected = records_from_json(_load_json(raw))
        except StructureError as exc:
            raise OtlpDecodeError(str(exc)) from None
    return DecodedLogs(contents=contents_from_records(records), rejected=rejected)


# -- OTLP/JSON -> protobuf --------------------------------------------------------------------


def _parse_dict(data: Any, message: Any) -> None:
    if not isinstance(data, dict):
        raise OtlpDecodeError("OTLP/JSON body must be an object")
    try:
        json_format.ParseDict(data, message, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, AttributeError, RecursionError) as exc:
        raise OtlpDecodeError(f"body is not a valid OTLP/JSON export: {exc}") from None


def _hex_to_base64(value: Any) -> Any:
    if isinstance(value, str) and len(value) in (16, 32):
        try:
            return base64.b64encode(bytes.fromhex(value)).decode("ascii")
        except ValueError:
            return value
    return value


def _fix_ids(item: Any) -> None:
    if not isinstance(item, dict):
        return
    for key in ("traceId", "trace_id", "spanId", "span_id", "parentSpanId", "parent_span_id"):
        if key in item:
            item[key] = _hex_to_base64(item[key])
    links = item.get("links")
    if isinstance(links, list):
        for link in links:
            _fix_ids(link)


def _ids_to_base64(data: Any, *path: tuple[str, str]) -> None:
    """OTLP/JSON ids are hex; protobuf's JSON mapping wants base64 for `bytes`: convert in place."""
    level = [data]
    for camel, snake in path:
        nxt: list[Any] = []
        for obj in level:
            if isinstance(obj, dict):
                children = obj.get(camel, obj.get(snake))
                if isinstance(children, list):
                    nxt.extend(children)
        level = nxt
    for item in level:
        _fix_ids(item)


# -- responses --------------------------------------------------------------------------------


def encode_trace_response(rejected: int, message: str, content_type: str) -> bytes:
    """`ExportTraceServiceResponse` in the request's encoding; empty (full success) if none rejected."""
    response = ExportTraceServiceResponse()
    if rejected or message:
        response.partial_success.CopyFrom(ExportTracePartialSuccess(rejected_spans=rejected, error_message=message))
    return _encode(response, content_type)


def encode_logs_response(rejected: int, message: str, content_type: str) -> bytes:
    """`ExportLogsServiceResponse` in the request's encoding."""
    response = ExportLogsServiceResponse()
    if rejected or message:
        response.partial_success.CopyFrom(
            ExportLogsPartialSuccess(rejected_log_records=rejected, error_message=message)
        )
    return _encode(response, content_type)


def _encode(response: Any, content_type: str) -> bytes:
    if _media_type(content_type) == PROTOBUF:
        out: bytes = response.SerializeToString()
        return out
    return json.dumps(json_format.MessageToDict(response), separators=(",", ":")).encode()
