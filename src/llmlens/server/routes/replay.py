"""Replay and compare: `POST /api/v1/replay`, `/api/v1/compare`, `/api/v1/traces/{id}/replay`, the run pages.

Each POST answers JSON, or the HTML fragment of its result when htmx asks (`HX-Request`); form
bodies (the trace page's panel) and JSON bodies are both accepted.
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from llmlens.model import Span
from llmlens.replay import (
    CallFilter,
    KeySource,
    NotFound,
    NothingToReplay,
    NotReplayable,
    ProviderError,
    Providers,
    ReplayOptions,
    ReplayService,
    ScorerError,
    Selection,
    Unreachable,
)
from llmlens.replay.providers import DEFAULT_UPSTREAMS
from llmlens.replay.scorers import BUILTIN_SCORERS
from llmlens.replay.simulated import SimulatedTransport, simulated_upstreams
from llmlens.settings import Settings

from .._http import HttpError, json_object, read_body
from .._jsonable import jsonable
from .._params import page_params
from .._state import AppState, app_state
from .ui import render, templates

SERVICE = "replay"


def simulated_provider_on(settings: Settings) -> bool:
    """The demo's stand-in provider (replay/simulated.py): on with --demo unless turned off, or when asked for."""
    return settings.simulated_provider == "on" or (settings.simulated_provider == "auto" and settings.demo)


async def startup(state: AppState) -> None:
    config = state.settings.replay
    stand_in = simulated_provider_on(state.settings)
    providers = Providers(
        simulated_upstreams(state.settings.upstreams, DEFAULT_UPSTREAMS) if stand_in else state.settings.upstreams,
        os.environ,  # read once here, at the edge: keys for the upstreams
        timeout_s=float(config.get("timeout_s", 120)),
        key_source=KeySource.server(os.getpid()),  # errors say it is this process that lacks a key
        transport=SimulatedTransport() if stand_in else None,
        stand_in=stand_in,
    )

    async def record(spans: Sequence[Span]) -> None:
        await state.pipeline.ingest(spans, [])

    state.services[SERVICE] = ReplayService(
        state.store,
        providers,
        record,
        allowed_scorers=[str(s) for s in config.get("scorers", [])],
        concurrency=int(config.get("concurrency", 4)),
    )


async def shutdown(state: AppState) -> None:
    service: ReplayService | None = state.services.pop(SERVICE, None)
    if service is not None:
        await service.providers.aclose()


def _service(state: AppState) -> ReplayService:
    service: ReplayService | None = state.services.get(SERVICE)
    if service is None:
        raise HttpError(503, "replay is not running")
    return service


