"""The web UI: server-rendered pages (Jinja2 + htmx + uPlot), static files, the SQL console's CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from llmlens.query import RANGES, Scope, parse_window

from .._http import HttpError
from .._params import PageParams, known_projects, page_params
from .._request import request_principal, request_project, request_state
from .._state import AppState, app_state
from ..pages import PAGES, Page
from ..pages._debugging import sql_context
from ._formatting import FILTERS

_HERE = Path(__file__).resolve().parent.parent
templates = Jinja2Templates(directory=str(_HERE / "templates"))
templates.env.filters.update(FILTERS)

NAV: tuple[tuple[str, str, str], ...] = (
    *((p.name, p.title, p.path) for p in PAGES if p.nav),
    ("alerts", "Alerts", "/alerts"),
)


def render(request: Request, template: str, context: dict[str, Any], *, status: int = 200) -> Response:
    """Render a page that extends base.html (alert pages use it too)."""
    state = app_state(request)
    params: PageParams | None = context.get("p")
    if params is None:
        try:
            params = page_params(request, state)
        except HttpError:  # a bad time range on an error page: show the defaults
            params = PageParams(Scope(request_project(request), parse_window()), QueryParams())
    base = {
        "p": params,
        "nav": NAV,
        "ranges": list(RANGES),
        "projects": known_projects(state, request),
        "current_path": request.url.path,
        "principal": request_principal(request),
        "csrf_token": request_principal(request).csrf_token or "",
    }
    return templates.TemplateResponse(request, template, {**base, **context}, status_code=status)


def _endpoint(page: Page) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        state = request_state(request)  # its store sees only the request's project
        try:
            params = page_params(request, state)
            context = await run_in_threadpool(page.build, state, params, dict(request.path_params))
        except HttpError as exc:
            return render(
                request,
                "error.html",
                {"page": page, "status": exc.status, "message": exc.message},
                status=exc.status,
            )
        api_url = None
        if page.api_path:
            path = "/api/v1/overview" if request.url.path == "/" else "/api/v1" + request.url.path
            api_url = f"{path}?{request.url.query}" if request.url.query else path
        return render(request, page.template, {"page": page, "p": params, "api_url": api_url, **context})

    endpoint.__name__ = f"ui_{page.name}"
    return endpoint


def _csv(context: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    result = context["result"]
    writer.writerow(result["columns"])
    writer.writerows(result["rows"])
    return out.getvalue()


async def sql_csv(request: Request) -> Response:
    state: AppState = request_state(request)
    params = page_params(request, state)
    if not params.query.get("q", "").strip():
        raise HttpError(400, "send the query as ?q=SELECT ...")
    context = await run_in_threadpool(sql_context, state, params, {})
    if context["error"]:
        raise HttpError(400, context["error"])
    return Response(
        _csv(context),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="llmlens-query.csv"'},
    )


def routes() -> list[BaseRoute]:
    return [
        Mount("/static", StaticFiles(directory=str(_HERE / "static")), name="static"),
        Route("/sql.csv", sql_csv, methods=["GET"]),
        *(Route(page.path, _endpoint(page), methods=["GET"]) for page in PAGES),
    ]
