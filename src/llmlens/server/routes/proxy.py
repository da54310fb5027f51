"""The LLM gateway (`/proxy/<upstream>/...`) and its budget API (`/api/v1/budgets`)."""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from llmlens.proxy import (
    BudgetGuard,
    BudgetPolicy,
    Gateway,
    GatewayConfig,
    MonthToDateSpend,
    ResponseCache,
    SpanRecorder,
    make_client,
    parse_upstreams,
)

from .._budgets import project_budgets
from .._cached_features import cached_features
from .._http import HttpError, read_json_object
from .._request import request_principal, request_project, require_server_admin
from .._state import AppState, app_state

logger = logging.getLogger("llmlens.proxy")

SERVICE = "gateway"


async def startup(state: AppState) -> None:
    settings = state.settings
    # Load the price tables now rather than on the first recorded call, which would stall the loop.
    state.pipeline.prices.cost_for_usage(model="gpt-4o", provider="openai", prompt_tokens=1, completion_tokens=1)
    config = GatewayConfig.from_config(settings.gateway)
    spend = MonthToDateSpend(state.store)
    state.writer.add_listener(spend.on_write)
    # The pipeline's book as it is at each call: `POST /api/v1/admin/reprice` may reload the server's prices.
    recorder = SpanRecorder(state.pipeline.ingest, lambda span: state.pipeline.prices.price_span(span))
    recorder.start()
    cache = None
    if config.cache_max_entries > 0:
        cache = ResponseCache(
            ttl_s=config.cache_ttl_s, max_entries=config.cache_max_entries, max_bytes=config.cache_max_bytes
        )
    state.services[SERVICE] = Gateway(
        upstreams=parse_upstreams(settings.upstreams),
        client=make_client(config),
        recorder=recorder,
        budgets=BudgetGuard(project_budgets(state), spend),
        config=config,
        cache=cache,
        default_project=settings.project,
        max_body_bytes=settings.max_body_bytes,
        max_decompressed_bytes=settings.max_decompressed_bytes,
        cached_features=cached_features(state).enabled,
    )


async def shutdown(state: AppState) -> None:
    gateway: Gateway | None = state.services.pop(SERVICE, None)
    if gateway is None:
        return
    await gateway.recorder.stop()
    await gateway.client.aclose()
    await gateway.budgets.spend.close()


def _gateway(state: AppState) -> Gateway:
    gateway: Gateway | None = state.services.get(SERVICE)
    if gateway is None:
        raise HttpError(503, "the gateway is not running")
    return gateway


class _GatewayEndpoint:
    """A plain ASGI endpoint (not a request/response function) so the gateway streams without wrappers."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        state: AppState = scope["app"].state.llmlens
        await _gateway(state)(scope, receive, send)


# Budgets belong to a project: GET, PUT and DELETE act on the caller's project. With `?scope=server` they
# act on the server-wide default that every project without its own policy uses: a server admin's job.


def _server_scope(request: Request) -> bool:
    scope = request.query_params.get("scope", "project")
    if scope not in ("project", "server"):
        raise HttpError(400, f"scope must be 'project' (the default) or 'server', got {scope!r}")
    return scope == "server"


def _budgets_doc(request: Request, server: bool) -> dict[str, Any]:
    book = project_budgets(app_state(request))
    if server:
        return {**book.defaults.to_config(), "scope": "server", "source": book.defaults_source}
    project = request_project(request)
    return {**book.policy_for(project).to_config(), "project": project, "source": book.source_of(project)}


def _policy_from(doc: dict[str, Any], request: Request, server: bool) -> BudgetPolicy:
    # The read-only fields of a GET answer may come back in a PUT; a project that is not the caller's may not.
    doc = {k: v for k, v in doc.items() if k not in ("source", "scope")}
    named = doc.pop("project", None)
    if named is not None and (server or named != request_project(request)):
        where = "the server-wide default" if server else f"project {request_project(request)!r}"
        raise HttpError(403, f"this request sets the budgets of {where}, not of project {named!r}")
    try:
        return BudgetPolicy.from_config(doc)
    except ValueError as exc:
        raise HttpError(422, str(exc)) from None


async def get_budgets(request: Request) -> JSONResponse:
    server = _server_scope(request)
    if server:
        require_server_admin(request, "read the server-wide budget default")
    return JSONResponse(_budgets_doc(request, server))


async def put_budgets(request: Request) -> JSONResponse:
    server = _server_scope(request)
    if server:
        require_server_admin(request, "change the server-wide budget default")
    policy = _policy_from(await read_json_object(request), request, server)
    book = project_budgets(app_state(request))
    if server:
        await run_in_threadpool(book.set_defaults, policy)
    else:
        await run_in_threadpool(book.set_project, request_project(request), policy)
    return JSONResponse(_budgets_doc(request, server))


async def delete_budgets(request: Request) -> JSONResponse:
    """The project goes back to the server-wide default; with scope=server, the default to the config file's."""
    server = _server_scope(request)
    book = project_budgets(app_state(request))
    if server:
        require_server_admin(request, "change the server-wide budget default")
        await run_in_threadpool(book.set_defaults, None)
    else:
        await run_in_threadpool(book.clear_project, request_project(request))
    return JSONResponse(_budgets_doc(request, server))


async def budget_status(request: Request) -> JSONResponse:
    gateway = _gateway(app_state(request))
    params = request.query_params
    user_id, feature = params.get("user_id"), params.get("feature")
    if not user_id and not feature:
        raise HttpError(400, "name a user_id and/or a feature, e.g. /api/v1/budgets/status?user_id=user-42")
    project = request_project(request)
    status = await gateway.budgets.status(project, user_id or None, params.get("tier"), feature or None)
    return JSONResponse(status)


async def gateway_info(request: Request) -> JSONResponse:
    gateway = _gateway(app_state(request))
    doc: dict[str, Any] = {
        "upstreams": {name: u.base_url for name, u in sorted(gateway.upstreams.items())},
        "config": asdict(gateway.config),
    }
    # The counters add up every project's calls: like /metrics' totals, a server admin's to see.
    if request_principal(request).server_admin:
        cache = gateway.cache
        doc["cache"] = (
            None if cache is None else {"entries": len(cache), "bytes": cache.size_bytes, **asdict(cache.stats)}
        )
        doc["recorded"] = gateway.recorder.recorded
        doc["not_recorded"] = gateway.recorder.dropped
    return JSONResponse(doc)


def routes() -> list[BaseRoute]:
    return [
        Route("/proxy/{upstream}/{path:path}", _GatewayEndpoint()),
        Route("/api/v1/budgets", get_budgets, methods=["GET"]),
        Route("/api/v1/budgets", put_budgets, methods=["PUT"]),
        Route("/api/v1/budgets", delete_budgets, methods=["DELETE"]),
        Route("/api/v1/budgets/status", budget_status, methods=["GET"]),
        Route("/api/v1/gateway", gateway_info, methods=["GET"]),
    ]
