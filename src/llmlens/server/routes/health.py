"""Liveness and readiness.

`/healthz` reads two attributes and answers: no store call, no thread hop, nothing that could queue
behind ingest work (decoding and pricing run in their own threads), so it answers under any load.
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from .._state import app_state


async def healthz(request: Request) -> JSONResponse:
    state = app_state(request)
    return JSONResponse(
        {
            "status": "ok",
            "store": state.store.url.split("://", 1)[0],
            "queued_events": state.writer.queued_events,
            "uptime_s": round(time.time() - state.started_at, 3),
        }
    )


def routes() -> list[BaseRoute]:
    return [Route("/healthz", healthz, methods=["GET"])]
