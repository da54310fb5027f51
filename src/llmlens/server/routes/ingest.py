"""POST /api/v1/ingest: native events and the article's log lines (docs/events.md)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from llmlens.codec.native import BodyError, DecodedEvents, decode_events, decompress, parse_body
from llmlens.ingest import Backpressure

from .._http import HttpError, read_body
from .._request import admit_ingest, request_project
from .._state import app_state

_ACCEPTED_TYPES = (
    "application/json",
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "text/plain",
    "",
)


_INLINE_DECODE_BYTES = 32 * 1024


def _decode(body: bytes, encoding: str | None, content_type: str, project: str) -> DecodedEvents:
    raw = parse_body(decompress(body, encoding), content_type)
    return decode_events(raw, project=project)


async def ingest(request: Request) -> JSONResponse:
    state = app_state(request)
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() not in _ACCEPTED_TYPES:
        raise HttpError(
            415, f"unsupported Content-Type {content_type!r}: send application/json or application/x-ndjson"
        )
    body = await read_body(request, state.settings.max_body_bytes)
    project = request_project(request)
    try:
        decoded = await run_in_threadpool(_decode, body, request.headers.get("content-encoding"), content_type, project)
    except BodyError as exc:
        raise HttpError(400, str(exc)) from None
    admit_ingest(request, len(decoded.spans) + len(decoded.feedback) + len(decoded.rejected))
    try:
        await state.pipeline.ingest(decoded.spans, decoded.feedback)
    except Backpressure as exc:
        raise HttpError(503, str(exc), {"Retry-After": str(max(1, round(exc.retry_after_s)))}) from None
    return JSONResponse(
        {
            "accepted": decoded.accepted,
            "rejected": [{"index": i, "error": e} for i, e in decoded.rejected],
            "message_ids": decoded.message_ids,
        }
    )


def routes() -> list[BaseRoute]:
    return [Route("/api/v1/ingest", ingest, methods=["POST"])]
