"""The trace list (filters, free text, keyset pagination) and one trace as a span waterfall."""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from llmlens.store import Store

from ._common import Scope, num, opt, rows
from ._spans import read_spans

PAGE_SIZE = 50


class CursorError(ValueError):
    """A pagination cursor that was not made by `encode_cursor`."""


@dataclass(frozen=True, slots=True)
class TraceFilters:
    model: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    feature: str | None = None
    status: str | None = None  # "ok" or "error" (any span of the trace failed)
    min_cost_usd: float | None = None  # one LLM call cost at least this
    min_latency_ms: float | None = None  # of the root span
    text: str | None = None  # in an LLM call's prompt or response
    limit: int = PAGE_SIZE


@dataclass(slots=True)
class TraceRow:
    trace_id: str
    timestamp: dt.datetime
    name: str | None
    kind: str | None
    latency_ms: float | None
    status: str
    user_id: str | None
    session_id: str | None
    feature: str | None
    spans: int = 0
    llm_calls: int = 0
    models: list[str] = field(default_factory=list)
    cost_usd: float | None = None
    total_tokens: int = 0
    preview: str | None = None


@dataclass(slots=True)
class TracePage:
    traces: list[TraceRow]
    next_cursor: str | None


def encode_cursor(timestamp: dt.datetime, trace_id: str) -> str:
    return base64.urlsafe_b64encode(f"{timestamp.isoformat()}|{trace_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, str]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, trace_id = text.split("|", 1)
        return dt.datetime.fromisoformat(stamp), trace_id
    except (ValueError, UnicodeDecodeError):
        raise CursorError(f"cursor {cursor!r} is not a cursor from a previous page") from None


def _matching_spans(scope: Scope, conditions: list[str], params: list[Any]) -> tuple[str, list[Any]]:
    sql = f"r.trace_id IN (SELECT trace_id FROM spans WHERE {scope.where()} AND {' AND '.join(conditions)})"
    return sql, [*scope.params(), *params]


def trace_list(store: Store, scope: Scope, filters: TraceFilters, cursor: str | None = None) -> TracePage:
    """Root spans of matching traces, newest first; `cursor` continues after a previous page."""
    where = [scope.where("r"), "r.parent_span_id IS NULL"]
    params: list[Any] = scope.params()
    for column, value in (
        ("user_id", filters.user_id),
        ("session_id", filters.session_id),
        ("feature", filters.feature),
    ):
        if value:
            sql, p = _matching_spans(scope, [f"{column} = ?"], [value])
            where.append(sql)
            params += p
    llm: list[str] = []
    llm_params: list[Any] = []
    if filters.model:
        llm.append("(model = ? OR response_model = ?)")
        llm_params += [filters.model, filters.model]
    if filters.text:
        # `%` and `_` typed by the user act as wildcards: harmless over-matching, portable SQL.
        llm.append("(prompt ILIKE ? OR response ILIKE ?)")
        llm_params += [f"%{filters.text}%", f"%{filters.text}%"]
    if filters.min_cost_usd is not None:
        llm.append("cost_usd >= ?")
        llm_params.append(filters.min_cost_usd)
    if llm:
        sql, p = _matching_spans(scope, ["kind = 'llm'", *llm], llm_params)
        where.append(sql)
        params += p
    if filters.status in ("ok", "error"):
        sql, p = _matching_spans(scope, ["status = 'error'"], [])
        if filters.status == "error":
            where.append(f"(r.status = 'error' OR {sql})")
        else:
            where.append(f"(r.status IS NULL OR r.status <> 'error') AND NOT {sql}")
        params += p
    if filters.min_latency_ms is not None:
        where.append("r.latency_ms >= ?")
        params.append(filters.min_latency_ms)
    if cursor:
        stamp, last_id = decode_cursor(cursor)
        where.append("(r.timestamp < ? OR (r.timestamp = ? AND r.trace_id < ?))")
        params += [stamp, stamp, last_id]
    limit = max(1, min(filters.limit, 500))
    roots = rows(
        store,
        "SELECT r.trace_id, r.timestamp, r.name, r.kind, r.latency_ms, r.status, r.user_id, r.session_id, "
        f"r.feature FROM spans r WHERE {' AND '.join(where)} "
        f"ORDER BY r.timestamp DESC, r.trace_id DESC LIMIT {limit + 1}",
        params,
    )
    more = len(roots) > limit
    roots = roots[:limit]
    traces = [
        TraceRow(
            trace_id=str(r["trace_id"]),
            timestamp=r["timestamp"],
            name=r["name"],
            kind=r["kind"],
            latency_ms=opt(r["latency_ms"], 1),
            status=str(r["status"] or "unset"),
            user_id=r["user_id"],
            session_id=r["session_id"],
            feature=r["feature"],
        )
        for r in roots
    ]
    _add_summaries(store, scope.project, traces)
    next_cursor = encode_cursor(traces[-1].timestamp, traces[-1].trace_id) if more and traces else None
    return TracePage(traces=traces, next_cursor=next_cursor)


def _add_summaries(store: Store, project: str, traces: list[TraceRow]) -> None:
    if not traces:
        return
    by_id = {t.trace_id: t for t in traces}
    marks = ", ".join("?" for _ in by_id)
    first = min(t.timestamp for t in traces)
    for r in rows(
        store,
        "SELECT trace_id, kind, model, cost_usd, total_tokens, status, substr(response, 1, 120) AS response "
        f"FROM spans WHERE project = ? AND timestamp >= ? AND trace_id IN ({marks}) ORDER BY timestamp",
        [project, first, *by_id],
    ):
        t = by_id[str(r["trace_id"])]
        t.spans += 1
        if r["status"] == "error":
            t.status = "error"
        if r["kind"] != "llm":
            continue
        t.llm_calls += 1
        if r["model"] and r["model"] not in t.models:
            t.models.append(str(r["model"]))
        if r["cost_usd"] is not None:
            t.cost_usd = (t.cost_usd or 0.0) + num(r["cost_usd"])
        t.total_tokens += int(num(r["total_tokens"]))
        if r["response"]:
            t.preview = str(r["response"])


@dataclass(slots=True)
class WaterfallSpan:
    span: dict[str, Any]  # every stored column, JSON parsed
    depth: int
    offset_pct: float
    width_pct: float


@dataclass(slots=True)
class TraceDetail:
    trace_id: str
    start: dt.datetime
    duration_ms: float
    cost_usd: float | None
    total_tokens: int
    session_id: str | None
    user_id: str | None
    spans: list[WaterfallSpan]
    feedback: list[dict[str, Any]]


def _tree_order(spans: list[dict[str, Any]]) -> list[tuple[dict[str, Any], int]]:
    """Depth-first by start time; orphans (parent not stored) are shown as roots."""
    ids = {s["span_id"] for s in spans}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for s in spans:
        parent = s["parent_span_id"] if s["parent_span_id"] in ids else None
        children.setdefault(parent, []).append(s)
    out: list[tuple[dict[str, Any], int]] = []

    def visit(parent: str | None, depth: int) -> None:
        for s in sorted(children.get(parent, []), key=lambda x: (x["timestamp"], x["span_id"])):
            out.append((s, depth))
            if depth < 64:
                visit(s["span_id"], depth + 1)

    visit(None, 0)
    return out


def trace_detail(store: Store, project: str, trace_id: str) -> TraceDetail | None:
    spans = read_spans(store, "project = ? AND trace_id = ?", [project, trace_id])
    if not spans:
        return None
    start = min(s["timestamp"] for s in spans)
    end = max(s["timestamp"] + dt.timedelta(milliseconds=num(s["latency_ms"])) for s in spans)
    total_ms = max((end - start).total_seconds() * 1000, 0.001)
    waterfall = []
    for s, depth in _tree_order(spans):
        offset = (s["timestamp"] - start).total_seconds() * 1000
        waterfall.append(
            WaterfallSpan(
                span=s,
                depth=depth,
                offset_pct=round(100 * offset / total_ms, 3),
                width_pct=round(max(100 * num(s["latency_ms"]) / total_ms, 0.3), 3),
            )
        )
    costs = [num(s["cost_usd"]) for s in spans if s["cost_usd"] is not None]
    messages = [s["message_id"] for s in spans if s["message_id"]]
    feedback: list[dict[str, Any]] = []
    if messages:
        marks = ", ".join("?" for _ in messages)
        feedback = rows(
            store,
            "SELECT message_id, feedback_type, feedback_text, user_id, timestamp FROM feedback_events "
            f"WHERE project = ? AND message_id IN ({marks}) ORDER BY timestamp",
            [project, *messages],
        )
    first_with = next((s for s in spans if s["session_id"]), None)
    return TraceDetail(
        trace_id=trace_id,
        start=start,
        duration_ms=round(total_ms, 3),
        cost_usd=sum(costs) if costs else None,
        total_tokens=sum(int(num(s["total_tokens"])) for s in spans if s["kind"] == "llm"),
        session_id=first_with["session_id"] if first_with else None,
        user_id=next((s["user_id"] for s in spans if s["user_id"]), None),
        spans=waterfall,
        feedback=feedback,
    )
