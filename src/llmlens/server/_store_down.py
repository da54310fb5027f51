"""What a request gets while the store or the shared state cannot be reached: a 503 with Retry-After.

API, ingest and OTLP callers get `{"error": ...}` naming the store (its URL without password); a browser
asking for a page gets the page frame with a banner saying why the page cannot be shown. Nothing was
acknowledged: a client that sends again after Retry-After has its events stored once.
"""

from __future__ import annotations

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response

from ._http import error_response

# Paths that answer programs, never pages, whatever they accept.
_API_PREFIXES = ("/api/", "/v1/", "/proxy/", "/healthz", "/metrics")


def wants_page(request: Request) -> bool:
    """A browser's request for a page (not an API, ingest or gateway call)."""
    if request.method not in ("GET", "HEAD") or request.url.path.startswith(_API_PREFIXES):
        return False
    return "text/html" in request.headers.get("accept", "")


def unavailable_response(request: Request, message: str, retry_after_s: float) -> Response:
    headers = {"Retry-After": str(max(1, round(retry_after_s)))}
    if not wants_page(request):
        return error_response(503, message, headers)
    return _banner_page(request, message, headers)


def _banner_page(request: Request, message: str, headers: dict[str, str]) -> Response:
    """base.html with its banner and no content. Built from the URL alone: the project list and the
    caller's details come from the store or the shared state, which cannot answer now."""
    from llmlens.query import RANGES, Scope, parse_window

    from ._params import PageParams
    from ._state import app_state
    from .routes.ui import NAV, templates

    project = request.query_params.get("project", "").strip() or app_state(request).settings.project
    context = {
        "p": PageParams(Scope(project, parse_window()), QueryParams()),
        "nav": NAV,
        "ranges": list(RANGES),
        "projects": [project],
        "current_path": request.url.path,
        "principal": None,
        "csrf_token": "",
        "store_down": message,
    }
    response = templates.TemplateResponse(request, "base.html", context, status_code=503)
    response.headers.update(headers)
    return response
