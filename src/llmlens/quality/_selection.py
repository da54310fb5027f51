"""Picking LLM calls by the trace list's filters, for datasets and annotation queues.

The parameters are the Traces page's (`feature`, `model`, `feedback`, `score`, `range`, ...), so the URL of a
filtered trace list makes a dataset; here each condition applies to the call itself ("the thumbs-down calls
of code_review": the calls that got the thumbs down, not every call of their traces), except `tool`, which
asks that the call's trace used that tool. Replays and experiment runs are never picked.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from llmlens.query import parse_window, utc_now
from llmlens.query._trace_filters import FilterError, parse_score_filter
from llmlens.store import Store

MAX_SELECTED = 1_000
DEFAULT_SELECTED = 100
ORDERS = {"recent": "timestamp DESC", "oldest": "timestamp ASC", "cost": "cost_usd DESC NULLS LAST"}
_TEXT = ("feature", "model", "template_id", "template_version", "user_id", "session_id", "environment", "error_type")
_KNOWN = {
    *_TEXT,
    "tool",
    "status",
    "feedback",
    "score",
    "q",
    "min_cost",
    "min_latency_ms",
    "range",
    "from",
    "to",
    "limit",
    "order",
    "project",
    "sort",
}


class SelectionError(ValueError):
    """A filter value that cannot be used; names the parameter."""


@dataclass(frozen=True, slots=True)
class CallSelection:
    """Which calls: trace-list filters (strings as in a URL), a time window, a limit and an order."""

    filters: dict[str, str] = field(default_factory=dict)
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    limit: int = DEFAULT_SELECTED
    order: str = "recent"

    def describe(self) -> str:
        parts = [f"{k}={v}" for k, v in sorted(self.filters.items())]
        return ", ".join(parts) or "every call"

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.filters,
            "from": self.start.isoformat() if self.start else None,
            "to": self.end.isoformat() if self.end else None,
            "limit": self.limit,
            "order": self.order,
        }


def parse_selection(doc: Mapping[str, Any], *, default_range: str = "7d") -> CallSelection:
    """From a JSON object or URL parameters; SelectionError names the parameter."""
    unknown = sorted(set(doc) - _KNOWN)
    if unknown:
        raise SelectionError(f"unknown filter(s) {', '.join(unknown)}; known: {', '.join(sorted(_KNOWN))}")
    filters: dict[str, str] = {}
    for key in (*_TEXT, "tool", "status", "feedback", "score", "q", "min_cost", "min_latency_ms"):
        value = doc.get(key)
        if value in (None, ""):
            continue
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise SelectionError(f"filter {key} must be a string, got {value!r}")
        filters[key] = str(value).strip()
    if filters.get("status") not in (None, "ok", "error"):
        raise SelectionError(f"status must be ok or error, got {filters['status']!r}")
    for key in ("min_cost", "min_latency_ms"):
        if key in filters:
            try:
                if float(filters[key]) < 0:
                    raise ValueError
            except ValueError:
                raise SelectionError(f"{key} must be a number of at least 0, got {filters[key]!r}") from None
    if "score" in filters:
        try:
            parse_score_filter(filters["score"])
        except FilterError as exc:
            raise SelectionError(str(exc)) from None
    try:
        window = parse_window(
            _text(doc.get("range")) or (None if doc.get("from") or doc.get("to") else default_range),
            _text(doc.get("from")),
            _text(doc.get("to")),
            now=utc_now(),
        )
    except ValueError as exc:
        raise SelectionError(str(exc)) from None
    raw_limit = doc.get("limit", DEFAULT_SELECTED)
    try:
        limit = int(raw_limit)
    except (TypeError, ValueError):
        raise SelectionError(f"limit must be a whole number, got {raw_limit!r}") from None
    if not 1 <= limit <= MAX_SELECTED:
        raise SelectionError(f"limit must be from 1 to {MAX_SELECTED}, got {limit}")
    order = _text(doc.get("order")) or "recent"
    if order not in ORDERS:
        raise SelectionError(f"order must be one of {', '.join(ORDERS)}, got {order!r}")
    return CallSelection(filters, window.start, window.end, limit, order)


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


def select_calls(store: Store, project: str, selection: CallSelection) -> list[str]:
    """Span ids of the matching LLM calls of `project`, in the selection's order."""
    f = selection.filters
    where = ["project = ?", "kind = 'llm'", "replay_of IS NULL"]
    params: list[Any] = [project]
    if selection.start is not None:
        where.append("timestamp >= ?")
        params.append(selection.start)
    if selection.end is not None:
        where.append("timestamp < ?")
        params.append(selection.end)
    for key in _TEXT:
        if key in f and key != "model":
            where.append(f"{key} = ?")
            params.append(f[key])
    if "model" in f:
        where.append("(model = ? OR response_model = ?)")
        params += [f["model"], f["model"]]
    if f.get("status") == "error":
        where.append("status = 'error'")
    elif f.get("status") == "ok":
        where.append("(status IS NULL OR status <> 'error')")
    if "feedback" in f:
        value = f["feedback"]
        rated = "SELECT message_id FROM store.feedback WHERE project = ?"
        if value in ("any", "none"):
            where.append(f"message_id {'NOT IN' if value == 'none' else 'IN'} ({rated})")
            params.append(project)
            if value == "none":
                where[-1] = f"(message_id IS NULL OR {where[-1]})"
        else:
            where.append(f"message_id IN ({rated} AND feedback_type = ?)")
            params += [project, value]
    if "score" in f:
        sql, more = parse_score_filter(f["score"]).condition(project)
        where.append(sql)
        params += more
    if "q" in f:
        where.append("(prompt ILIKE ? OR response ILIKE ?)")
        params += [f"%{f['q']}%"] * 2
    if "tool" in f:
        where.append("trace_id IN (SELECT trace_id FROM spans WHERE project = ? AND kind = 'tool' AND tool_name = ?)")
        params += [project, f["tool"]]
    if "min_cost" in f:
        where.append("cost_usd >= ?")
        params.append(float(f["min_cost"]))
    if "min_latency_ms" in f:
        where.append("latency_ms >= ?")
        params.append(float(f["min_latency_ms"]))
    result = store.query(
        f"SELECT span_id FROM spans WHERE {' AND '.join(where)} ORDER BY {ORDERS[selection.order]}, span_id "
        f"LIMIT {selection.limit}",
        params,
    )
    return [str(r[0]) for r in result.rows]
