"""The retrieval view: `/retrieval` and its JSON twin `/api/v1/retrieval` (same context), over the page's
time range: the retrievals with the least relevant context, relevance by retriever and index, and relevance
against the thumbs the answers got. Filled by rules running the `rag` evaluator on retrieval spans.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from llmlens.quality import retrieval_view

from .._jsonable import jsonable
from .._params import PageParams, page_params
from .._request import request_state
from .._state import AppState


def retrieval_context(state: AppState, p: PageParams) -> dict[str, Any]:
    doc = retrieval_view(state.store, p.project, p.window.start, p.window.end)
    return {"project": p.project, "range": p.window.range, **doc}


async def retrieval_json(request: Request) -> JSONResponse:
    state = request_state(request)
    params = page_params(request, state)
    return JSONResponse(jsonable(await run_in_threadpool(retrieval_context, state, params)))


async def retrieval_page(request: Request) -> Response:
    from .ui import render

    state = request_state(request)
    params = page_params(request, state)
    doc = await run_in_threadpool(retrieval_context, state, params)
    api_url = "/api/v1/retrieval" + (f"?{request.url.query}" if request.url.query else "")
    return render(request, "retrieval.html", {"p": params, "doc": jsonable(doc), "api_url": api_url})


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/retrieval", retrieval_json, methods=["GET"]),
        Route("/retrieval", retrieval_page, methods=["GET"]),
    ]
