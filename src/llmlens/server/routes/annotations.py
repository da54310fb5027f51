"""Annotation queues: `/api/v1/annotation-queues` (list, create from a trace-list filter), one queue with its
progress per reviewer, the caller's next call to review, and reviews (`.../reviews`: a score, or a skip);
the `/annotations` page (queues) and `/annotations/{queue}` (one call at a time, score buttons, a comment box,
keyboard shortcuts), which are their HTML twins. A review is a score with source `human`; the reviewer is the
logged-in user (or the API key), `anonymous` when auth is off.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from llmlens.quality import (
    AnnotationQueue,
    QueueError,
    SelectionError,
    context_before,
    load_spans,
    next_item,
    parse_selection,
    progress,
    record_scores,
    review_score,
    reviews,
    select_calls,
    trace_spans,
)
from llmlens.store import Store

from .._forms import back_to, is_form, read_doc
from .._http import HttpError
from .._jsonable import jsonable
from .._params import page_params
from .._quality_tools import QualityTools, quality_tools
from .._request import request_principal, request_project, request_store
from .._state import app_state
from .scores import score_transforms


def reviewer_of(request: Request) -> str:
    principal = request_principal(request)
    return "anonymous" if principal.kind == "anonymous" else principal.name


def _queue(tools: QualityTools, project: str, name: str) -> AnnotationQueue:
    found = tools.queues.get(project, name)
    if found is None:
        raise HttpError(404, f"no annotation queue {name!r} in project {project!r}")
    return found


def _summary(queue: AnnotationQueue, given: list[tuple[str, str]]) -> dict[str, Any]:
    doc = queue.to_dict()
    doc["items"] = len(queue.items)
    doc["progress"] = progress(given, queue).to_dict()
    doc["choices"] = [{"value": v, "label": c} for v, c in queue.score.choices()]
    return doc


def queues_doc(tools: QualityTools, store: Store, project: str) -> dict[str, Any]:
    return {"project": project, "queues": [_summary(q, reviews(store, q)) for q in tools.queues.queues(project)]}


def create_queue(tools: QualityTools, store: Store, project: str, doc: dict[str, Any], creator: str) -> AnnotationQueue:
    raw = doc.get("filter") or {}
    if not isinstance(raw, dict):
        raise HttpError(400, 'filter must be an object of trace-list filters, e.g. {"feature": "chat", "range": "7d"}')
    try:
        selection = parse_selection(raw)
        span_ids = select_calls(store, project, selection)
        return tools.queues.create(project, {**doc, "filter": selection.to_dict()}, span_ids, creator)
    except (SelectionError, QueueError) as exc:
        raise HttpError(400, str(exc)) from None


def call_doc(store: Store, project: str, span_id: str) -> dict[str, Any]:
    """What a reviewer sees of one call: its messages, answer, the chunks it was given, where it ran."""
    rows = load_spans(store, project, [span_id])
    if not rows:
        raise HttpError(404, f"no call {span_id!r} in project {project!r}")
    row = rows[0]
    trace = trace_spans(store, project, [str(row["trace_id"])]).get(str(row["trace_id"]), [])
    messages = row.get("input_messages")
    if not isinstance(messages, list) or not messages:
        messages = [{"role": "user", "content": row.get("prompt") or ""}]
    return {
        "span_id": row["span_id"],
        "trace_id": row["trace_id"],
        "message_id": row.get("message_id"),
        "timestamp": row.get("timestamp"),
        "model": row.get("model"),
        "feature": row.get("feature"),
        "template": f"{row.get('template_id')}@{row.get('template_version')}" if row.get("template_id") else None,
        "messages": messages,
        "response": row.get("response"),
        "tool_calls": row.get("tool_calls"),
        "context": [{"content": c.content, "id": c.id} for c in context_before(row, trace)],
    }


def next_doc(tools: QualityTools, store: Store, project: str, name: str, reviewer: str) -> dict[str, Any]:
    queue = _queue(tools, project, name)
    given = reviews(store, queue)
    span = next_item(given, queue, reviewer, tools.queues.skipped(project, name, reviewer))
    summary = _summary(queue, given)
    mine = next((r["reviewed"] for r in summary["progress"]["by_reviewer"] if r["reviewer"] == reviewer), 0)
    return {
        "queue": summary,
        "reviewer": reviewer,
        "reviewed_by_you": mine,
        "done": span is None,
        "call": call_doc(store, project, span) if span is not None else None,
    }


def submit_review(
    tools: QualityTools, state: Any, store: Store, project: str, name: str, reviewer: str, doc: dict[str, Any]
) -> dict[str, Any]:
    queue = _queue(tools, project, name)
    span_id = doc.get("span_id")
    if not isinstance(span_id, str) or span_id not in queue.items:
        raise HttpError(400, f"span_id must name a call of queue {name!r}")
    if doc.get("skip") in (True, "true", "1", "on"):
        tools.queues.skip(project, name, reviewer, span_id)
        return {"skipped": span_id}
    comment = doc.get("comment")
    if comment is not None and not isinstance(comment, str):
        raise HttpError(400, "comment must be a string")
    rows = load_spans(store, project, [span_id])
    if not rows:
        raise HttpError(404, f"no call {span_id!r} in project {project!r}")
    try:
        score = review_score(queue, rows[0], reviewer, doc.get("value"), comment)
    except QueueError as exc:
        raise HttpError(400, str(exc)) from None
    recorded = record_scores(store, [(0, score)], score_transforms(state))
    if recorded.rejected:
        raise HttpError(400, recorded.rejected[0][1])
    return {"score_id": recorded.score_ids[0], "name": score.name, "value": score.value, "label": score.label}


# -- API ------------------------------------------------------------------------------------------


async def list_queues(request: Request) -> JSONResponse:
    tools = quality_tools(app_state(request))
    doc = await run_in_threadpool(queues_doc, tools, request_store(request), request_project(request))
    return JSONResponse(jsonable(doc))


async def post_queue(request: Request) -> Response:
    tools = quality_tools(app_state(request))
    project = request_project(request)
    form = is_form(request)
    doc = await read_doc(request)
    if form:
        doc = _form_queue(doc)
    try:
        queue = await run_in_threadpool(create_queue, tools, request_store(request), project, doc, reviewer_of(request))
    except HttpError as exc:
        if form:
            return back_to("/annotations", error=exc.message, **_sticky(request))
        raise
    if form:
        return back_to(f"/annotations/{queue.name}", **_sticky(request))
    return JSONResponse(jsonable({**_summary(queue, []), "url": f"/annotations/{queue.name}"}), status_code=201)


def _form_queue(doc: dict[str, Any]) -> dict[str, Any]:
    filters = ("feature", "model", "template_id", "feedback", "score", "status", "range", "limit", "q")
    score: dict[str, Any] = {"name": doc.get("score_name") or "quality", "type": doc.get("score_type") or "numeric"}
    if score["type"] == "categorical":
        score["labels"] = [x.strip() for x in str(doc.get("labels", "")).split(",") if x.strip()]
    out: dict[str, Any] = {"name": doc.get("name"), "description": doc.get("description", ""), "score": score}
    out["filter"] = {k: doc[k] for k in filters if k in doc and k != "score"}
    if "filter_score" in doc:
        out["filter"]["score"] = doc["filter_score"]
    return out


async def get_queue(request: Request) -> JSONResponse:
    tools = quality_tools(app_state(request))
    doc = await run_in_threadpool(
        next_doc,
        tools,
        request_store(request),
        request_project(request),
        request.path_params["queue"],
        reviewer_of(request),
    )
    return JSONResponse(jsonable(doc))


async def delete_queue(request: Request) -> JSONResponse:
    tools = quality_tools(app_state(request))
    project = request_project(request)
    name = request.path_params["queue"]
    if not await run_in_threadpool(tools.queues.delete, project, name):
        raise HttpError(404, f"no annotation queue {name!r} in project {project!r}")
    return JSONResponse({"deleted": name})


async def post_review(request: Request) -> Response:
    state = app_state(request)
    tools = quality_tools(state)
    project = request_project(request)
    name = request.path_params["queue"]
    form = is_form(request)
    doc = await read_doc(request)
    try:
        answer = await run_in_threadpool(
            submit_review, tools, state, request_store(request), project, name, reviewer_of(request), doc
        )
    except HttpError as exc:
        if form:
            return back_to(f"/annotations/{name}", error=exc.message, **_sticky(request))
        raise
    if form:
        notice = "skipped" if "skipped" in answer else f"saved {answer['name']} = {answer['label'] or answer['value']}"
        return back_to(f"/annotations/{name}", notice=notice, **_sticky(request))
    return JSONResponse(jsonable(answer))


def _sticky(request: Request) -> dict[str, str]:
    project = request.query_params.get("project")
    return {"project": project} if project else {}


# -- pages ----------------------------------------------------------------------------------------


async def queues_page(request: Request) -> Response:
    from .ui import render

    state = app_state(request)
    tools = quality_tools(state)
    doc = await run_in_threadpool(queues_doc, tools, request_store(request), request_project(request))
    context = {
        "p": page_params(request, state),
        "doc": jsonable(doc),
        "notice": request.query_params.get("notice"),
        "error": request.query_params.get("error"),
        "api_url": "/api/v1/annotation-queues",
    }
    return render(request, "annotations.html", context)


async def review_page(request: Request) -> Response:
    from .ui import render

    state = app_state(request)
    tools = quality_tools(state)
    name = request.path_params["queue"]
    try:
        doc = await run_in_threadpool(
            next_doc, tools, request_store(request), request_project(request), name, reviewer_of(request)
        )
    except HttpError as exc:
        return render(request, "error.html", {"status": exc.status, "message": exc.message}, status=exc.status)
    context = {
        "p": page_params(request, state),
        "doc": jsonable(doc),
        "notice": request.query_params.get("notice"),
        "error": request.query_params.get("error"),
        "api_url": f"/api/v1/annotation-queues/{name}",
    }
    return render(request, "annotation.html", context)


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/annotation-queues", list_queues, methods=["GET"]),
        Route("/api/v1/annotation-queues", post_queue, methods=["POST"]),
        Route("/api/v1/annotation-queues/{queue}", get_queue, methods=["GET"]),
        Route("/api/v1/annotation-queues/{queue}", delete_queue, methods=["DELETE"]),
        Route("/api/v1/annotation-queues/{queue}/reviews", post_review, methods=["POST"]),
        Route("/annotations", queues_page, methods=["GET"]),
        Route("/annotations", post_queue, methods=["POST"]),
        Route("/annotations/{queue}", review_page, methods=["GET"]),
        Route("/annotations/{queue}", post_review, methods=["POST"]),
    ]
