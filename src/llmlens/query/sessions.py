"""Sessions: the list of conversations, and one conversation as a transcript of turns with cost,
latency, feedback and links to their traces (the article's step 1: find the exact LLM call)."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from llmlens.store import Store

from ._call_feedback import feedback_on_spans, page_rollups
from ._common import Scope, num, opt, rows
from ._id_lookup import rows_by_id, spans_by_id
from ._keyset import cursor_time
from ._slices import FIRST_SLICE, count_newest
from ._spans import first_user_message, message_text

PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
COUNT_CAP = 10_000
_FIRST_MESSAGE_CHARS = 4000  # of the first call's prompt text, searched for the first user message


class SessionCursorError(ValueError):
    """A sessions page cursor that was not made by this module."""


@dataclass(slots=True)
class SessionRow:
    session_id: str
    started: dt.datetime
    last_seen: dt.datetime
    turns: int
    llm_calls: int
    cost_usd: float | None
    errors: int
    user_id: str | None
    feature: str | None
    duration_ms: float = 0.0  # from its first call's start to the end of its last
    feedback: dict[str, int] = field(default_factory=dict)  # feedback type -> count, on its calls
    first_message: str | None = None  # the first user message of its first call


@dataclass(slots=True)
class SessionPage:
    sessions: list[SessionRow]
    total: int  # sessions with LLM calls in the window, at most COUNT_CAP
    total_capped: bool  # more than COUNT_CAP
    next_cursor: str | None  # less recently active sessions
    prev_cursor: str | None  # more recently active ones


@dataclass(frozen=True, slots=True)
class _At:
    last_seen: dt.datetime
    session_id: str
    before: bool


def _encode(row: SessionRow, *, before: bool) -> str:
    text = f"{'before' if before else 'after'}|{row.last_seen.isoformat()}|{row.session_id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode(cursor: str) -> _At:
    try:
        direction, stamp, session_id = (
            base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().split("|", 2)
        )
        if direction not in ("after", "before") or not session_id:
            raise ValueError(cursor)
        return _At(cursor_time(stamp), session_id, before=direction == "before")
    except (ValueError, UnicodeDecodeError):
        raise SessionCursorError(f"cursor {cursor!r} is not a cursor from a previous page of sessions") from None


def _filters(user_id: str | None, feature: str | None) -> tuple[str, list[Any]]:
    where = "kind = 'llm' AND session_id IS NOT NULL"
    params: list[Any] = []
    if user_id:
        where += " AND user_id = ?"
        params.append(user_id)
    if feature:
        where += " AND feature = ?"
        params.append(feature)
    return where, params


def session_list(
    store: Store, scope: Scope, *, user_id: str | None = None, feature: str | None = None, limit: int = PAGE_SIZE
) -> list[SessionRow]:
    """Sessions with LLM calls in the window, most recently active first (the first page)."""
    return session_page(store, scope, user_id=user_id, feature=feature, limit=limit, count=False).sessions


def session_page(
    store: Store,
    scope: Scope,
    *,
    user_id: str | None = None,
    feature: str | None = None,
    cursor: str | None = None,
    limit: int = PAGE_SIZE,
    count: bool = True,
) -> SessionPage:
    """A page of sessions, most recently active first (then by id); `cursor` is a page's next or previous
    cursor. The total counts sessions with calls in the window, exactly up to COUNT_CAP."""
    at = _decode(cursor) if cursor else None
    where, params = _filters(user_id, feature)
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    found = _page_ids(store, scope, where, params, at, limit + 1)
    more = len(found) > limit
    ids = found[:limit]
    if at is not None and at.before:
        ids.reverse()
    sessions = _session_rows(store, scope, where, params, ids)
    has_next = more if not (at and at.before) else True
    has_prev = (at is not None) if not (at and at.before) else more
    total, capped = _count(store, scope, where, params) if count else (len(sessions), False)
    return SessionPage(
        sessions=sessions,
        total=total,
        total_capped=capped,
        next_cursor=_encode(sessions[-1], before=False) if has_next and sessions else None,
        prev_cursor=_encode(sessions[0], before=True) if has_prev and sessions else None,
    )


def _slices(scope: Scope, until: dt.datetime) -> Iterator[dt.datetime]:
    """Starts of ever wider slices of the window ending at `until`: 1 h, then 4x wider, ..., the whole window."""
    width = FIRST_SLICE
    while until - width > scope.window.start:
        yield until - width
        width *= 4
    yield scope.window.start


def _page_ids(store: Store, scope: Scope, where: str, params: list[Any], at: _At | None, limit: int) -> list[str]:
    """The ids of the page's sessions, in reading order (newest first, or oldest first before a cursor).

    Read from a slice of the window that ends at its end and widens until it holds the page: a session
    last seen at or after the slice's start has its last call in the slice, so the slice orders it as the
    window does. A page before a cursor needs only the sessions last seen after it, all in the slice that
    starts there."""
    having, having_params = "", []
    order = "last_seen DESC, session_id"
    if at is not None and not at.before:
        having = " HAVING MAX(timestamp) < ? OR (MAX(timestamp) = ? AND session_id > ?)"
        having_params = [at.last_seen, at.last_seen, at.session_id]
    elif at is not None:
        having = " HAVING MAX(timestamp) > ? OR (MAX(timestamp) = ? AND session_id < ?)"
        having_params = [at.last_seen, at.last_seen, at.session_id]
        order = "last_seen, session_id DESC"
    if at is None or not at.before:
        anchor = at.last_seen + dt.timedelta(seconds=1) if at else scope.window.end
        starts: Iterator[dt.datetime] = _slices(scope, min(anchor, scope.window.end))
    else:
        # Whole seconds: stores that keep seconds compare the cursor's time in seconds.
        starts = iter([max(scope.window.start, at.last_seen - dt.timedelta(seconds=1))])
    found: list[dict[str, Any]] = []
    for start in starts:
        found = rows(
            store,
            f"SELECT session_id, MAX(timestamp) AS last_seen FROM spans WHERE {scope.where()} AND {where} "
            f"GROUP BY session_id{having} ORDER BY {order} LIMIT {limit}",
            [scope.project, start, scope.window.end, *params, *having_params],
        )
        if len(found) >= limit:
            break
    return [str(r["session_id"]) for r in found]


def _count(store: Store, scope: Scope, where: str, params: list[Any]) -> tuple[int, bool]:
    """Sessions with calls in the window, counted from the newest slice outwards; stops past COUNT_CAP."""

    def count(start: dt.datetime) -> int:
        sql = (
            f"SELECT COUNT(*) AS n FROM (SELECT session_id FROM spans WHERE {scope.where()} AND {where} "
            f"GROUP BY session_id LIMIT {COUNT_CAP + 1}) t"
        )
        return int(rows(store, sql, [scope.project, start, scope.window.end, *params])[0]["n"])

    n = count_newest(scope.window.start, scope.window.end, count, COUNT_CAP)[-1][1]
    return min(n, COUNT_CAP), n > COUNT_CAP


def _session_rows(store: Store, scope: Scope, where: str, params: list[Any], ids: list[str]) -> list[SessionRow]:
    """Each session's calls over the whole window (only for the sessions shown), summed up."""
    if not ids:
        return []
    select = (
        "session_id, trace_id, span_id, timestamp, latency_ms, cost_usd, status, user_id, feature, "
        f"message_id, substr(prompt, 1, {_FIRST_MESSAGE_CHARS}) AS prompt"
    )
    if page_rollups(store):  # DuckDB: its zone maps skip what a scan of the window does not need
        marks = ", ".join("?" for _ in ids)
        calls = rows(
            store,
            f"SELECT {select} FROM spans WHERE {scope.where()} AND {where} AND session_id IN ({marks}) "
            "ORDER BY timestamp, span_id",
            [*scope.params(), *params, *ids],
        )
    else:  # ClickHouse reads the session column of the whole window: read the hours the id map names
        where_all, where_params = f"{scope.where()} AND {where}", [*scope.params(), *params]
        calls = rows_by_id(
            store,
            scope.project,
            "session_id",
            ids,
            select,
            where=where_all,
            params=where_params,
            order="timestamp, span_id",
        )
    by_session: dict[str, list[dict[str, Any]]] = {}
    for c in calls:
        by_session.setdefault(str(c["session_id"]), []).append(c)
    out = [_summary(sid, by_session[sid]) for sid in ids if sid in by_session]
    _add_feedback(store, scope.project, out, calls)
    return out


