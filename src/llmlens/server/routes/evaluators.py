"""Online evaluators: their rules (`/api/v1/evaluators/rules`), judge templates (`/api/v1/evaluators/templates`),
what can be chosen (`GET /api/v1/evaluators`), and the `/evaluators` page (its HTML twin), where rules are
made, turned off and removed and templates edited. Starts the quality services (`_quality_tools.py`).

A rule made here belongs to the caller's project; a rule of llmlens.toml applies to every project (or the
one it names) and is turned off in one project by putting a rule of the same name with `enabled = false`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from llmlens.quality import (
    EvaluatorRule,
    RuleError,
    RuleStatus,
    TemplateError,
    catalogue,
    scores_today,
    spend_today,
    utc_day,
)
from llmlens.store import Store

from .._forms import back_to, is_form, read_doc
from .._http import HttpError
from .._jsonable import jsonable
from .._params import page_params
from .._quality_tools import QualityTools, quality_tools, start_quality_tools, stop_quality_tools
from .._request import request_project, request_store
from .._state import AppState, app_state

_FORM_NUMBERS = ("sample_rate", "daily_budget_usd")


async def startup(state: AppState) -> None:
    await start_quality_tools(state)


async def shutdown(state: AppState) -> None:
    await stop_quality_tools(state)


def _status_doc(rule: EvaluatorRule, status: RuleStatus, scores: int, tools: QualityTools) -> dict[str, Any]:
    try:
        names = rule.build(tools.book.templates(rule.project or ""), None).score_names()
    except RuleError:
        names = []
    return {
        **rule.to_dict(),
        "state": status.state(rule),
        "scores": names,
        "today": {
            "day": status.day,
            "spend_usd": round(status.spend_usd, 8),
            "judge_calls": status.judge_calls,
            "errors": status.errors,
            "scores_written": scores,
            "skipped_over_budget": status.skipped_budget,
            "budget_left_usd": (
                round(max(0.0, rule.daily_budget_usd - status.spend_usd), 8) if rule.daily_budget_usd > 0 else None
            ),
        },
        "since_start": {
            "evaluated": status.evaluated,
            "sampled_out": status.sampled_out,
            "not_applicable": status.not_applicable,
            "scores_written": status.scores_written,
        },
        "last_error": status.last_error,
        "last_error_at": status.last_error_at,
        "last_evaluated_at": status.last_evaluated_at,
    }


def rules_doc(tools: QualityTools, store: Store, project: str) -> dict[str, Any]:
    """Every rule of the project with its state: today's figures read from the store (so that they hold
    after a restart and across servers), the rest from this server's evaluator thread."""
    day = utc_day(tools.online.clock())
    spent = spend_today(store, project, day)
    written = scores_today(store, project, day)
    rules = []
    for rule in tools.book.rules(project):
        # A copy: the evaluator thread owns the live one. Today's figures are the store's (every server's).
        spend, errors, calls = spent.get(rule.name, (0.0, 0, 0))
        live = tools.online.status(project, rule.name)
        status = dataclasses.replace(
            live,
            spend_usd=spend,
            errors=errors,
            judge_calls=calls,
            day=day.date().isoformat(),
            skipped_budget=live.skipped_budget if live.day == day.date().isoformat() else 0,
        )
        rules.append(_status_doc(rule, status, written.get(rule.name, 0), tools))
    return {
        "project": project,
        "rules": rules,
        "broken": tools.book.broken(project),
        "judge_model": tools.judge.model,
        "interval_s": tools.online.interval_s,
    }


def _rule_body(doc: dict[str, Any]) -> dict[str, Any]:
    """A rule from the page's form: flat fields, numbers as text."""
    out = dict(doc)
    for key in _FORM_NUMBERS:
        if isinstance(out.get(key), str):
            try:
                out[key] = float(out[key])
            except ValueError:
                raise HttpError(400, f"{key} must be a number, got {out[key]!r}") from None
    if isinstance(out.get("enabled"), str):
        out["enabled"] = out["enabled"] in ("true", "on", "1")
    return out


async def catalogue_json(request: Request) -> JSONResponse:
    tools = quality_tools(app_state(request))
    project = request_project(request)
    doc = catalogue(tools.book.templates(project), tools.book.allowed_functions)
    return JSONResponse({"project": project, "judge_model": tools.judge.model, **doc})


