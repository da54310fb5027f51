"""Insights: `GET /api/v1/insights`, the `/insights` page (its HTML twin), and the per-feature gateway cache
switches its "switch on the cache" action calls (`/api/v1/gateway/cache/features`)."""

from __future__ import annotations

import logging
from typing import Any

from markupsafe import escape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from llmlens.insights import KINDS, InsightsService, WindowKey, open_embeddings
from llmlens.query import DEFAULT_RANGE, WindowError
from llmlens.replay.providers import DEFAULT_UPSTREAMS
from llmlens.replay.simulated import EMBEDDING_MODEL, SIMULATED_UPSTREAM, SimulatedSyncTransport, simulated_upstreams

from .._cached_features import cached_features
from .._http import HttpError
from .._jsonable import jsonable
from .._params import page_params
from .._request import request_project
from .._state import AppState, app_state
from .replay import simulated_provider_on

logger = logging.getLogger("llmlens.insights")

SERVICE = "insights"


def _service(state: AppState) -> InsightsService:
    service = state.services.get(SERVICE)
    if not isinstance(service, InsightsService):
        raise HttpError(503, "the insights service is not running")
    return service


def _window_key(request: Request) -> WindowKey:
    q = request.query_params
    from_, to = q.get("from") or None, q.get("to") or None
    return (q.get("range") or (None if from_ or to else DEFAULT_RANGE), from_, to)


def _kinds(request: Request) -> set[str] | None:
    wanted = [k.strip() for value in request.query_params.getlist("kind") for k in value.split(",") if k.strip()]
    unknown = sorted(set(wanted) - set(KINDS))
    if unknown:
        raise HttpError(400, f"kind must be one of {', '.join(KINDS)}, got {', '.join(unknown)}")
    return set(wanted) or None


def insights_doc(state: AppState, project: str, key: WindowKey, kinds: set[str] | None) -> dict[str, Any]:
    """The API's answer (and the page's context): findings ranked, with the state of their actions now."""
    try:
        answer = _service(state).report(project, key)
    except WindowError as exc:
        raise HttpError(400, str(exc)) from None
    except RuntimeError as exc:
        raise HttpError(503, str(exc)) from None
    if answer.report is None:
        return {"project": project, "range": key[0], "status": answer.status, "insights": [], "errors": []}
    doc: dict[str, Any] = jsonable(answer.report.to_dict())
    doc["status"] = answer.status
    switches = cached_features(state)
    insights = [i for i in doc["insights"] if kinds is None or i["kind"] in kinds]
    for insight in insights:
        action = insight.get("action")
        if action and action["kind"] == "enable_cache":
            action["done"] = switches.enabled(project, insight["scope"].get("feature"))
    doc["insights"] = insights
    return doc


async def list_insights(request: Request) -> JSONResponse:
    state = app_state(request)
    doc = await run_in_threadpool(insights_doc, state, request_project(request), _window_key(request), _kinds(request))
    return JSONResponse(doc)


async def insights_page(request: Request) -> Response:
    from .ui import render

    state = app_state(request)
    try:
        params = page_params(request, state)
        kinds = _kinds(request)
        doc = await run_in_threadpool(insights_doc, state, params.project, _window_key(request), kinds)
    except HttpError as exc:
        return render(request, "error.html", {"status": exc.status, "message": exc.message}, status=exc.status)
    query = f"?{request.url.query}" if request.url.query else ""
    return render(request, "insights.html", {"p": params, "doc": doc, "api_url": "/api/v1/insights" + query})


# -- the gateway's cache, per feature ----------------------------------------------------------------------


def _switches_doc(state: AppState, project: str) -> dict[str, Any]:
    return {"project": project, "features": cached_features(state).features(project)}


async def list_cached_features(request: Request) -> JSONResponse:
    state = app_state(request)
    return JSONResponse(_switches_doc(state, request_project(request)))


async def _switch(request: Request, on: bool) -> Response:
    state = app_state(request)
    project = request_project(request)
    feature = request.path_params["feature"].strip()
    if not feature or len(feature) > 200:
        raise HttpError(400, "feature must be 1-200 characters, e.g. PUT /api/v1/gateway/cache/features/faq")
    await run_in_threadpool(cached_features(state).set, project, feature, on)
    if request.headers.get("hx-request") == "true":
        state_text = "on" if on else "off"
        return HTMLResponse(
            f'<p class="notice" role="status">The gateway cache is {state_text} for {escape(feature)}.</p>'
        )
    return JSONResponse({**_switches_doc(state, project), "feature": feature, "cached": on})


async def enable_cached_feature(request: Request) -> Response:
    return await _switch(request, True)


async def disable_cached_feature(request: Request) -> Response:
    return await _switch(request, False)


# -- lifecycle -----------------------------------------------------------------------------------------------


def _cache_ttl_s(state: AppState) -> float:
    from llmlens.proxy import GatewayConfig

    try:
        return float(GatewayConfig.from_config(state.settings.gateway).cache_ttl_s)
    except ValueError:
        return 3600.0  # the gateway refuses the table itself and says why


# With the demo's stand-in provider on and no embedding model set, the semantic tier uses the stand-in's.
_SIMULATED_EMBEDDINGS = f"{SIMULATED_UPSTREAM}:{EMBEDDING_MODEL}"


async def startup(state: AppState) -> None:
    settings = state.settings
    stand_in = simulated_provider_on(settings)
    embeddings = open_embeddings(
        settings.insights_embedding_model or (_SIMULATED_EMBEDDINGS if stand_in else ""),
        settings.insights_semantic_threshold,
        simulated_upstreams(settings.upstreams, DEFAULT_UPSTREAMS) if stand_in else settings.upstreams,
        settings.data_dir,
        transport=SimulatedSyncTransport() if stand_in else None,
    )
    service = InsightsService(
        state.store,
        prices=lambda: state.pipeline.prices,  # as it is now: the server's prices may be reloaded
        interval_s=settings.insights_interval_s,
        max_calls=settings.insights_max_calls,
        cache_ttl_s=_cache_ttl_s(state),
        embeddings=embeddings,
    )
    state.writer.add_listener(service.on_write)
    service.start(warm=[settings.project])
    state.services[SERVICE] = service


async def shutdown(state: AppState) -> None:
    service = state.services.pop(SERVICE, None)
    if isinstance(service, InsightsService):
        await run_in_threadpool(service.stop)


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/insights", list_insights, methods=["GET"]),
        Route("/insights", insights_page, methods=["GET"]),
        Route("/api/v1/gateway/cache/features", list_cached_features, methods=["GET"]),
        Route("/api/v1/gateway/cache/features/{feature:path}", enable_cached_feature, methods=["PUT"]),
        Route("/api/v1/gateway/cache/features/{feature:path}", disable_cached_feature, methods=["DELETE"]),
    ]
