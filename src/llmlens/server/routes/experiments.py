"""Experiments: `POST /api/v1/experiments` starts one (202, with its URL), `GET /api/v1/experiments[/{id}]` lists
them or gives one with its results; the `/experiments` and `/experiments/{experiment_id}` pages are their
HTML twins. `dataset` may be a name, or `{"name", "filter"}` to (re)fill that dataset from stored calls first
(what the Insights page's "smaller model" action sends).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from llmlens.quality import (
    DatasetError,
    Experiment,
    ExperimentError,
    ExperimentRunner,
    experiment_results,
)
from llmlens.store import Store

from .._forms import back_to, is_form, read_doc
from .._http import HttpError
from .._jsonable import jsonable
from .._params import page_params
from .._quality_tools import QualityTools, quality_tools
from .._request import request_project, request_store
from .._state import app_state
from .datasets import add_items


def _runner(tools: QualityTools) -> ExperimentRunner:
    if tools.runner is None:
        raise HttpError(503, "experiments need replay, which is not running on this server")
    return tools.runner


async def _form_experiment(request: Request) -> dict[str, Any]:
    form = await request.form()
    variants = [str(v).strip() for v in form.getlist("variant") if isinstance(v, str) and v.strip()]
    evaluators = [e.strip() for e in str(form.get("evaluators") or "").split(",") if e.strip()]
    doc: dict[str, Any] = {"dataset": str(form.get("dataset") or ""), "variants": variants, "evaluators": evaluators}
    for key in ("max_cost_usd", "concurrency"):
        raw = str(form.get(key) or "").strip()
        if raw:
            try:
                doc[key] = int(raw) if key == "concurrency" else float(raw)
            except ValueError:
                raise HttpError(400, f"{key} must be a number, got {raw!r}") from None
    if form.get("name"):
        doc["name"] = str(form.get("name"))
    return doc


async def start_experiment(request: Request) -> Response:
    state = app_state(request)
    tools = quality_tools(state)
    project = request_project(request)
    form = is_form(request)
    doc: dict[str, Any] = {}
    try:
        doc = await _form_experiment(request) if form else await read_doc(request)
        dataset = doc.get("dataset")
        if isinstance(dataset, dict) and "filter" in dataset:
            name = dataset.get("name")
            if not isinstance(name, str):
                raise HttpError(400, "dataset.name is required with dataset.filter")
            await run_in_threadpool(add_items, tools, request_store(request), project, name, dict(dataset))
            doc = {**doc, "dataset": name}
        try:
            experiment = await _runner(tools).start(project, doc)
        except (ExperimentError, DatasetError) as exc:
            raise HttpError(400, str(exc)) from None
    except HttpError as exc:
        if form:
            named = doc.get("dataset")
            target = f"/datasets/{named}" if isinstance(named, str) and named else "/experiments"
            return back_to(target, error=exc.message, **_sticky(request))
        raise
    if form:
        return back_to(experiment.url, **_sticky(request))
    return JSONResponse(
        {"id": experiment.id, "status": experiment.status, "url": experiment.url, "experiment": experiment.to_dict()},
        status_code=202,
    )


def _expected(tools: QualityTools, experiment: Experiment) -> dict[str, str | None]:
    try:
        items = tools.datasets.items(experiment.project, experiment.dataset, experiment.dataset_version)
    except DatasetError:
        return {}
    return {i.id: i.expected_output for i in items}


def experiment_doc(tools: QualityTools, store: Store, project: str, ident: str) -> dict[str, Any]:
    experiment = _runner(tools).get(project, ident)
    if experiment is None:
        raise HttpError(404, f"no experiment {ident!r} in project {project!r}")
    # The record as it is now, before the results are read: a running experiment keeps changing, and a
    # record that says "finished" must come with every output and score it finished with.
    record = {**experiment.to_dict(), "url": experiment.url, "finished": experiment.finished}
    results = experiment_results(store, experiment, _expected(tools, experiment))
    return {**record, "results": results.to_dict()}


async def get_experiment(request: Request) -> JSONResponse:
    tools = quality_tools(app_state(request))
    doc = await run_in_threadpool(
        experiment_doc, tools, request_store(request), request_project(request), request.path_params["experiment_id"]
    )
    return JSONResponse(jsonable(doc))


async def list_experiments(request: Request) -> JSONResponse:
    tools = quality_tools(app_state(request))
    project = request_project(request)
    found = await run_in_threadpool(_runner(tools).recent, project)
    return JSONResponse(jsonable({"project": project, "experiments": [{**e.to_dict(), "url": e.url} for e in found]}))


def _sticky(request: Request) -> dict[str, str]:
    project = request.query_params.get("project")
    return {"project": project} if project else {}


async def experiments_page(request: Request) -> Response:
    from .ui import render

    state = app_state(request)
    tools = quality_tools(state)
    project = request_project(request)
    found = await run_in_threadpool(_runner(tools).recent, project)
    context = {
        "p": page_params(request, state),
        "experiments": jsonable(
            [{**e.to_dict(), "created": dt.datetime.fromtimestamp(e.created_at, dt.UTC)} for e in found]
        ),
        "notice": request.query_params.get("notice"),
        "error": request.query_params.get("error"),
        "api_url": "/api/v1/experiments",
    }
    return render(request, "experiments.html", context)


async def experiment_page(request: Request) -> Response:
    from .ui import render

    state = app_state(request)
    tools = quality_tools(state)
    ident = request.path_params["experiment_id"]
    try:
        doc = await run_in_threadpool(experiment_doc, tools, request_store(request), request_project(request), ident)
    except HttpError as exc:
        return render(request, "error.html", {"status": exc.status, "message": exc.message}, status=exc.status)
    context = {
        "p": page_params(request, state),
        "e": jsonable(doc),
        "notice": request.query_params.get("notice"),
        "error": request.query_params.get("error"),
        "api_url": f"/api/v1/experiments/{ident}",
    }
    return render(request, "experiment.html", context)


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/experiments", list_experiments, methods=["GET"]),
        Route("/api/v1/experiments", start_experiment, methods=["POST"]),
        Route("/api/v1/experiments/{experiment_id}", get_experiment, methods=["GET"]),
        Route("/experiments", experiments_page, methods=["GET"]),
        Route("/experiments", start_experiment, methods=["POST"]),
        Route("/experiments/{experiment_id}", experiment_page, methods=["GET"]),
    ]
