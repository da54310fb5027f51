"""Datasets: `/api/v1/datasets` (list, create), `/api/v1/datasets/{dataset}` (items of a version, delete), adding
items (`.../items`: objects, or the calls a trace-list filter picks), uploading JSON Lines or CSV (`.../upload`),
removing an item; the `/datasets` and `/datasets/{dataset}` pages (their HTML twins).

Adding answers like ingest: `{"accepted", "rejected": [{"index", "error"}], "version"}`, every valid item kept.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from llmlens.codec.json_text import loads_untrusted
from llmlens.quality import (
    DatasetError,
    DatasetItem,
    ItemError,
    SelectionError,
    UploadError,
    item_from_doc,
    items_from_calls,
    parse_selection,
    parse_upload,
)

from .._forms import back_to, is_form, read_doc
from .._http import HttpError, read_body
from .._jsonable import jsonable
from .._params import page_params
from .._quality_tools import QualityTools, quality_tools
from .._request import request_project, request_store
from .._state import app_state

MAX_UPLOAD_BYTES = 50 * 1024 * 1024


def _filter_items(
    tools: QualityTools, store: Any, project: str, raw: Any, expected_from_output: bool
) -> tuple[list[DatasetItem], list[str], str]:
    if not isinstance(raw, dict):
        raise HttpError(400, 'filter must be an object of trace-list filters, e.g. {"feature": "chat", "range": "7d"}')
    try:
        selection = parse_selection(raw)
    except SelectionError as exc:
        raise HttpError(400, f"filter: {exc}") from None
    items, skipped = items_from_calls(store, project, selection, expected_from_output=expected_from_output)
    return items, skipped, f"from calls ({selection.describe()})"


def _given_items(raw: Any) -> tuple[list[DatasetItem], list[tuple[int, str]]]:
    if not isinstance(raw, list):
        raise HttpError(400, "items must be a JSON array of item objects")
    items: list[DatasetItem] = []
    rejected: list[tuple[int, str]] = []
    for index, doc in enumerate(raw):
        try:
            items.append(item_from_doc(doc))
        except ItemError as exc:
            rejected.append((index, str(exc)))
    return items, rejected


def add_items(tools: QualityTools, store: Any, project: str, name: str, doc: dict[str, Any]) -> dict[str, Any]:
    """Items given (`items`), or picked by `filter`; the dataset is made when it does not exist."""
    description = doc.get("description") or ""
    if not isinstance(description, str):
        raise HttpError(400, "description must be a string")
    rejected: list[tuple[int, str]] = []
    skipped: list[str] = []
    if "filter" in doc:
        items, skipped, change = _filter_items(
            tools, store, project, doc["filter"], doc.get("expected_from_output") is True
        )
    elif "items" in doc:
        items, rejected = _given_items(doc["items"])
        change = "items added"
    else:
        items, change = [], "created"
    try:
        dataset, changed = tools.datasets.add(project, name, items, change, description)
    except DatasetError as exc:
        raise HttpError(400, str(exc)) from None
    return {
        "dataset": dataset.to_dict(),
        "version": dataset.version,
        "accepted": len(items),
        "changed": changed,
        "rejected": [{"index": i, "error": e} for i, e in rejected],
        "skipped_calls": skipped,
        "url": f"/datasets/{dataset.name}",
    }


async def list_datasets(request: Request) -> JSONResponse:
    tools = quality_tools(app_state(request))
    project = request_project(request)
    found = await run_in_threadpool(tools.datasets.datasets, project)
    return JSONResponse({"project": project, "datasets": [d.to_dict() for d in found]})


async def create_dataset(request: Request) -> Response:
    tools = quality_tools(app_state(request))
    project = request_project(request)
    form = is_form(request)
    doc = await read_doc(request)
    if form:  # the page's form: filter fields flat, as the trace list's URL has them
        doc = _form_dataset(doc)
    name = doc.get("name")
    try:
        if not isinstance(name, str):
            raise HttpError(400, "name is required: letters, digits and _.- ")
        answer = await run_in_threadpool(add_items, tools, request_store(request), project, name, doc)
    except HttpError as exc:
        if form:
            return back_to("/datasets", error=exc.message, **_sticky(request))
        raise
    if form:
        return back_to(
            f"/datasets/{name}",
            notice=f"{answer['accepted']} call(s) added: version {answer['version']}",
            **_sticky(request),
        )
    return JSONResponse(jsonable(answer), status_code=201)


_FORM_FILTERS = (
    "feature",
    "model",
    "template_id",
    "template_version",
    "user_id",
    "feedback",
    "score",
    "status",
    "q",
    "range",
    "limit",
)


def _form_dataset(doc: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {k: doc[k] for k in ("name", "description") if k in doc}
    out["filter"] = {k: doc[k] for k in _FORM_FILTERS if k in doc}
    out["expected_from_output"] = doc.get("expected_from_output") in ("on", "true", "1")
    return out


async def get_dataset(request: Request) -> JSONResponse:
    doc = await run_in_threadpool(_dataset_doc, request)
    return JSONResponse(jsonable(doc))


def _dataset_doc(request: Request) -> dict[str, Any]:
    tools = quality_tools(app_state(request))
    project = request_project(request)
    name = request.path_params["dataset"]
    dataset = tools.datasets.get(project, name)
    if dataset is None:
        raise HttpError(404, f"no dataset {name!r} in project {project!r}")
    raw = request.query_params.get("version")
    if raw is not None and not raw.isdigit():
        raise HttpError(400, f"version must be a whole number, got {raw!r}")
    try:
        items = tools.datasets.items(project, name, int(raw) if raw else None)
    except DatasetError as exc:
        raise HttpError(404, str(exc)) from None
    return {
        **dataset.to_dict(),
        "shown_version": int(raw) if raw else dataset.version,
        "items_list": [i.to_dict() for i in items],
    }


async def delete_dataset(request: Request) -> JSONResponse:
    tools = quality_tools(app_state(request))
    project = request_project(request)
    name = request.path_params["dataset"]
    if not await run_in_threadpool(tools.datasets.delete, project, name):
        raise HttpError(404, f"no dataset {name!r} in project {project!r}")
    return JSONResponse({"deleted": name})


async def post_items(request: Request) -> JSONResponse:
    tools = quality_tools(app_state(request))
    project = request_project(request)
    name = request.path_params["dataset"]
    body = await read_body(request, app_state(request).settings.max_body_bytes)
    try:
        parsed = loads_untrusted(body or b"")
    except ValueError as exc:
        raise HttpError(400, f"body is not valid JSON: {exc}") from None
    if isinstance(parsed, list):
        doc: dict[str, Any] = {"items": parsed}
    elif isinstance(parsed, dict):
        doc = parsed
    else:
        raise HttpError(400, 'send a JSON array of items, {"items": [...]}, or {"filter": {...}}')
    answer = await run_in_threadpool(add_items, tools, request_store(request), project, name, doc)
    return JSONResponse(jsonable(answer))


async def upload(request: Request) -> JSONResponse:
    tools = quality_tools(app_state(request))
    project = request_project(request)
    name = request.path_params["dataset"]
    body = await read_body(request, MAX_UPLOAD_BYTES)
    filename = request.query_params.get("filename", "")
    try:
        parsed = parse_upload(body, request.headers.get("content-type", ""), filename)
    except UploadError as exc:
        raise HttpError(415 if "send JSON Lines" in str(exc) else 400, str(exc)) from None
    items = [x for _, x in parsed if isinstance(x, DatasetItem)]
    rejected = [{"index": i, "error": x} for i, x in parsed if isinstance(x, str)]
    try:
        dataset, changed = await run_in_threadpool(
            tools.datasets.add, project, name, items, f"uploaded {filename or 'a file'}"
        )
    except DatasetError as exc:
        raise HttpError(400, str(exc)) from None
    return JSONResponse(
        jsonable(
            {
                "dataset": dataset.to_dict(),
                "version": dataset.version,
                "accepted": len(items),
                "changed": changed,
                "rejected": rejected,
            }
        )
    )


async def delete_item(request: Request) -> JSONResponse:
    tools = quality_tools(app_state(request))
    project = request_project(request)
    name, item = request.path_params["dataset"], request.path_params["item_id"]
    try:
        dataset, removed = await run_in_threadpool(tools.datasets.remove, project, name, [item])
    except DatasetError as exc:
        raise HttpError(404, str(exc)) from None
    if not removed:
        raise HttpError(404, f"dataset {name!r} has no item {item!r}")
    return JSONResponse({"dataset": dataset.to_dict(), "version": dataset.version, "removed": item})


def _sticky(request: Request) -> dict[str, str]:
    project = request.query_params.get("project")
    return {"project": project} if project else {}


async def datasets_page(request: Request) -> Response:
    from .ui import render

    state = app_state(request)
    tools = quality_tools(state)
    project = request_project(request)
    found = await run_in_threadpool(tools.datasets.datasets, project)
    context = {
        "p": page_params(request, state),
        "datasets": [d.to_dict() for d in found],
        "notice": request.query_params.get("notice"),
        "error": request.query_params.get("error"),
        "api_url": "/api/v1/datasets",
    }
    return render(request, "datasets.html", context)


async def dataset_page(request: Request) -> Response:
    from .ui import render

    state = app_state(request)
    tools = quality_tools(state)
    try:
        doc = await run_in_threadpool(_dataset_doc, request)
    except HttpError as exc:
        return render(request, "error.html", {"status": exc.status, "message": exc.message}, status=exc.status)
    project = request_project(request)
    experiments = [
        e.to_dict() for e in (tools.runner.recent(project) if tools.runner else []) if e.dataset == doc["name"]
    ]
    context = {
        "p": page_params(request, state),
        "d": jsonable(doc),
        "experiments": jsonable(experiments),
        "judges": sorted(tools.book.templates(project)),
        "notice": request.query_params.get("notice"),
        "error": request.query_params.get("error"),
        "api_url": f"/api/v1/datasets/{doc['name']}",
    }
    return render(request, "dataset.html", context)


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/datasets", list_datasets, methods=["GET"]),
        Route("/api/v1/datasets", create_dataset, methods=["POST"]),
        Route("/api/v1/datasets/{dataset}", get_dataset, methods=["GET"]),
        Route("/api/v1/datasets/{dataset}", delete_dataset, methods=["DELETE"]),
        Route("/api/v1/datasets/{dataset}/items", post_items, methods=["POST"]),
        Route("/api/v1/datasets/{dataset}/upload", upload, methods=["POST"]),
        Route("/api/v1/datasets/{dataset}/items/{item_id}", delete_item, methods=["DELETE"]),
        Route("/datasets", datasets_page, methods=["GET"]),
        Route("/datasets", create_dataset, methods=["POST"]),
        Route("/datasets/{dataset}", dataset_page, methods=["GET"]),
    ]
