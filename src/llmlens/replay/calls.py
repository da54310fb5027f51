"""Finding the stored calls to replay: one span, a trace, a session, or a filtered set (e.g. worst rated)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llmlens.store import SPAN_COLUMNS, Store

_JSON_COLUMNS = frozenset(col for col, kind, _ in SPAN_COLUMNS if kind == "json")
_SELECT = ", ".join(col for col, _, _ in SPAN_COLUMNS)
ORDERS = {
    "worst": "user_satisfaction ASC NULLS LAST, timestamp DESC",
    "recent": "timestamp DESC",
    "cost": "cost_usd DESC NULLS LAST, timestamp DESC",
    "latency": "latency_ms DESC NULLS LAST, timestamp DESC",
}
MAX_CALLS = 500


@dataclass(frozen=True, slots=True)
class CallFilter:
    """Which LLM calls to replay (replays themselves are never picked)."""

    feature: str | None = None
    model: str | None = None
    template_id: str | None = None
    template_version: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    trace_id: str | None = None
    status: str | None = None  # ok | error
    rated: str | None = None  # thumbs_down: only calls rated down
    order: str = "recent"  # worst | recent | cost | latency
    limit: int = 50

    @classmethod
    def from_mapping(cls, doc: dict[str, Any]) -> CallFilter:
        known = set(cls.__dataclass_fields__)
        unknown = set(doc) - known
        if unknown:
            raise ValueError(f"unknown filter field(s) {sorted(unknown)}; known: {sorted(known)}")
        values: dict[str, Any] = {
            k: (str(v) if k != "limit" else int(v)) for k, v in doc.items() if v not in (None, "")
        }
        spec = cls(**values)
        if spec.order not in ORDERS:
            raise ValueError(f"order must be one of {sorted(ORDERS)}, got {spec.order!r}")
        if spec.status not in (None, "ok", "error"):
            raise ValueError(f"status must be ok or error, got {spec.status!r}")
        return spec


def _parse(record: dict[str, Any]) -> dict[str, Any]:
    for col in _JSON_COLUMNS:
        value = record.get(col)
        if isinstance(value, str):
            try:
                record[col] = json.loads(value)
            except json.JSONDecodeError:
                pass
    return record


def read_spans(
    store: Store, where: str, params: Sequence[Any], order: str = "timestamp, span_id"
) -> list[dict[str, Any]]:
    return [
        _parse(r)
        for r in store.query(f"SELECT {_SELECT} FROM spans WHERE {where} ORDER BY {order}", list(params)).dicts()
    ]


def load_span(store: Store, project: str, span_id: str) -> dict[str, Any] | None:
    found = read_spans(store, "project = ? AND span_id = ?", [project, span_id])
    return found[0] if found else None


def load_spans(store: Store, project: str, span_ids: Sequence[str]) -> list[dict[str, Any]]:
    if not span_ids:
        return []
    marks = ", ".join("?" for _ in span_ids)
    by_id = {s["span_id"]: s for s in read_spans(store, f"project = ? AND span_id IN ({marks})", [project, *span_ids])}
    return [by_id[i] for i in span_ids if i in by_id]


def load_trace(store: Store, project: str, trace_id: str) -> list[dict[str, Any]]:
    return read_spans(store, "project = ? AND trace_id = ?", [project, trace_id])


def select_calls(store: Store, project: str, spec: CallFilter) -> list[str]:
    """Span ids of the LLM calls matching `spec`, in its order."""
    where = ["project = ?", "replay_of IS NULL", "(input_messages IS NOT NULL OR prompt IS NOT NULL)"]
    params: list[Any] = [project]
    for column in ("feature", "model", "template_id", "template_version", "user_id", "session_id", "trace_id"):
        value = getattr(spec, column)
        if value:
            where.append(f"{column} = ?")
            params.append(value)
    if spec.status == "error":
        where.append("status = 'error'")
    elif spec.status == "ok":
        where.append("(status IS NULL OR status <> 'error')")
    if spec.rated:
        where.append("message_id IN (SELECT message_id FROM feedback_events WHERE project = ? AND feedback_type = ?)")
        params += [project, spec.rated]
    if spec.order == "worst":
        where.append("user_satisfaction IS NOT NULL")
    limit = max(1, min(spec.limit, MAX_CALLS))
    result = store.query(
        f"SELECT span_id FROM llm_logs WHERE {' AND '.join(where)} ORDER BY {ORDERS[spec.order]} LIMIT {limit}",
        params,
    )
    return [str(r[0]) for r in result.rows]


def template_sample(store: Store, project: str, template_id: str, version: str) -> dict[str, Any] | None:
    """The latest recorded call of a template version, to learn that version's messages from."""
    found = read_spans(
        store,
        "project = ? AND kind = 'llm' AND template_id = ? AND template_version = ? AND replay_of IS NULL "
        "AND input_messages IS NOT NULL",
        [project, template_id, version],
        order="timestamp DESC LIMIT 1",
    )
    return found[0] if found else None
