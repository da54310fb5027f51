"""The retention job (a background thread) and `POST /api/v1/admin/retention` to run it now."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from llmlens.ingest.retention import RetentionJob
from llmlens.store import confined_to

from .._http import HttpError
from .._jsonable import jsonable
from .._request import request_principal
from .._security import security_of
from .._state import AppState, app_state

SERVICE = "retention"


async def startup(state: AppState) -> None:
    auth = security_of(state).auth

    def overrides() -> dict[str, int | None]:
        return dict(auth.projects())

    job = RetentionJob(state.store, state.settings.retention_days, overrides)
    state.services[SERVICE] = job
    job.start()


async def shutdown(state: AppState) -> None:
    job: RetentionJob | None = state.services.pop(SERVICE, None)
    if job is not None:
        job.stop()


async def run_retention(request: Request) -> JSONResponse:
    """Run a retention pass now. With auth on, only a server admin may: it spans projects."""
    state = app_state(request)
    job: RetentionJob | None = state.services.get(SERVICE)
    if job is None:
        raise HttpError(503, "the retention job is not running")
    if not request_principal(request).server_admin:
        raise HttpError(403, "retention runs across all projects: only a server admin may run it now")

    def run() -> object:
        with confined_to(None):  # the job sees every project
            return job.run_once()

    result = await run_in_threadpool(run)
    return JSONResponse({"cutoffs": jsonable(getattr(result, "cutoffs", {}))})


def routes() -> list[BaseRoute]:
    return [Route("/api/v1/admin/retention", run_retention, methods=["POST"])]
