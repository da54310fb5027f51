"""GET /api/v1/<page>: the JSON twin of every dashboard page, built from the same context."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .._params import page_params
from .._request import request_state
from ..pages import PAGES, Page


def _endpoint(page: Page) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        state = request_state(request)  # its store sees only the request's project
        params = page_params(request, state)
        context = await run_in_threadpool(page.build, state, params, dict(request.path_params))
        return JSONResponse(context)

    endpoint.__name__ = f"api_{page.name}"
    return endpoint


def routes() -> list[BaseRoute]:
    return [Route(page.api_path, _endpoint(page), methods=["GET"]) for page in PAGES if page.api_path]
