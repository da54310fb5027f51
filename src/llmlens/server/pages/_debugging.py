"""Context builders of the debugging pages: traces, one trace, sessions, one session, SQL console."""

from __future__ import annotations

from typing import Any

from llmlens import query
from llmlens.query import scores, sessions, traces, waterfall
from llmlens.store import SqlFailed, SqlRejected

from .._http import HttpError
from .._jsonable import jsonable_rows
from .._params import PageParams
from .._state import AppState
from ._context import plain, window_context
from ._examples import SQL_EXAMPLES
from ._scores import trace_scores_context

# The feedback filter's choices in the UI; any other feedback type works in the URL too.
FEEDBACK_CHOICES = (
    ("thumbs_down", "thumbs down"),
    ("thumbs_up", "thumbs up"),
    ("any", "any feedback"),
    ("none", "no feedback"),
    ("retry", "retry"),
    ("edit", "edit"),
    ("abandon", "abandon"),
)

# URL parameters of the trace list (the same on /traces and /api/v1/traces); docs/ui.md describes them.
TRACE_FILTERS = (
    "model",
    "user_id",
    "session_id",
    "feature",
    "template_id",
    "template_version",
    "tool",
    "error_type",
    "status",
    "feedback",
    "min_cost",
    "min_latency_ms",
    "q",
    "score",
    "sort",
)


def page_size(p: PageParams, default: int, most: int) -> int:
    """`limit`: rows per page, 1 to `most`."""
    raw = p.text("limit")
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= most:
        raise HttpError(400, f"limit must be a whole number from 1 to {most}, got {raw!r}")
    return int(raw)


def trace_filters(p: PageParams) -> query.TraceFilters:
    filters = query.TraceFilters(
        model=p.text("model"),
        user_id=p.text("user_id"),
        session_id=p.text("session_id"),
        feature=p.text("feature"),
        template_id=p.text("template_id"),
        template_version=p.text("template_version"),
        tool=p.text("tool"),
        error_type=p.text("error_type"),
        status=p.text("status"),
        feedback=p.text("feedback"),
        min_cost_usd=p.number("min_cost"),
        min_latency_ms=p.number("min_latency_ms"),
        text=p.text("q"),
        score=p.text("score"),
        sort=p.text("sort") or traces.DEFAULT_SORT,
        limit=page_size(p, traces.PAGE_SIZE, traces.MAX_PAGE_SIZE),
    )
    try:
        filters.check()
    except traces.FilterError as exc:
        raise HttpError(400, str(exc)) from None
    return filters


def traces_context(state: AppState, p: PageParams, path: dict[str, str]) -> dict[str, Any]:
    filters = trace_filters(p)
    known = traces.known_values(state.store, p.scope, model=filters.model, user_id=filters.user_id)
    try:
        page = traces.trace_list(state.store, p.scope, filters, cursor=p.text("cursor"), known=known)
    except (traces.CursorError, traces.FilterError) as exc:
        raise HttpError(400, str(exc)) from None
    return {
        "project": p.project,
        "window": window_context(p.window),
        "filters": {name: p.text(name) for name in TRACE_FILTERS},
        "sort": page.sort,
        "sorts": list(traces.SORTS),
        "total": page.total,
        "total_capped": page.total_capped,
        "sorted_since": plain(page.sorted_since),  # a sort by value covers the traces from then on only
        "traces": plain(page.traces),
        "next_cursor": page.next_cursor,
        "prev_cursor": page.prev_cursor,
        "next_url": p.with_params("/traces", cursor=page.next_cursor) if page.next_cursor else None,
        "prev_url": p.with_params("/traces", cursor=page.prev_cursor) if page.prev_cursor else None,
        "first_url": p.with_params("/traces", cursor=None) if p.text("cursor") else None,
        "suggestions": {"model": known.models, "user_id": known.users},
        "feedback_choices": FEEDBACK_CHOICES,
    }


def trace_context(state: AppState, p: PageParams, path: dict[str, str]) -> dict[str, Any]:
    trace_id = path["trace_id"]
    # The stored scores need only the trace id: read beside the trace (at once on ClickHouse).
    found, stored = query.together(
        state.store,
        lambda: waterfall.trace_with_feedback(state.store, p.project, trace_id),
        lambda: scores.stored_trace_scores(state.store, p.project, trace_id),
    )
    if found is None:
        raise HttpError(404, f"no trace {trace_id!r} in project {p.project!r}")
    detail, on_calls = found
    if detail.trace_id != trace_id:
        stored = None
    spans = detail.spans
    selected = p.text("span") or next((w.span["span_id"] for w in spans if w.span["kind"] == "llm"), None)
    return {
        "project": p.project,
        "trace": plain(detail),
        "selected_span": selected,
        "scores": trace_scores_context(state, p.project, detail.trace_id, thumbs=on_calls.thumbs, stored=stored),
    }


def sessions_context(state: AppState, p: PageParams, path: dict[str, str]) -> dict[str, Any]:
    user_id, feature = p.text("user_id"), p.text("feature")
    limit = page_size(p, sessions.PAGE_SIZE, sessions.MAX_PAGE_SIZE)
    try:
        page = sessions.session_page(
            state.store,
            p.scope,
            user_id=user_id,
            feature=feature,
            cursor=p.text("cursor"),
            limit=limit,
        )
    except sessions.SessionCursorError as exc:
        raise HttpError(400, str(exc)) from None
    return {
        "project": p.project,
        "window": window_context(p.window),
        "filters": {"user_id": user_id, "feature": feature},
        "total": page.total,
        "total_capped": page.total_capped,
        "sessions": plain(page.sessions),
        "next_cursor": page.next_cursor,
        "prev_cursor": page.prev_cursor,
        "next_url": p.with_params("/sessions", cursor=page.next_cursor) if page.next_cursor else None,
        "prev_url": p.with_params("/sessions", cursor=page.prev_cursor) if page.prev_cursor else None,
        "first_url": p.with_params("/sessions", cursor=None) if p.text("cursor") else None,
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
