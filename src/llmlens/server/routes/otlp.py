"""OTLP/HTTP receivers: POST /v1/traces and /v1/logs (protobuf or JSON, gzip), answered as OTLP says.

`/api/public/otel/v1/traces`, where the Langfuse SDK exports, is the same trace receiver.

A 200 carries an `Export*ServiceResponse` in the request's encoding, with `partial_success` naming
how many spans (log records) were rejected and why. Failures carry a `google.rpc.Status`: 400 for a
body that cannot be decoded, 413 above `max_body_bytes` (or, compressed, expanding past
`max_decompressed_bytes`), 415 for a content type that is neither
protobuf nor JSON, 503 + Retry-After when the writer is behind. The OTLP/gRPC receiver
(`_otlp_grpc.py`) starts and stops with this module.
"""

from __future__ import annotations

import json

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from llmlens.codec.otlp import (
    DecodedLogs,
    OtlpBodyTooLarge,
    OtlpDecodeError,
    UnsupportedContentType,
    decode_logs,
    encode_logs_response,
    encode_trace_response,
)
from llmlens.ingest import Backpressure
from llmlens.ingest.trace_context import TraceAssembler

from .._decode_pool import INLINE_BODY_BYTES, decode_pool, decode_traces_off_loop
from .._http import HttpError, read_body
from .._request import admit_ingest
from .._state import AppState, app_state
from ._otlp_common import assign_log_project, assign_project, rejection_message

SERVICE = "otlp"
LANGFUSE_TRACES_PATH = "/api/public/otel/v1/traces"
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
# google.rpc.Code values
_INVALID_ARGUMENT = 3
_UNAVAILABLE = 14


def assembler(state: AppState) -> TraceAssembler:
    """The app's one TraceAssembler (created at start-up; lazily for apps built without a lifespan)."""
    found = state.services.get(SERVICE)
    if found is None:
        max_bytes = state.settings.trace_context_memory_mb * 1024 * 1024
        found = state.services[SERVICE] = TraceAssembler(state.pipeline, state.store, max_bytes=max_bytes)
    assert isinstance(found, TraceAssembler)
    return found


def _answer_type(content_type: str) -> str:
    media = content_type.split(";", 1)[0].strip().lower()
    return JSON if media == JSON or media.endswith("+json") else PROTOBUF


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def status_response(
    status: int, message: str, media_type: str, code: int, headers: dict[str, str] | None = None
) -> Response:
    """A `google.rpc.Status` body in the request's encoding, as OTLP/HTTP asks for failures."""
    if media_type == PROTOBUF:
        text = message.encode()
        body = b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text
    else:
        body = json.dumps({"code": code, "message": message}).encode()
    return Response(body, status_code=status, media_type=media_type, headers=headers)


async def _read(request: Request, state: AppState, media: str) -> bytes:
    try:
        return await read_body(request, state.settings.max_body_bytes)
    except HttpError as exc:
        raise _Failed(status_response(exc.status, exc.message, media, _INVALID_ARGUMENT)) from None


class _Failed(Exception):
    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


async def _decode_logs(body: bytes, content_type: str, encoding: str | None, max_decompressed: int) -> DecodedLogs:
    if len(body) <= INLINE_BODY_BYTES and not encoding:
        return decode_logs(body, content_type, encoding, max_decompressed)
    # A compressed body may expand up to max_decompressed bytes: decode it off the event loop.
    return await run_in_threadpool(decode_logs, body, content_type, encoding, max_decompressed)


def _busy(exc: Backpressure, media: str) -> Response:
    retry = str(max(1, round(exc.retry_after_s)))
    return status_response(503, str(exc), media, _UNAVAILABLE, {"Retry-After": retry})


async def export_traces(request: Request) -> Response:
    state = app_state(request)
    content_type = request.headers.get("content-type", "")
    media = _answer_type(content_type)
    try:
        body = await _read(request, state, media)
        decoded, transformed = await decode_traces_off_loop(
            state, body, content_type, request.headers.get("content-encoding")
        )
    except _Failed as failed:
        return failed.response
    except UnsupportedContentType as exc:
        return status_response(415, str(exc), JSON, _INVALID_ARGUMENT)
    except OtlpBodyTooLarge as exc:
        return status_response(413, str(exc), media, _INVALID_ARGUMENT)
    except OtlpDecodeError as exc:
        return status_response(400, str(exc), media, _INVALID_ARGUMENT)
    admit_ingest(request, len(decoded.spans) + len(decoded.rejected))  # batch size and per-key rate: 413/429
    assign_project(decoded.spans, request.headers.get("x-llmlens-project"), state.settings.project)
    try:
        await assembler(state).ingest_spans(decoded.spans, transformed=transformed)
    except Backpressure as exc:
        return _busy(exc, media)
    answer = encode_trace_response(len(decoded.rejected), rejection_message(decoded.rejected), media)
    return Response(answer, media_type=media)


async def export_logs(request: Request) -> Response:
    state = app_state(request)
    content_type = request.headers.get("content-type", "")
    media = _answer_type(content_type)
    try:
        body = await _read(request, state, media)
        decoded = await _decode_logs(
            body, content_type, request.headers.get("content-encoding"), state.settings.max_decompressed_bytes
        )
    except _Failed as failed:
        return failed.response
    except UnsupportedContentType as exc:
        return status_response(415, str(exc), JSON, _INVALID_ARGUMENT)
    except OtlpBodyTooLarge as exc:
        return status_response(413, str(exc), media, _INVALID_ARGUMENT)
    except OtlpDecodeError as exc:
        return status_response(400, str(exc), media, _INVALID_ARGUMENT)
    contents = assign_log_project(decoded.contents, request.headers.get("x-llmlens-project"), state.settings.project)
    try:
        await assembler(state).ingest_log_content(contents)
    except Backpressure as exc:
        return _busy(exc, media)
    answer = encode_logs_response(len(decoded.rejected), rejection_message(decoded.rejected), media)
    return Response(answer, media_type=media)


def routes() -> list[BaseRoute]:
    return [
        Route("/v1/traces", export_traces, methods=["POST"]),
        # Where the Langfuse SDK (v3 and later) exports: the same receiver, so only LANGFUSE_HOST changes.
        Route(LANGFUSE_TRACES_PATH, export_traces, methods=["POST"]),
        Route("/v1/logs", export_logs, methods=["POST"]),
    ]


async def startup(state: AppState) -> None:
    assembler(state)
    decode_pool(state)
    if state.settings.otlp_grpc_port:
        from . import _otlp_grpc  # grpcio is imported only when the gRPC receiver is on

        await _otlp_grpc.start(state, assembler(state))


async def shutdown(state: AppState) -> None:
    decode_pool(state).close()
    if state.settings.otlp_grpc_port:
        from . import _otlp_grpc

        await _otlp_grpc.stop(state)
