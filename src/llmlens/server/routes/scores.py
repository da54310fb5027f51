"""The scores API (POST /api/v1/scores, GET /api/v1/scores/names and /inferred); starts the quality services.

Scores are answered like ingest: `{"accepted", "rejected": [{"index", "error"}], "score_ids"}`, every
valid score kept even when others are refused. At start-up this module also turns evaluation results
carried by OTLP spans into scores (after their spans are committed) and starts the inferred-feedback
service, which reads ended sessions in the background.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from llmlens.codec.json_text import loads_untrusted
from llmlens.codec.scores import ScoreEventError, score_from_event
from llmlens.model import Feedback, Score, Span, now_us
from llmlens.quality import (
    InferredFeedbackService,
    RecordedScores,
    ScoreQueue,
    quality_settings,
    record_scores,
    score_content_transforms,
    scores_from_spans,
)
from llmlens.quality._record import ScoreTransform

from .._http import HttpError, read_body
from .._request import admit_ingest, request_project, request_store
from .._security import security_of
from .._state import AppState, app_state

SERVICE = "quality"


@dataclass(slots=True)
class QualityServices:
    transforms: list[ScoreTransform]
    queue: ScoreQueue
    inferred: InferredFeedbackService | None


def score_transforms(state: AppState) -> list[ScoreTransform]:
    """Redaction and limits for scores, as the server applies them to spans."""
    services: QualityServices | None = state.services.get(SERVICE)
    if services is not None:
        return services.transforms
    security = state.services.get("security")
    redactor = security_of(state).redactor if security is not None else None
    return score_content_transforms(redactor, state.settings.max_field_chars)


def _score_list(body: bytes) -> list[Any]:
    try:
        doc = loads_untrusted(body or b"")
    except ValueError as exc:
        raise HttpError(400, f"body is not valid JSON: {exc}") from None
    if isinstance(doc, dict) and "scores" in doc:
        doc = doc["scores"]
        if not isinstance(doc, list):
            raise HttpError(400, "scores must be a JSON array of score objects")
    elif isinstance(doc, dict):
        doc = [doc]
    if not isinstance(doc, list):
        raise HttpError(400, 'send a JSON array of scores, {"scores": [...]}, or one score object')
    return doc


def store_scores(state: AppState, store: Any, indexed: Sequence[tuple[int, Score]]) -> RecordedScores:
    """Write decoded scores (from this route or from ingest); rejects come back by index."""
    return record_scores(store, indexed, score_transforms(state))


async def post_scores(request: Request) -> JSONResponse:
    state = app_state(request)
    body = await read_body(request, state.settings.max_body_bytes)
    items = _score_list(body)
    admit_ingest(request, len(items))  # batch size and per-key rate: 413/429
    project = request_project(request)
    received = now_us()
    decoded: list[tuple[int, Score]] = []
    rejected: list[tuple[int, str]] = []
    for index, item in enumerate(items):
        try:
            decoded.append((index, score_from_event(item, project=project, now_us=received)))
        except ScoreEventError as exc:
            rejected.append((index, str(exc)))
    for _, score in decoded:
        score.project = project  # a score belongs to the caller's project, whatever it names
    recorded = await run_in_threadpool(store_scores, state, request_store(request), decoded)
    rejected = sorted(rejected + recorded.rejected)
    return JSONResponse(
        {
            "accepted": recorded.accepted,
            "rejected": [{"index": i, "error": e} for i, e in rejected],
            "score_ids": [recorded.score_ids.get(i) for i in range(len(items))],
        }
    )


async def score_names(request: Request) -> JSONResponse:
    store = request_store(request)
    project = request_project(request)
    names = await run_in_threadpool(store.score_names, project)
    return JSONResponse({"project": project, "names": [{"name": n, "data_type": t} for n, t in names.items()]})


async def inferred_status(request: Request) -> JSONResponse:
    """Whether the inferred-feedback service runs and how many scans it finished (server-wide counters)."""
    services: QualityServices | None = app_state(request).services.get(SERVICE)
    inferred = services.inferred if services is not None else None
    if inferred is None:
        return JSONResponse({"enabled": False, "scans": 0, "pending_sessions": 0, "failures": 0})
    stats = inferred.stats
    return JSONResponse(
        {"enabled": True, "scans": stats.scans, "pending_sessions": stats.pending, "failures": stats.failures}
    )


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/scores", post_scores, methods=["POST"]),
        Route("/api/v1/scores/names", score_names, methods=["GET"]),
        Route("/api/v1/scores/inferred", inferred_status, methods=["GET"]),
    ]


async def startup(state: AppState) -> None:
    settings = quality_settings(state.settings.quality)  # SettingsError stops start-up, naming the key
    transforms = score_transforms(state)
    queue = ScoreQueue(state.store, transforms)
    queue.start()

    def on_write(spans: Sequence[Span], feedback: Sequence[Feedback]) -> None:
        found = scores_from_spans(spans)
        if found:
            queue.put(found)

    state.writer.add_listener(on_write)
    inferred = InferredFeedbackService(state.store, settings) if settings.inferred else None
    if inferred is not None:
        inferred.start()
    state.services[SERVICE] = QualityServices(transforms, queue, inferred)


async def shutdown(state: AppState) -> None:
    services: QualityServices | None = state.services.get(SERVICE)
    if services is None:
        return
    if services.inferred is not None:
        await asyncio.to_thread(services.inferred.stop, 5.0)
    await asyncio.to_thread(services.queue.stop, 5.0)
