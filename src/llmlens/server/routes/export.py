"""GET /api/v1/export (one view over a time window as a streamed file) and the scheduled exports."""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Route

from llmlens.export import (
    EXTENSIONS,
    MEDIA_TYPES,
    ExportError,
    ExportScheduler,
    ExportSpec,
    export_kind,
    export_to_file,
    jobs_from_settings,
    parse_time,
)
from llmlens.query import utc_now

from .._http import HttpError
from .._state import AppState, app_state

SERVICE = "exports"


async def startup(state: AppState) -> None:
    jobs = jobs_from_settings(state.settings.exports, state.settings.project)  # bad config stops start-up
    if not jobs:
        return
    shortest = min(job.every.total_seconds() for job in jobs)
    scheduler = ExportScheduler(state.store, jobs, check_interval_s=max(0.5, min(30.0, shortest / 2)))
    scheduler.start()
    state.services[SERVICE] = scheduler


async def shutdown(state: AppState) -> None:
    scheduler: ExportScheduler | None = state.services.pop(SERVICE, None)
    if scheduler is not None:
        await asyncio.to_thread(scheduler.stop)


def _spec(request: Request, state: AppState) -> ExportSpec:
    q = request.query_params
    now = utc_now()
    project = q.get("project") or request.headers.get("x-llmlens-project") or state.settings.project
    try:
        kind = export_kind(q.get("kind", "llm"))
        start = parse_time(q.get("since", "7d"), "since", now=now)
        end = parse_time(q.get("until", "now"), "until", now=now)
        return ExportSpec(kind, project, start, end, q.get("format", "parquet"))
    except ValueError as exc:  # ExportError is a ValueError too
        raise HttpError(400, str(exc)) from None


async def export_endpoint(request: Request) -> Response:
    state = app_state(request)
    spec = _spec(request, state)
    fd, name = tempfile.mkstemp(prefix="llmlens-export-", suffix="." + EXTENSIONS[spec.format])
    os.close(fd)
    path = Path(name)
    try:
        rows = await run_in_threadpool(export_to_file, state.store, spec, path)
    except ExportError as exc:
        path.unlink(missing_ok=True)
        raise HttpError(400, str(exc)) from None
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    filename = f"{spec.kind.view}.{EXTENSIONS[spec.format]}"
    return FileResponse(
        path,
        media_type=MEDIA_TYPES[spec.format],
        filename=filename,
        headers={"X-LLMLens-Rows": str(rows)},
        background=BackgroundTask(path.unlink, missing_ok=True),
    )


def routes() -> list[BaseRoute]:
    return [Route("/api/v1/export", export_endpoint, methods=["GET"])]