def _summary(session_id: str, calls: list[dict[str, Any]]) -> SessionRow:
    costs = [num(c["cost_usd"]) for c in calls if c["cost_usd"] is not None]
    started = calls[0]["timestamp"]
    ended = max(c["timestamp"] + dt.timedelta(milliseconds=num(c["latency_ms"])) for c in calls)
    users = [str(c["user_id"]) for c in calls if c["user_id"]]
    features = [str(c["feature"]) for c in calls if c["feature"]]
    return SessionRow(
        session_id=session_id,
        started=started,
        last_seen=max(c["timestamp"] for c in calls),
        turns=len({c["trace_id"] for c in calls}),
        llm_calls=len(calls),
        cost_usd=opt(sum(costs)) if costs else None,
        errors=sum(1 for c in calls if c["status"] == "error"),
        user_id=min(users) if users else None,
        feature=min(features) if features else None,
        duration_ms=round((ended - started).total_seconds() * 1000, 1),
        first_message=first_user_message(calls[0]["prompt"]),
    )


def _add_feedback(store: Store, project: str, sessions: list[SessionRow], calls: list[dict[str, Any]]) -> None:
    # By message id, as on the session page: feedback on the session's own calls.
    session_of = {str(c["message_id"]): str(c["session_id"]) for c in calls if c["message_id"]}
    if not session_of:
        return
    by_id = {s.session_id: s for s in sessions}
    marks = ", ".join("?" for _ in session_of)
    # Feedback comes after the call it rates (allowing for a clock ahead of the caller's by an hour): the
    # bound keeps the read to the recent part of the feedback.
    since = min(s.started for s in sessions) - dt.timedelta(hours=1)
    for r in rows(
        store,
        "SELECT message_id, feedback_type, COUNT(*) AS n FROM store.feedback "
        f"WHERE project = ? AND timestamp >= ? AND message_id IN ({marks}) GROUP BY message_id, feedback_type",
        [project, since, *session_of],
    ):
        session = by_id.get(session_of.get(str(r["message_id"]), ""))
        if session is not None:
            kind = str(r["feedback_type"])
            session.feedback[kind] = session.feedback.get(kind, 0) + int(r["n"])


