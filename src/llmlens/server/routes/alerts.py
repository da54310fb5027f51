"""Alerts and forecast: the rules API, active alerts and history, run-now, the month-end forecast, and
the Alerts page (its JSON twin is GET /api/v1/alerts)."""

from __future__ import annotations

import contextvars
import dataclasses
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from llmlens.alerts import AlertService, RuleError, RuleSpec, forecast_month, parse_rule, utc_now
from llmlens.alerts.rules import DEFAULT_RULES, RuleLayers

from .._budgets import project_budgets
from .._http import HttpError, read_json_object
from .._jsonable import jsonable
from .._request import request_principal, request_project, require_server_admin
from .._state import AppState, app_state

SERVICE = "alerts"


def _service(state: AppState) -> AlertService:
    service = state.services.get(SERVICE)
    if not isinstance(service, AlertService):
        raise HttpError(503, "the alert evaluator is not running")
    return service


def _project(request: Request, state: AppState) -> str:
    return request_project(request)  # the caller's project when auth is on


# The rules API acts on the caller's project: its rules are the server-wide ones with the project's own
# changes on top, and a change made here applies to that project only. `?scope=server` acts on the
# server-wide layer instead (every project's rules): a server admin's job.


def _layer(request: Request, action: str) -> str | None:
    """The project whose rules the request changes, or None for the server-wide rules."""
    scope = request.query_params.get("scope", "project")
    if scope not in ("project", "server"):
        raise HttpError(400, f"scope must be 'project' (the default) or 'server', got {scope!r}")
    if scope == "server":
        require_server_admin(request, f"{action} the server-wide alert rules")
        return None
    return request_project(request)


def _rule_source(rule: RuleSpec, state: AppState, layers: RuleLayers, project: str | None) -> str:
    """api: changed through the API in this layer; server: by a server admin for every project;
    config: the config file; default: built in."""
    if project is not None and rule.name in layers.projects.get(project, {}):
        return "api"
    if rule.name in layers.server:
        return "api" if project is None else "server"
    if any(doc.get("name") == rule.name for doc in state.settings.alerts):
        return "config"
    return "default" if any(d.name == rule.name for d in DEFAULT_RULES) else "config"


def _rules_doc(state: AppState, project: str | None) -> list[dict[str, Any]]:
    engine = _service(state).engine
    layers = engine.history.rule_layers()
    return [{**r.to_dict(), "source": _rule_source(r, state, layers, project)} for r in engine.rules(project, layers)]


async def list_rules(request: Request) -> JSONResponse:
    state = app_state(request)
    project = _layer(request, "list")
    return JSONResponse(jsonable({"rules": await run_in_threadpool(_rules_doc, state, project)}))


def _parse(doc: dict[str, Any], project: str | None) -> RuleSpec:
    named = doc.get("project")
    if project is not None and named not in (None, project):
        raise HttpError(403, f"this request changes the alert rules of project {project!r}, not of {named!r}")
    try:
        rule = parse_rule(doc)
    except RuleError as exc:
        raise HttpError(422, str(exc)) from None
    return rule if project is None else dataclasses.replace(rule, project=project)


def _where(project: str | None) -> str:
    return "among the server-wide rules" if project is None else f"in project {project!r}"


async def create_rule(request: Request) -> JSONResponse:
    state = app_state(request)
    engine = _service(state).engine
    project = _layer(request, "change")
    rule = _parse(await read_json_object(request), project)

    def save() -> None:
        if engine.rule(rule.name, project) is not None:
            raise HttpError(
                409,
                f"alert rule {rule.name!r} exists {_where(project)}: PUT /api/v1/alerts/rules/{rule.name} replaces it",
            )
        engine.history.save_rule(rule.name, rule, utc_now(), project=project)

    await run_in_threadpool(save)
    return JSONResponse(jsonable({"rule": {**rule.to_dict(), "source": "api"}}), status_code=201)


async def replace_rule(request: Request) -> JSONResponse:
    """Create or replace a rule: in a project, a server-wide rule of that name is replaced there only."""
    state = app_state(request)
    engine = _service(state).engine
    project = _layer(request, "change")
    name = request.path_params["name"]
    doc = await read_json_object(request)
    if doc.setdefault("name", name) != name:
        raise HttpError(422, f"the body names rule {doc['name']!r} but the URL names {name!r}")
    rule = _parse(doc, project)
    await run_in_threadpool(lambda: engine.history.save_rule(name, rule, utc_now(), project=project))
    return JSONResponse(jsonable({"rule": {**rule.to_dict(), "source": "api"}}))


