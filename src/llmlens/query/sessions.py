"""Sessions: the list of conversations, and one conversation as a transcript of turns with cost,
latency, feedback and links to their traces (the article's step 1: find the exact LLM call)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from llmlens.store import Store

from ._common import Scope, num, opt, rows
from ._spans import message_text, read_spans

PAGE_SIZE = 50


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


def session_list(
    store: Store, scope: Scope, *, user_id: str | None = None, feature: str | None = None, limit: int = PAGE_SIZE
) -> list[SessionRow]:
    """Sessions with LLM calls in the window, most recently active first."""
    where = "kind = 'llm' AND session_id IS NOT NULL"
    params: list[Any] = []
    if user_id:
        where += " AND user_id = ?"
        params.append(user_id)
    if feature:
        where += " AND feature = ?"
        params.append(feature)
    limit = max(1, min(limit, 500))
    ids = _most_recent_sessions(store, scope, where, params, limit)
    if not ids:
        return []
    marks = ", ".join("?" for _ in ids)
    # Full stats over the whole window, but only for the sessions shown.
    recs = rows(
        store,
        "SELECT session_id, MIN(timestamp) AS started, MAX(timestamp) AS last_seen, "
        "COUNT(DISTINCT trace_id) AS turns, COUNT(*) AS llm_calls, SUM(cost_usd) AS cost_usd, "
        "SUM(CASE WHEN status = 'error' THEN 1 ELSE 0 END) AS errors, MIN(user_id) AS user_id, "
        f"MIN(feature) AS feature FROM spans WHERE {scope.where()} AND {where} AND session_id IN ({marks}) "
        f"GROUP BY session_id ORDER BY last_seen DESC, session_id LIMIT {limit}",
        [*scope.params(), *params, *ids],
    )
    return [
        SessionRow(
            session_id=str(r["session_id"]),
            started=r["started"],
            last_seen=r["last_seen"],
            turns=int(r["turns"]),
            llm_calls=int(r["llm_calls"]),
            cost_usd=opt(r["cost_usd"]),
            errors=int(num(r["errors"])),
            user_id=r["user_id"],
            feature=r["feature"],
        )
        for r in recs
    ]


def _most_recent_sessions(store: Store, scope: Scope, where: str, params: list[Any], limit: int) -> list[str]:
    """The `limit` sessions last active in the window (by last call, then id), read from a recent slice of
    the window that widens until it holds `limit` sessions or the whole window: a session last seen at or
    after the slice's start has its last call in the slice, so the slice orders it as the window does."""
    found: list[dict[str, Any]] = []
    for start in scope.window.recent_slice_starts():
        found = rows(
            store,
            f"SELECT session_id, MAX(timestamp) AS last_seen FROM spans WHERE {scope.where()} AND {where} "
            f"GROUP BY session_id ORDER BY last_seen DESC, session_id LIMIT {limit}",
            [scope.project, start, scope.window.end, *params],
        )
        if len(found) >= limit:
            break
    return [str(r["session_id"]) for r in found]


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
    spans = read_spans(store, "project = ? AND session_id = ?", [project, session_id])
    if not spans:
        return None
    by_trace: dict[str, list[dict[str, Any]]] = {}
    for s in spans:
        by_trace.setdefault(str(s["trace_id"]), []).append(s)
    turns = sorted((_turn(t, ss) for t, ss in by_trace.items()), key=lambda t: t.timestamp)
    message_trace = {str(s["message_id"]): str(s["trace_id"]) for s in spans if s["message_id"]}
    by_id = {t.trace_id: t for t in turns}
    # By message id rather than session id: the filter then reaches every side of the view's joins.
    marks = ", ".join("?" for _ in message_trace)
    found = (
        rows(
            store,
            "SELECT message_id, feedback_type, feedback_text, timestamp FROM feedback_events "
            f"WHERE project = ? AND message_id IN ({marks}) ORDER BY timestamp",
            [project, *message_trace],
        )
        if message_trace
        else []
    )
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