@dataclass(slots=True)
class Turn:
    trace_id: str
    timestamp: dt.datetime
    user_text: str | None
    response: str | None
    models: list[str]
    llm_calls: int
    cost_usd: float | None
    latency_ms: float | None  # of the turn's root span, else the sum of its LLM calls
    prompt_tokens: int
    completion_tokens: int
    status: str
    tools: list[str]
    feedback: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class SessionDetail:
    session_id: str
    user_id: str | None
    feature: str | None
    started: dt.datetime
    cost_usd: float | None
    turns: list[Turn]


def _turn(trace_id: str, spans: list[dict[str, Any]]) -> Turn:
    llm = [s for s in spans if s["kind"] == "llm"]
    roots = [s for s in spans if s["parent_span_id"] is None]
    costs = [num(s["cost_usd"]) for s in llm if s["cost_usd"] is not None]
    first = llm[0] if llm else spans[0]
    last = llm[-1] if llm else spans[-1]
    user_text = message_text(first.get("input_messages"), "user") or first.get("prompt")
    latency = roots[0]["latency_ms"] if roots else sum(num(s["latency_ms"]) for s in llm)
    return Turn(
        trace_id=trace_id,
        timestamp=min(s["timestamp"] for s in spans),
        user_text=user_text,
        response=next((s["response"] for s in reversed(llm) if s["response"]), last.get("response")),
        models=sorted({str(s["model"]) for s in llm if s["model"]}),
        llm_calls=len(llm),
        cost_usd=sum(costs) if costs else None,
        latency_ms=opt(latency, 1),
        prompt_tokens=sum(int(num(s["prompt_tokens"])) for s in llm),
        completion_tokens=sum(int(num(s["completion_tokens"])) for s in llm),
        status="error" if any(s["status"] == "error" for s in spans) else "ok",
        tools=[str(s["tool_name"]) for s in spans if s["kind"] == "tool" and s["tool_name"]],
    )


def session_detail(store: Store, project: str, session_id: str) -> SessionDetail | None:
    spans = spans_by_id(store, project, "session_id", session_id)
    if not spans:
        return None
    by_trace: dict[str, list[dict[str, Any]]] = {}
    for s in spans:
        by_trace.setdefault(str(s["trace_id"]), []).append(s)
    turns = sorted((_turn(t, ss) for t, ss in by_trace.items()), key=lambda t: t.timestamp)
    message_trace = {str(s["message_id"]): str(s["trace_id"]) for s in spans if s["message_id"]}
    by_id = {t.trace_id: t for t in turns}
    # By message id rather than session id: feedback given outside the session still counts.
    fields = ("message_id", "feedback_type", "feedback_text", "timestamp")
    found = [{k: f[k] for k in fields} for f in feedback_on_spans(store, project, spans, resolve_calls=False).events]
    for f in found:
        trace = message_trace.get(str(f["message_id"]))
        if trace in by_id:
            by_id[trace].feedback.append(f)
    costs = [t.cost_usd for t in turns if t.cost_usd is not None]
    return SessionDetail(
        session_id=session_id,
        user_id=next((s["user_id"] for s in spans if s["user_id"]), None),
        feature=next((s["feature"] for s in spans if s["feature"]), None),
        started=turns[0].timestamp,
        cost_usd=sum(costs) if costs else None,
        turns=turns,
    )
