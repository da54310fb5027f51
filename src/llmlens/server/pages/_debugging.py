"""Context builders of the debugging pages: traces, one trace, sessions, one session, SQL console."""

from __future__ import annotations

from typing import Any

from llmlens import query
from llmlens.store import SqlFailed, SqlRejected

from .._http import HttpError
from .._jsonable import jsonable_rows
from .._params import PageParams
from .._state import AppState
from ._context import plain, window_context
from ._examples import SQL_EXAMPLES

TRACE_FILTERS = ("model", "user_id", "session_id", "feature", "status", "min_cost", "min_latency_ms", "q")


def trace_filters(p: PageParams) -> query.TraceFilters:
    status = p.text("status")
    if status not in (None, "ok", "error"):
        raise HttpError(400, f"status must be ok or error, got {status!r}")
    limit = int(p.number("limit", query.traces.PAGE_SIZE) or query.traces.PAGE_SIZE)
    return query.TraceFilters(
        model=p.text("model"),
        user_id=p.text("user_id"),
        session_id=p.text("session_id"),
        feature=p.text("feature"),
        status=status,
        min_cost_usd=p.number("min_cost"),
        min_latency_ms=p.number("min_latency_ms"),
        text=p.text("q"),
        limit=limit,
    )


def traces_context(state: AppState, p: PageParams, path: dict[str, str]) -> dict[str, Any]:
    filters = trace_filters(p)
    try:
        page = query.trace_list(state.store, p.scope, filters, cursor=p.text("cursor"))
    except query.CursorError as exc:
        raise HttpError(400, str(exc)) from None
    return {
        "project": p.project,
        "window": window_context(p.window),
        "filters": {name: p.text(name) for name in TRACE_FILTERS},
        "traces": plain(page.traces),
        "next_cursor": page.next_cursor,
        "next_url": p.with_params("/traces", cursor=page.next_cursor) if page.next_cursor else None,
    }


def trace_context(state: AppState, p: PageParams, path: dict[str, str]) -> dict[str, Any]:
    detail = query.trace_detail(state.store, p.project, path["trace_id"])
    if detail is None:
        raise HttpError(404, f"no trace {path['trace_id']!r} in project {p.project!r}")
    spans = detail.spans
    selected = p.text("span") or next((w.span["span_id"] for w in spans if w.span["kind"] == "llm"), None)
    return {"project": p.project, "trace": plain(detail), "selected_span": selected}


def sessions_context(state: AppState, p: PageParams, path: dict[str, str]) -> dict[str, Any]:
    user_id, feature = p.text("user_id"), p.text("feature")
    return {
        "project": p.project,
        "window": window_context(p.window),
        "filters": {"user_id": user_id, "feature": feature},
        "sessions": plain(query.session_list(state.store, p.scope, user_id=user_id, feature=feature)),
    }


def session_context(state: AppState, p: PageParams, path: dict[str, str]) -> dict[str, Any]:
    detail = query.session_detail(state.store, p.project, path["session_id"])
    if detail is None:
        raise HttpError(404, f"no session {path['session_id']!r} in project {p.project!r}")
    return {"project": p.project, "session": plain(detail)}


def sql_context(state: AppState, p: PageParams, path: dict[str, str]) -> dict[str, Any]:
    text = p.query.get("q", "").strip()
    context: dict[str, Any] = {"project": p.project, "query": text, "examples": SQL_EXAMPLES}
    context["result"] = None
    context["error"] = None
    if not text:
        return context
    try:
        result = state.store.user_sql(
            text, project=p.project, max_rows=state.settings.sql_max_rows, timeout_s=state.settings.sql_timeout_s
        )
    except (SqlRejected, SqlFailed) as exc:
        context["error"] = str(exc)
        return context
    context["result"] = {
        "columns": result.columns,
        "types": result.types,
        "rows": jsonable_rows(result.rows),
        "truncated": result.truncated,
    }
    return context