async def _read_doc(request: Request) -> dict[str, Any]:
    """A JSON object body, or a form (the UI): lists from repeated fields, JSON text fields parsed."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        doc: dict[str, Any] = {}
        for key in set(form.keys()):
            values = [str(v) for v in form.getlist(key)]
            doc[key] = values if key in ("scorers", "span_ids") else values[-1]
        return doc
    return json_object(await read_body(request, 1_000_000))


def _list(doc: dict[str, Any], name: str) -> list[str]:
    value = doc.get(name)
    if value in (None, ""):
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value if v.strip()]
    raise HttpError(400, f"{name} must be a list of strings or a comma-separated string")


def _json_field(doc: dict[str, Any], name: str, kind: type) -> Any:
    value = doc.get(name)
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            value = json.loads(value)
        except (ValueError, RecursionError) as exc:  # RecursionError: nested deeper than the parser follows
            raise HttpError(400, f"{name} is not valid JSON: {exc}") from None
    if value is not None and not isinstance(value, kind):
        raise HttpError(400, f"{name} must be a JSON {'array' if kind is list else 'object'}")
    return value


def _options(doc: dict[str, Any]) -> ReplayOptions:
    temperature = doc.get("temperature")
    if temperature in ("", None):
        temperature = None
    else:
        try:
            temperature = float(temperature)
        except (TypeError, ValueError):
            raise HttpError(400, f"temperature must be a number, got {temperature!r}") from None
    original = doc.get("original_params")
    return ReplayOptions(
        temperature=temperature,
        original_params=original in (True, "true", "on", "1", 1),
        messages=_json_field(doc, "messages", list),
        params=_json_field(doc, "params", dict),
    )


def _project(request: Request, state: AppState, doc: dict[str, Any]) -> str:
    # Never from the body: the auth middleware checks the header and the query parameter only.
    return str(
        request.headers.get("x-llmlens-project") or request.query_params.get("project") or state.settings.project
    )


def _answer(request: Request, template: str, context: dict[str, Any]) -> Response:
    if request.headers.get("hx-request") == "true":
        return templates.TemplateResponse(request, template, {"p": page_params(request, app_state(request)), **context})
    return JSONResponse(jsonable(context["result"]))


async def _run(coro: Any) -> Any:
    """Map replay errors to clear HTTP answers."""
    try:
        return await coro
    except NotFound as exc:
        raise HttpError(404, str(exc)) from None
    except (NotReplayable, NothingToReplay, ScorerError, ValueError) as exc:
        raise HttpError(422, str(exc)) from None
    except Unreachable as exc:
        raise HttpError(502, str(exc)) from None
    except ProviderError as exc:
        raise HttpError(400, str(exc)) from None


def _hx_errors(endpoint: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """For htmx, errors come back as a visible notice (htmx does not swap 4xx/5xx answers)."""

    async def wrapped(request: Request) -> Response:
        try:
            return await endpoint(request)
        except HttpError as exc:
            if request.headers.get("hx-request") != "true":
                raise
            from markupsafe import escape

            return HTMLResponse(f'<p class="notice error replay-error" role="alert">{escape(exc.message)}</p>')

    wrapped.__name__ = endpoint.__name__
    return wrapped


def _comparison_doc(comparison: Any) -> dict[str, Any]:
    doc: dict[str, Any] = asdict(comparison)
    doc["url"] = f"/replays/{comparison.run_id}"
    return doc


async def replay(request: Request) -> Response:
    state = app_state(request)
    doc = await _read_doc(request)
    span_id = doc.get("span_id")
    if not isinstance(span_id, str) or not span_id:
        raise HttpError(400, 'send {"span_id": "...", "models": [...]} (models default to the original one)')
    models = _list(doc, "models") or _list(doc, "model")
    service = _service(state)
    comparison = await _run(
        service.compare(
            _project(request, state, doc),
            Selection(span_ids=(span_id,)),
            models,
            _options(doc),
            _list(doc, "scorers"),
            template_version=doc.get("template_version") or None,
            run_id=doc.get("run_id") or None,
            parent_span_id=doc.get("parent_span_id") or None,
            group=doc.get("group") in (True, "true"),
        )
    )
    return _answer(request, "_replay_result.html", {"result": _comparison_doc(comparison), "c": comparison})


def _selection(doc: dict[str, Any]) -> Selection:
    filter_doc = _json_field(doc, "filter", dict)
    try:
        spec = CallFilter.from_mapping(filter_doc) if filter_doc else None
    except (TypeError, ValueError) as exc:
        raise HttpError(400, f"filter: {exc}") from None
    scope = doc.get("scope")
    span_ids = tuple(_list(doc, "span_ids") or _list(doc, "span_id"))
    trace_id = doc.get("trace_id") if scope in (None, "trace") else None
    session_id = doc.get("session_id") if scope in (None, "session") else None
    if scope == "call" or (span_ids and scope is None):
        trace_id = session_id = None
    selection = Selection(span_ids=span_ids, trace_id=trace_id or None, session_id=session_id or None, filter=spec)
    if not (span_ids or selection.trace_id or selection.session_id or spec):
        raise HttpError(400, "name the calls: span_ids, trace_id, session_id or filter")
    return selection


async def compare(request: Request) -> Response:
    state = app_state(request)
    doc = await _read_doc(request)
    selection = _selection(doc)
    service = _service(state)
    project = _project(request, state, doc)
    if doc.get("select_only") in (True, "true"):
        ids = await _run(service.select(project, selection))
        return JSONResponse({"span_ids": ids})
    models = _list(doc, "models")
    template_version = doc.get("template_version") or None
    if not models and not template_version:
        raise HttpError(400, "name the models to compare (models: [...]) or a template_version")
    comparison = await _run(
        service.compare(
            project,
            selection,
            models,
            _options(doc),
            _list(doc, "scorers"),
            template_version=template_version,
            run_id=doc.get("run_id") or None,
            parent_span_id=doc.get("parent_span_id") or None,
            group=doc.get("group") in (True, "true"),
        )
    )
    return _answer(request, "_replay_result.html", {"result": _comparison_doc(comparison), "c": comparison})


async def trace_replay(request: Request) -> Response:
    state = app_state(request)
    doc = await _read_doc(request)
    models = _list(doc, "models") or _list(doc, "model")
    model = models[0] if models else None
    service = _service(state)
    result = await _run(
        service.replay_trace(
            _project(request, state, doc),
            request.path_params["trace_id"],
            model,
            _options(doc),
            doc.get("template_version") or None,
        )
    )
    out = asdict(result)
    out["url"] = f"/replays/{result.run_id}"
    if request.headers.get("hx-request") == "true":
        context = {"result": out, "run": result, "kind": "trace"}
        return templates.TemplateResponse(request, "_replay_trace.html", {"p": page_params(request, state), **context})
    return JSONResponse(jsonable(out))


async def panel(request: Request) -> Response:
    """The Replay / Compare controls of one LLM span (loaded into the trace page by htmx)."""
    state = app_state(request)
    params = page_params(request, state)
    span_id = params.text("span_id")
    if not span_id:
        raise HttpError(400, "send ?span_id=...")
    service = _service(state)
    span = await _run(service.original(params.project, span_id))
    upstream = service.providers.upstream_of(span)
    context = {
        "p": params,
        "span": jsonable(span),
        "upstream": upstream.name,
        "simulated": upstream.simulated,  # the demo's stand-in answers: the panel says so before anything runs
        "upstreams": sorted(service.providers.upstreams),
        "builtin_scorers": [s for s in BUILTIN_SCORERS if not s.endswith(":")],
        "registered_scorers": list(service.allowed_scorers or []),
        "messages_json": json.dumps(span.get("input_messages") or [], indent=2, ensure_ascii=False),
        "params_json": json.dumps(span.get("request_params") or {}, indent=2, ensure_ascii=False),
    }
    return templates.TemplateResponse(request, "_replay_panel.html", context)


async def _stored(request: Request) -> dict[str, Any]:
    state = app_state(request)
    params = page_params(request, state)
    run = await _run(_service(state).stored_run(params.project, request.path_params["run_id"]))
    return {"p": params, "run": run, "result": jsonable(asdict(run)), "c": run.comparison}


async def run_page(request: Request) -> Response:
    try:
        context = await _stored(request)
    except HttpError as exc:
        return render(request, "error.html", {"status": exc.status, "message": exc.message}, status=exc.status)
    return render(request, "replay.html", {**context, "api_url": f"/api/v1/replays/{context['run'].run_id}"})


async def run_json(request: Request) -> Response:
    context = await _stored(request)
    return JSONResponse(context["result"])


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/replay", _hx_errors(replay), methods=["POST"]),
        Route("/api/v1/compare", _hx_errors(compare), methods=["POST"]),
        Route("/api/v1/traces/{trace_id}/replay", _hx_errors(trace_replay), methods=["POST"]),
        Route("/api/v1/replays/{run_id}", run_json, methods=["GET"]),
        Route("/replay/panel", panel, methods=["GET"]),
        Route("/replays/{run_id}", run_page, methods=["GET"]),
    ]
