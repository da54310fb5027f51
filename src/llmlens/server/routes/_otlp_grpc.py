"""The OTLP/gRPC receiver (traces and logs) on `otlp_grpc_port`, feeding the same TraceAssembler.

Many SDKs export over gRPC by default (port 4317). It runs on the server's event loop (grpc.aio), so
batches reach the pipeline exactly as OTLP/HTTP ones do; trace requests are decoded from their bytes
like OTLP/HTTP bodies (in a decode worker process when large), log requests in a thread; a request
that is not protobuf is refused with INVALID_ARGUMENT and the decoder's message. Messages may be at
most `max_decompressed_bytes`, compressed (grpc-encoding) or not: grpc refuses larger ones with
RESOURCE_EXHAUSTED while decompressing, before they reach Python. With
auth on, a call needs an ingest API key in its metadata (`authorization: Bearer KEY` or
`x-llmlens-api-key`) and writes only to that key's project, as over HTTP.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import grpc
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsPartialSuccess,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)

from llmlens.auth import Principal, StateUnavailable
from llmlens.codec.otlp import PROTOBUF, OtlpDecodeError, decode_logs
from llmlens.ingest import Backpressure
from llmlens.ingest.trace_context import TraceAssembler
from llmlens.store import StoreUnavailable, current_project

from .._decode_pool import decode_traces_off_loop
from .._security import SERVICE as SECURITY_SERVICE
from .._state import AppState
from ._otlp_common import assign_log_project, assign_project, rejection_message

logger = logging.getLogger("llmlens.server.otlp")

SERVICE = "otlp_grpc"
_TRACE_SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
_LOGS_SERVICE = "opentelemetry.proto.collector.logs.v1.LogsService"
_PROJECT_HEADER = "x-llmlens-project"


def _metadata(context: grpc.aio.ServicerContext[Any, Any]) -> dict[str, str]:
    return {k.lower(): v for k, v in context.invocation_metadata() or () if isinstance(v, str)}


async def _authorize(state: AppState, context: grpc.aio.ServicerContext[Any, Any]) -> str | None:
    """With auth on, the caller needs an ingest API key (as over HTTP); returns its project."""
    security = state.services.get(SECURITY_SERVICE)
    if security is None or not security.enabled:
        return None
    metadata = _metadata(context)
    secret = metadata.get("x-llmlens-api-key")
    scheme, _, credential = metadata.get("authorization", "").partition(" ")
    if not secret and scheme.lower() == "bearer":
        secret = credential.strip()
    if not secret:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, "an API key is required: authorization: Bearer KEY")
    try:
        key = await asyncio.to_thread(security.auth.key_for_secret, secret)
    except StateUnavailable as exc:
        await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
    if key is None:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, "unknown or revoked API key")
    if not Principal(kind="key", name=key.id, role=key.role, project=key.project).can("ingest"):
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, f"the {key.role!r} role cannot send data")
    project: str = key.project
    return project


class _TraceService:
    """TraceService/Export taking the serialized request: decoded like an OTLP/HTTP protobuf body
    (in a decode worker process when large), not by grpc on the event loop."""

    def __init__(self, state: AppState, assembler: TraceAssembler) -> None:
        self._state = state
        self._assembler = assembler

    def handler(self) -> grpc.GenericRpcHandler:
        export = grpc.unary_unary_rpc_method_handler(
            self.Export, response_serializer=ExportTraceServiceResponse.SerializeToString
        )
        return grpc.method_handlers_generic_handler(_TRACE_SERVICE, {"Export": export})

    async def Export(self, request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> ExportTraceServiceResponse:
        confined = await _authorize(self._state, context)
        try:
            decoded, transformed = await decode_traces_off_loop(self._state, request, PROTOBUF, None)
        except OtlpDecodeError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        spans, rejected = decoded.spans, decoded.rejected
        assign_project(spans, confined or _metadata(context).get(_PROJECT_HEADER), self._state.settings.project)
        token = current_project.set(confined)
        try:
            await self._assembler.ingest_spans(spans, transformed=transformed)
        except (Backpressure, StoreUnavailable) as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        finally:
            current_project.reset(token)
        response = ExportTraceServiceResponse()
        if rejected:
            response.partial_success.CopyFrom(
                ExportTracePartialSuccess(rejected_spans=len(rejected), error_message=rejection_message(rejected))
            )
        return response


class _LogsService:
    """LogsService/Export taking the serialized request, decoded here (in a thread) so that a body
    that is not protobuf is an INVALID_ARGUMENT naming the problem, as for traces."""

    def __init__(self, state: AppState, assembler: TraceAssembler) -> None:
        self._state = state
        self._assembler = assembler

    def handler(self) -> grpc.GenericRpcHandler:
        export = grpc.unary_unary_rpc_method_handler(
            self.Export, response_serializer=ExportLogsServiceResponse.SerializeToString
        )
        return grpc.method_handlers_generic_handler(_LOGS_SERVICE, {"Export": export})

    async def Export(self, request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> ExportLogsServiceResponse:
        confined = await _authorize(self._state, context)
        try:
            decoded = await asyncio.to_thread(decode_logs, request, PROTOBUF)
        except OtlpDecodeError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        contents = decoded.contents
        requested = confined or _metadata(context).get(_PROJECT_HEADER)
        contents = assign_log_project(contents, requested, self._state.settings.project)
        token = current_project.set(confined)
        try:
            await self._assembler.ingest_log_content(contents)
        except (Backpressure, StoreUnavailable) as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        finally:
            current_project.reset(token)
        response = ExportLogsServiceResponse()
        if decoded.rejected:
            response.partial_success.CopyFrom(
                ExportLogsPartialSuccess(
                    rejected_log_records=len(decoded.rejected), error_message=rejection_message(decoded.rejected)
                )
            )
        return response


async def start(state: AppState, assembler: TraceAssembler) -> None:
    """Bind `host:otlp_grpc_port`; a port that is taken is logged, not fatal (a collector may own 4317)."""
    settings = state.settings
    # grpc checks this on the message as received and again as it decompresses it, refusing a
    # compressed message that expands past it before the whole of it is held.
    limit = settings.max_decompressed_bytes
    server = grpc.aio.server(
        options=[("grpc.max_receive_message_length", limit), ("grpc.so_reuseport", 0)],
    )
    server.add_generic_rpc_handlers(
        (_TraceService(state, assembler).handler(), _LogsService(state, assembler).handler())
    )
    address = f"{settings.host}:{settings.otlp_grpc_port}"
    try:
        port = server.add_insecure_port(address)
    except RuntimeError as exc:
        logger.error("OTLP/gRPC receiver not started: cannot bind %s (%s)", address, exc)
        return
    await server.start()
    state.services[SERVICE] = server
    logger.info("OTLP/gRPC receiver on %s:%d", settings.host, port)


async def stop(state: AppState) -> None:
    server = state.services.pop(SERVICE, None)
    if server is not None:
        await server.stop(grace=2.0)