async def list_rules(request: Request) -> JSONResponse:
    tools = quality_tools(app_state(request))
    doc = await run_in_threadpool(rules_doc, tools, request_store(request), request_project(request))
    return JSONResponse(jsonable(doc))


def _one_rule(tools: QualityTools, store: Store, project: str, name: str) -> dict[str, Any]:
    listed: list[dict[str, Any]] = rules_doc(tools, store, project)["rules"]
    found = next((r for r in listed if r["name"] == name), None)
    if found is None:
        raise HttpError(404, f"no evaluator rule {name!r} in project {project!r}")
    return found


async def get_rule(request: Request) -> JSONResponse:
    tools = quality_tools(app_state(request))
    doc = await run_in_threadpool(
        _one_rule, tools, request_store(request), request_project(request), request.path_params["rule"]
    )
    return JSONResponse(jsonable(doc))


async def _save_rule(request: Request, doc: dict[str, Any], *, create: bool) -> EvaluatorRule:
    tools = quality_tools(app_state(request))
    project = request_project(request)
    if create and doc.get("name") and tools.book.rule(project, str(doc["name"])) is not None:
        raise HttpError(409, f"evaluator rule {doc['name']!r} exists in this project: PUT it to change it")
    try:
        return await run_in_threadpool(tools.book.put_rule, project, doc)
    except (RuleError, ValueError) as exc:
        raise HttpError(400, str(exc)) from None


async def create_rule(request: Request) -> Response:
    form = is_form(request)
    doc = _rule_body(await read_doc(request))
    try:
        rule = await _save_rule(request, doc, create=True)
    except HttpError as exc:
        if form:
            return back_to("/evaluators", error=exc.message, **_sticky(request))
        raise
    if form:
        return back_to("/evaluators", notice=f"rule {rule.name} created", **_sticky(request))
    return JSONResponse({"rule": rule.to_dict()}, status_code=201)


async def put_rule(request: Request) -> JSONResponse:
    doc = _rule_body(await read_doc(request))
    doc["name"] = request.path_params["rule"]
    rule = await _save_rule(request, doc, create=False)
    return JSONResponse({"rule": rule.to_dict()})


async def delete_rule(request: Request) -> JSONResponse:
    tools = quality_tools(app_state(request))
    project = request_project(request)
    name = request.path_params["rule"]
    deleted = await run_in_threadpool(tools.book.delete_rule, project, name)
    if not deleted:
        if tools.book.is_configured(project, name):
            raise HttpError(
                409,
                f"evaluator rule {name!r} comes from llmlens.toml: PUT it with enabled = false to turn it off "
                "in this project",
            )
        raise HttpError(404, f"no evaluator rule {name!r} made in project {project!r}")
    return JSONResponse({"deleted": name})


async def rule_form_action(request: Request) -> Response:
    """The page's buttons: turn a rule on or off, or delete it (`action` = enable | disable | delete)."""
    tools = quality_tools(app_state(request))
    project = request_project(request)
    name = request.path_params["rule"]
    doc = await read_doc(request)
    action = doc.get("action")
    try:
        if action == "delete":
            if not await run_in_threadpool(tools.book.delete_rule, project, name):
                raise HttpError(409, f"rule {name} comes from llmlens.toml; disable it instead")
            return back_to("/evaluators", notice=f"rule {name} deleted", **_sticky(request))
        if action in ("enable", "disable"):
            rule = tools.book.rule(project, name)
            if rule is None:
                raise HttpError(404, f"no evaluator rule {name!r}")
            body = {k: v for k, v in rule.to_dict().items() if k not in ("source", "project")}
            body["enabled"] = action == "enable"
            await run_in_threadpool(tools.book.put_rule, project, body)
            return back_to("/evaluators", notice=f"rule {name} {action}d", **_sticky(request))
        raise HttpError(400, "action must be enable, disable or delete")
    except (HttpError, RuleError) as exc:
        message = exc.message if isinstance(exc, HttpError) else str(exc)
        return back_to("/evaluators", error=message, **_sticky(request))


