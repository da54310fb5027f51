"""POST /api/v1/ingest: native events and the article's log lines (docs/events.md)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from llmlens.codec.native import BodyError, BodyTooLarge, DecodedEvents, decode_events, parse_body
from llmlens.ingest import Backpressure

from .._http import HttpError, read_body
from .._request import admit_ingest, request_project
from .._state import app_state
from .scores import store_scores

_ACCEPTED_TYPES = (
    "application/json",
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "text/plain",
    "",
)


_INLINE_DECODE_BYTES = 32 * 1024


def _decode(
    body: bytes, encoding: str | None, content_type: str, project: str, max_decompressed_bytes: int
) -> DecodedEvents:
    raw = parse_body(body, content_type, encoding, max_decompressed_bytes)
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
    encoding = request.headers.get("content-encoding")
    args = (body, encoding, content_type, project, state.settings.max_decompressed_bytes)
    try:
        if not encoding and len(body) <= _INLINE_DECODE_BYTES:
            # A few events decode in less time than a hop to a thread and back (the one-event-a-request client).
            decoded = _decode(*args)
        else:  # a few threads at once: the event loop keeps its turn; compressed bodies may expand a lot
            decoded = await state.pipeline.cpu.run(_decode, *args, input_bytes=None if encoding else len(body))
    except BodyTooLarge as exc:
        raise HttpError(413, str(exc)) from None
    except BodyError as exc:
        raise HttpError(400, str(exc)) from None
    admit_ingest(request, len(decoded.spans) + len(decoded.feedback) + len(decoded.scores) + len(decoded.rejected))
    try:
        await state.pipeline.ingest(decoded.spans, decoded.feedback)
    except Backpressure as exc:
        raise HttpError(503, str(exc), {"Retry-After": str(max(1, round(exc.retry_after_s)))}) from None
    accepted, rejected = decoded.accepted, decoded.rejected
    if decoded.scores:  # `{"type": "score"}` events (the SDK's llmlens.score): checked against the store
        scored = await run_in_threadpool(store_scores, state, state.store, decoded.scores)
        accepted, rejected = accepted + scored.accepted, sorted(rejected + scored.rejected)
    return JSONResponse(
        {
            "accepted": accepted,
            "rejected": [{"index": i, "error": e} for i, e in rejected],
            "message_ids": decoded.message_ids,
        }
    )


def routes() -> list[BaseRoute]:
    return [Route("/api/v1/ingest", ingest, methods=["POST"])]
