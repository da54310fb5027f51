"""GET /metrics: Prometheus text format (server health and LLM traffic), kept in memory by a write listener."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from llmlens.metrics import CONTENT_TYPE_LATEST, ForwarderStatsView, ServerMetrics, TrafficMetrics

from .._http import HttpError
from .._request import only_project_samples, request_principal
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
        version=_version(),
    )
    state.writer.add_listener(metrics.on_write)
    state.writer.add_listener(metrics.traffic.on_write)
    state.services[SERVICE] = metrics


async def metrics_endpoint(request: Request) -> Response:
    metrics: ServerMetrics | None = app_state(request).services.get(SERVICE)
    if metrics is None:
        raise HttpError(503, "metrics are not started yet")
    text = metrics.render()
    principal = request_principal(request)
    if principal.confined and principal.project is not None:  # a project's key sees its own series only
        text = only_project_samples(text, principal.project)
    return Response(text, media_type=CONTENT_TYPE_LATEST)


def routes() -> list[BaseRoute]:
    return [Route("/metrics", metrics_endpoint, methods=["GET"])]
