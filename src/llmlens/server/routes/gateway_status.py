"""The page at `/` of `llmlens proxy` (the gateway alone), and its JSON twin `/api/v1/gateway/status`.

It says what this server is: which upstreams `/proxy/<name>/...` forwards to, how many calls the
caller's project has recorded, and where they are stored and how to look at them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.templating import Jinja2Templates

from .._request import request_principal, request_project, request_store
from .._state import app_state
from ._formatting import FILTERS
from .proxy import SERVICE as GATEWAY

_templates = Jinja2Templates(directory=str(Path(__file__).resolve().parents[1] / "templates"))
_templates.env.filters.update(FILTERS)


async def _context(request: Request) -> dict[str, Any]:
    state = app_state(request)
    project = request_project(request)
    store = request_store(request)
    gateway = state.services.get(GATEWAY)
    upstreams = {name: u.base_url for name, u in sorted(gateway.upstreams.items())} if gateway else {}

    def recorded() -> tuple[int, Any]:
        rows = store.query("SELECT count(*), max(timestamp) FROM llm_logs WHERE project = ?", [project]).rows
        return int(rows[0][0]), rows[0][1]

    calls, last_call = await run_in_threadpool(recorded)
    settings = state.settings
    if settings.store:
        store_label = _without_password(settings.store)
        serve = f"llmlens serve --store {store_label}"
    else:
        store_label = str(Path(settings.data_dir).resolve() / "llmlens.duckdb")
        serve = f"llmlens serve --data {settings.data_dir}"
    # With auth on, a project's key learns nothing about the host's files.
    confined = request_principal(request).confined
    return {
        "project": project,
        "upstreams": upstreams,
        "calls": calls,
        "last_call": last_call,
        "store": None if confined else store_label,
        "serve_command": None if confined else serve,
    }


def _without_password(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in credentials:
        return url
    return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"


async def status_page(request: Request) -> Response:
    context = await _context(request)
    base = str(request.base_url).rstrip("/")
    return _templates.TemplateResponse(request, "gateway_status.html", {**context, "base": base})


async def status_json(request: Request) -> JSONResponse:
    context = await _context(request)
    last = context["last_call"]
    return JSONResponse({**context, "last_call": None if last is None else str(last)})


def routes() -> list[BaseRoute]:
    return [
        Route("/", status_page, methods=["GET"]),
        Route("/api/v1/gateway/status", status_json, methods=["GET"]),
    ]
