"""The parts of Langfuse's public API its SDK calls besides the OTLP export: health, projects, scores.

The SDK (v3 and later) exports spans to `/api/public/otel/v1/traces` (served by `otlp.py`), posts
scores to `/api/public/scores` (v3 and v4 SDKs: `score-create` events to `/api/public/ingestion`), and
calls `/api/public/projects` from `auth_check()` and `get_trace_url()`. Scores become llmlens scores
with source `sdk`; every valid one is kept even when others are refused, and the answer has the
shape the SDK reads (202 when all were accepted, 207 with the errors otherwise).
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from llmlens.codec.json_text import loads_untrusted
from llmlens.codec.langfuse_scores import score_from_langfuse
from llmlens.codec.scores import ScoreEventError
from llmlens.model import Score, now_us

from .._http import HttpError, read_body
from .._request import admit_ingest, request_project, request_store
from .._state import app_state
from .scores import store_scores

SCORE_EVENT = "score-create"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("llmlens")
    except PackageNotFoundError:
        return "0"


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "OK", "version": _version()})


async def projects(request: Request) -> JSONResponse:
    """The caller's project, as the SDK's `auth_check()` expects to find one for its keys."""
    project = request_project(request)
    organization = {"id": "llmlens", "name": "llmlens"}
    return JSONResponse({"data": [{"id": project, "name": project, "organization": organization, "metadata": {}}]})


async def _json(request: Request) -> Any:
    body = await read_body(request, app_state(request).settings.max_body_bytes)
    try:
        return loads_untrusted(body or b"")
    except ValueError as exc:
        raise HttpError(400, f"body is not valid JSON: {exc}") from None


async def _record(request: Request, items: list[tuple[int, Any]]) -> tuple[int, list[tuple[int, str]]]:
    """Decode and store (index, Langfuse score) pairs; (accepted count, [(index, reason)])."""
    admit_ingest(request, len(items))  # batch size and per-key rate: 413/429
    project = request_project(request)
    received = now_us()
    decoded: list[tuple[int, Score]] = []
    rejected: list[tuple[int, str]] = []
    for index, item in items:
        try:
            decoded.append((index, score_from_langfuse(item, project=project, now_us=received)))
        except ScoreEventError as exc:
            rejected.append((index, str(exc)))
    recorded = await run_in_threadpool(store_scores, app_state(request), request_store(request), decoded)
    return recorded.accepted, sorted(rejected + recorded.rejected)


async def post_scores(request: Request) -> JSONResponse:
    """POST /api/public/scores: a JSON array of scores (or one score object)."""
    doc = await _json(request)
    items = doc if isinstance(doc, list) else [doc] if isinstance(doc, dict) else None
    if items is None:
        raise HttpError(400, "send a JSON array of score objects, or one score object")
    accepted, rejected = await _record(request, list(enumerate(items)))
    if not rejected:
        return JSONResponse({"message": "Accepted"}, status_code=202)
    errors = [{"index": i, "message": f"score {i}: {reason}"} for i, reason in rejected]
    return JSONResponse({"accepted": accepted, "rejected": len(rejected), "errors": errors}, status_code=207)


async def post_ingestion(request: Request) -> JSONResponse:
    """POST /api/public/ingestion: `{"batch": [{"id", "type", "body"}]}`; only `score-create` events are read.

    Traces and observations come over OTLP from SDK v3 on; the older event types are answered one by one
    with a 400 naming what to do instead, as the endpoint answers any invalid event.
    """
    doc = await _json(request)
    batch = doc.get("batch") if isinstance(doc, dict) else None
    if not isinstance(batch, list):
        raise HttpError(400, 'batch is required: {"batch": [{"id", "type", "timestamp", "body"}]}')
    scores: list[tuple[int, Any]] = []
    errors: list[dict[str, Any]] = []
    for index, event in enumerate(batch):
        event_id = event.get("id") if isinstance(event, dict) else None
        kind = event.get("type") if isinstance(event, dict) else None
        if kind == SCORE_EVENT:
            scores.append((index, event.get("body")))
            continue
        message = (
            f"event type {kind!r} is not read by llmlens: upgrade to Langfuse SDK v3 or later, which sends "
            "traces and observations over OpenTelemetry"
        )
        errors.append({"id": event_id, "status": 400, "message": message, "error": message})
    _, rejected = await _record(request, scores)
    refused = dict(rejected)
    successes = []
    for index, _body in scores:
        event_id = batch[index].get("id")
        if index in refused:
            errors.append({"id": event_id, "status": 400, "message": refused[index], "error": refused[index]})
        else:
            successes.append({"id": event_id, "status": 201})
    return JSONResponse({"successes": successes, "errors": errors}, status_code=207)


def routes() -> list[BaseRoute]:
    return [
        Route("/api/public/health", health, methods=["GET"]),
        Route("/api/public/projects", projects, methods=["GET"]),
        Route("/api/public/scores", post_scores, methods=["POST"]),
        Route("/api/public/ingestion", post_ingestion, methods=["POST"]),
    ]
