"""The LLM gateway (`/proxy/<upstream>/...`) and its budget API (`/api/v1/budgets`)."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

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

from .._http import HttpError, read_json_object
from .._state import AppState, app_state

logger = logging.getLogger("llmlens.proxy")

SERVICE = "gateway"
BUDGETS_FILE = "budgets.json"  # budgets set through the API; they win over the config file


def _budgets_path(state: AppState) -> Path:
    return Path(state.settings.data_dir) / BUDGETS_FILE


def _initial_policy(state: AppState) -> BudgetPolicy:
    path = _budgets_path(state)
    if path.is_file():
        try:
            return BudgetPolicy.from_config(json.loads(path.read_text()))
        except (OSError, ValueError) as exc:
            raise ValueError(f"budgets saved in {path} are unreadable ({exc}); fix or delete the file") from None
    return BudgetPolicy.from_config(state.settings.budgets)


async def startup(state: AppState) -> None:
    settings = state.settings
    # Load the price tables now rather than on the first recorded call, which would stall the loop.
    state.pipeline.prices.cost_for_usage(model="gpt-4o", provider="openai", prompt_tokens=1, completion_tokens=1)
    config = GatewayConfig.from_config(settings.gateway)
    spend = MonthToDateSpend(state.store)
    state.writer.add_listener(spend.on_write)
    recorder = SpanRecorder(state.pipeline.ingest, state.pipeline.prices.price_span)
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
        budgets=BudgetGuard(_initial_policy(state), spend),
        config=config,
        cache=cache,
        default_project=settings.project,
        max_body_bytes=settings.max_body_bytes,
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


async def get_budgets(request: Request) -> JSONResponse:
    gateway = _gateway(app_state(request))
    return JSONResponse(gateway.budgets.policy.to_config())


async def put_budgets(request: Request) -> JSONResponse:
    state = app_state(request)
    gateway = _gateway(state)
    doc = await read_json_object(request)
    try:
        policy = BudgetPolicy.from_config(doc)
    except ValueError as exc:
        raise HttpError(422, str(exc)) from None
    path = _budgets_path(state)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(policy.to_config(), indent=2))
    tmp.replace(path)
    gateway.budgets.policy = policy
    return JSONResponse(policy.to_config())


async def budget_status(request: Request) -> JSONResponse:
    state = app_state(request)
    gateway = _gateway(state)
    params = request.query_params
    user_id, feature = params.get("user_id"), params.get("feature")
    if not user_id and not feature:
        raise HttpError(400, "name a user_id and/or a feature, e.g. /api/v1/budgets/status?user_id=user-42")
    project = request.headers.get("x-llmlens-project") or params.get("project") or state.settings.project
    status = await gateway.budgets.status(project, user_id or None, params.get("tier"), feature or None)
    return JSONResponse(status)


async def gateway_info(request: Request) -> JSONResponse:
    gateway = _gateway(app_state(request))
    cache = gateway.cache
    return JSONResponse(
        {
            "upstreams": {name: u.base_url for name, u in sorted(gateway.upstreams.items())},
            "config": asdict(gateway.config),
            "cache": None
            if cache is None
            else {"entries": len(cache), "bytes": cache.size_bytes, **asdict(cache.stats)},
            "recorded": gateway.recorder.recorded,
            "not_recorded": gateway.recorder.dropped,
        }
    )


def routes() -> list[BaseRoute]:
    return [
        Route("/proxy/{upstream}/{path:path}", _GatewayEndpoint()),
        Route("/api/v1/budgets", get_budgets, methods=["GET"]),
        Route("/api/v1/budgets", put_budgets, methods=["PUT"]),
        Route("/api/v1/budgets/status", budget_status, methods=["GET"]),
        Route("/api/v1/gateway", gateway_info, methods=["GET"]),
    ]