async def delete_rule(request: Request) -> JSONResponse:
    """Delete a rule: in a project, a server-wide rule of that name is hidden there only."""
    state = app_state(request)
    engine = _service(state).engine
    project = _layer(request, "change")
    name = request.path_params["name"]

    def delete() -> None:
        if engine.rule(name, project) is None:
            raise HttpError(404, f"no alert rule named {name!r} {_where(project)}")
        engine.history.save_rule(name, None, utc_now(), project=project)

    await run_in_threadpool(delete)
    return JSONResponse({"deleted": name})


def alerts_context(state: AppState, project: str) -> dict[str, Any]:
    service = _service(state)
    engine = service.engine
    last = engine.last_run
    evaluations = [e.to_dict() for e in last.evaluations if e.project == project] if last else []
    doc: dict[str, Any] = jsonable(
        {
            "project": project,
            "active": [t.to_dict() for t in engine.history.active(project)],
            "history": [t.to_dict() for t in engine.history.recent(project, limit=100)],
            "rules": _rules_doc(state, project),
            "last_run": {"at": last.at if last else None, "evaluations": evaluations},
            "interval_s": state.settings.alert_interval_s,
            "evaluator": service.evaluator_status(project),
        }
    )
    return doc


async def list_alerts(request: Request) -> JSONResponse:
    state = app_state(request)
    return JSONResponse(await run_in_threadpool(alerts_context, state, _project(request, state)))


async def evaluate_now(request: Request) -> JSONResponse:
    """Run every rule once now. `?dry_run=1` only reports: no state change, no notification."""
    state = app_state(request)
    engine = _service(state).engine
    dry_run = request.query_params.get("dry_run", "").lower() in ("1", "true", "yes")
    # Without auth and without a project named, every project is reported (as `llmlens alerts check`).
    named = (
        request_principal(request).project
        or request.headers.get("x-llmlens-project")
        or request.query_params.get("project")
    )
    project = _project(request, state) if named else None
    if dry_run:
        result = await run_in_threadpool(engine.evaluate_all, None, project=project)
    else:
        # A real run moves every project's states, as the schedule does: it must not run confined to
        # the caller's project (the store would hide the others' data and resolve their alerts).
        result = await run_in_threadpool(contextvars.Context().run, engine.run_once)
    return JSONResponse(
        jsonable(
            {
                "at": result.at,
                "project": project,
                "dry_run": dry_run,
                "firing": [e.to_dict() for e in result.firing if project in (None, e.project)],
                "evaluations": [e.to_dict() for e in result.evaluations if project in (None, e.project)],
                "transitions": [t.to_dict() for t in result.transitions if project in (None, t.project)],
                "errors": [e for e in result.errors if project in (None, e["project"])],
            }
        )
    )


async def forecast(request: Request) -> JSONResponse:
    state = app_state(request)
    project = _project(request, state)
    doc = await run_in_threadpool(forecast_month, state.store, project, utc_now())
    return JSONResponse(jsonable(doc))


async def alerts_page(request: Request) -> Response:
    from .ui import render

    state = app_state(request)
    project = _project(request, state)
    context = await run_in_threadpool(alerts_context, state, project)
    return render(request, "alerts.html", {"alerts": context, "api_url": "/api/v1/alerts" + _query(request)})


def _query(request: Request) -> str:
    return f"?{request.url.query}" if request.url.query else ""


async def startup(state: AppState) -> None:
    budgets = project_budgets(state)
    service = AlertService(
        state.store, state.settings, budgets_for=lambda project: budgets.policy_for(project).to_config()
    )
    service.start()
    state.services[SERVICE] = service


async def shutdown(state: AppState) -> None:
    service = state.services.pop(SERVICE, None)
    if isinstance(service, AlertService):
        await run_in_threadpool(service.stop)


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/alerts/rules", list_rules, methods=["GET"]),
        Route("/api/v1/alerts/rules", create_rule, methods=["POST"]),
        Route("/api/v1/alerts/rules/{name:path}", replace_rule, methods=["PUT"]),
        Route("/api/v1/alerts/rules/{name:path}", delete_rule, methods=["DELETE"]),
        Route("/api/v1/alerts/evaluate", evaluate_now, methods=["POST"]),
        Route("/api/v1/alerts", list_alerts, methods=["GET"]),
        Route("/api/v1/forecast", forecast, methods=["GET"]),
        Route("/alerts", alerts_page, methods=["GET"]),
    ]
