"""GET /metrics: Prometheus text format (server health and LLM traffic), kept in memory by a write listener.

With auth on, a project's key sees only its project's series; a server admin sees everything."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from llmlens.metrics import CONTENT_TYPE_LATEST, ForwarderStatsView, ServerMetrics, TrafficMetrics

from .._http import HttpError
from .._request import request_principal
from .._state import AppState, app_state

SERVICE = "metrics"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("llmlens")
    except PackageNotFoundError:
        return "dev"


async def startup(state: AppState) -> None:
    path = getattr(state.store, "path", None)

    def forwarders() -> Iterable[ForwarderStatsView]:
        service: Any = state.services.get("forward")
        return service.stats() if service is not None else ()

    metrics = ServerMetrics(
        TrafficMetrics(),
        state.writer,
        max_queued_events=state.settings.max_queued_events,
        store_path=path if isinstance(path, Path) else None,
        started_at=state.started_at,
        forwarders=forwarders,
        # The OTLP routes make the assembler (`otlp.SERVICE`) at start-up, or on the first export.
        trace_context=lambda: state.services.get("otlp"),
        version=_version(),
    )
    state.writer.add_listener(metrics.on_write)
    state.writer.add_listener(metrics.traffic.on_write)
    state.services[SERVICE] = metrics


async def metrics_endpoint(request: Request) -> Response:
    metrics: ServerMetrics | None = app_state(request).services.get(SERVICE)
    if metrics is None:
        raise HttpError(503, "metrics are not started yet")
    principal = request_principal(request)
    # A server admin (or anyone, without auth) sees every project and the server's own health; a project's
    # key or login sees its project's series only: the server-wide totals would count other projects too.
    project = None if principal.server_admin else principal.project
    if project is None and not principal.server_admin:
        raise HttpError(403, "/metrics needs a project or a server admin")
    return Response(metrics.render(project), media_type=CONTENT_TYPE_LATEST)


def routes() -> list[BaseRoute]:
    return [Route("/metrics", metrics_endpoint, methods=["GET"])]
