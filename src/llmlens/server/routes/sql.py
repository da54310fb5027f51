"""POST /api/v1/sql: the article's queries, verbatim, read-only, over one project's views."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from llmlens.store import SqlFailed, SqlRejected

from .._http import HttpError, read_json_object
from .._jsonable import jsonable_rows
from .._request import request_project, request_store
from .._state import app_state


async def sql(request: Request) -> JSONResponse:
    state = app_state(request)
    doc = await read_json_object(request)
    query = doc.get("query")
    if not isinstance(query, str) or not query.strip():
        raise HttpError(400, 'send {"query": "SELECT ..."}')
    store = request_store(request)  # user SQL sees only the caller's project
    raw_max = doc.get("max_rows")
    if raw_max is not None and (isinstance(raw_max, bool) or not isinstance(raw_max, int) or raw_max < 1):
        raise HttpError(400, "max_rows must be a positive integer")
    max_rows = min(raw_max or state.settings.sql_max_rows, state.settings.sql_max_rows)
    try:
        result = await run_in_threadpool(
            store.user_sql,
            query,
            project=request_project(request),
            max_rows=max_rows,
            timeout_s=state.settings.sql_timeout_s,
        )
    except SqlRejected as exc:
        raise HttpError(403, str(exc)) from None
    except SqlFailed as exc:
        raise HttpError(400, str(exc)) from None
    return JSONResponse(
        {
            "columns": result.columns,
            "types": result.types,
            "rows": jsonable_rows(result.rows),
            "truncated": result.truncated,
        }
    )


def routes() -> list[BaseRoute]:
    return [Route("/api/v1/sql", sql, methods=["POST"])]