def _template_doc(template: Any) -> dict[str, Any]:
    return {
        "name": template.name,
        "score": template.score_name,
        "description": template.description,
        "text": template.text,
        "version": template.version,
        "needs": list(template.needs),
        "per_chunk": template.per_chunk,
        "higher_is_better": template.higher_is_better,
        "builtin": template.builtin,
    }


async def list_templates(request: Request) -> JSONResponse:
    tools = quality_tools(app_state(request))
    project = request_project(request)
    templates = await run_in_threadpool(tools.book.templates, project)
    return JSONResponse({"project": project, "templates": [_template_doc(t) for t in templates.values()]})


async def get_template(request: Request) -> JSONResponse:
    tools = quality_tools(app_state(request))
    project = request_project(request)
    name = request.path_params["template_name"]
    found = (await run_in_threadpool(tools.book.templates, project)).get(name)
    if found is None:
        raise HttpError(404, f"no judge template {name!r} in project {project!r}")
    return JSONResponse(_template_doc(found))


async def put_template(request: Request) -> Response:
    tools = quality_tools(app_state(request))
    project = request_project(request)
    name = request.path_params["template_name"]
    form = is_form(request)
    doc = await read_doc(request)
    if isinstance(doc.get("higher_is_better"), str):
        doc["higher_is_better"] = doc["higher_is_better"] in ("true", "on", "1")
    try:
        template = await run_in_threadpool(tools.book.put_template, project, name, doc)
    except TemplateError as exc:
        if form:
            return back_to("/evaluators", error=f"template {name}: {exc}", **_sticky(request))
        raise HttpError(400, f"template {name}: {exc}") from None
    if form:
        return back_to("/evaluators", notice=f"template {name} saved", **_sticky(request))
    return JSONResponse(_template_doc(template))


async def delete_template(request: Request) -> JSONResponse:
    tools = quality_tools(app_state(request))
    project = request_project(request)
    name = request.path_params["template_name"]
    if not await run_in_threadpool(tools.book.delete_template, project, name):
        raise HttpError(404, f"project {project!r} has no template {name!r} of its own")
    return JSONResponse(
        {"deleted": name, "now": "the built-in wording" if name in tools.book.templates(project) else None}
    )


def _sticky(request: Request) -> dict[str, str]:
    project = request.query_params.get("project")
    return {"project": project} if project else {}


async def evaluators_page(request: Request) -> Response:
    from .ui import render

    state = app_state(request)
    tools = quality_tools(state)
    project = request_project(request)
    params = page_params(request, state)
    doc = await run_in_threadpool(rules_doc, tools, request_store(request), project)
    templates = await run_in_threadpool(tools.book.templates, project)
    context = {
        "p": params,
        "doc": jsonable(doc),
        "templates": [_template_doc(t) for t in templates.values()],
        "catalogue": catalogue(templates, tools.book.allowed_functions),
        "notice": request.query_params.get("notice"),
        "error": request.query_params.get("error"),
        "api_url": "/api/v1/evaluators/rules",
    }
    return render(request, "evaluators.html", context)


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/evaluators", catalogue_json, methods=["GET"]),
        Route("/api/v1/evaluators/rules", list_rules, methods=["GET"]),
        Route("/api/v1/evaluators/rules", create_rule, methods=["POST"]),
        Route("/api/v1/evaluators/rules/{rule}", get_rule, methods=["GET"]),
        Route("/api/v1/evaluators/rules/{rule}", put_rule, methods=["PUT"]),
        Route("/api/v1/evaluators/rules/{rule}", delete_rule, methods=["DELETE"]),
        Route("/api/v1/evaluators/templates", list_templates, methods=["GET"]),
        Route("/api/v1/evaluators/templates/{template_name}", get_template, methods=["GET"]),
        Route("/api/v1/evaluators/templates/{template_name}", put_template, methods=["PUT", "POST"]),
        Route("/api/v1/evaluators/templates/{template_name}", delete_template, methods=["DELETE"]),
        Route("/evaluators", evaluators_page, methods=["GET"]),
        Route("/evaluators", create_rule, methods=["POST"]),
        Route("/evaluators/rules/{rule}", rule_form_action, methods=["POST"]),
    ]
