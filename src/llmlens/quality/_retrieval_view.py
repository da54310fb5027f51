"""The retrieval view: how relevant the retrieved context was, from the `context_relevance` scores of
retrieval spans (the `rag` evaluator gives them): the calls with the least relevant context, relevance by
retriever (the span's name) and by index (`metadata.index`), and relevance against the thumbs the answers got.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Sequence
from typing import Any

from llmlens.query.stats import Z_95
from llmlens.store import Store

CONTEXT = "context_relevance"
GROUNDED = "groundedness"


def _interval(n: int, mean: float | None, squares: float | None) -> tuple[float | None, float | None]:
    if mean is None or n < 2 or squares is None:
        return None, None
    variance = max(0.0, (squares - n * mean * mean) / (n - 1))
    half = Z_95 * math.sqrt(variance / n)
    return round(mean - half, 4), round(mean + half, 4)


def _group_rows(rows: Sequence[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    out = []
    for r in rows:
        n = int(r["n"] or 0)
        mean = float(r["mean"]) if r["mean"] is not None else None
        low, high = _interval(n, mean, float(r["squares"]) if r["squares"] is not None else None)
        out.append(
            {
                key: r[key] if r[key] is not None else "(none)",
                "retrievals": n,
                "mean": _r(mean),
                "ci_low": low,
                "ci_high": high,
            }
        )
    return sorted(out, key=lambda g: (g["mean"] is None, g["mean"] if g["mean"] is not None else 0.0))


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _documents(value: Any) -> int:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return 0
    return len(value) if isinstance(value, list) else 0


def retrieval_view(store: Store, project: str, start: dt.datetime, end: dt.datetime, limit: int = 20) -> dict[str, Any]:
    window = [project, start, end]
    scored = (
        "FROM spans r JOIN scores s ON s.project = r.project AND s.span_id = r.span_id "
        "WHERE r.project = ? AND r.kind = 'retrieval' AND r.timestamp >= ? AND r.timestamp < ? "
        f"AND s.name = '{CONTEXT}'"
    )
    counts = store.query(
        "SELECT COUNT(*) AS n FROM spans WHERE project = ? AND kind = 'retrieval' AND timestamp >= ? AND timestamp < ?",
        window,
    ).dicts()
    least = store.query(
        "SELECT r.span_id, r.trace_id, r.name, r.retrieval_query, r.timestamp, r.documents, s.value AS relevance "
        f"{scored} ORDER BY s.value ASC, r.timestamp DESC LIMIT {int(limit)}",
        window,
    ).dicts()
    grounded: dict[str, float] = {}
    traces = [str(r["trace_id"]) for r in least]
    if traces:
        marks = ", ".join("?" for _ in traces)
        for row in store.query(
            f"SELECT trace_id, AVG(value) AS g FROM scores WHERE project = ? AND name = '{GROUNDED}' "
            f"AND trace_id IN ({marks}) GROUP BY trace_id",
            [project, *traces],
        ).dicts():
            grounded[str(row["trace_id"])] = float(row["g"]) if row["g"] is not None else math.nan
    aggregate = "COUNT(*) AS n, AVG(s.value) AS mean, SUM(s.value * s.value) AS squares"
    by_retriever = store.query(f"SELECT r.name AS retriever, {aggregate} {scored} GROUP BY r.name", window).dicts()
    by_index = store.query(
        f"SELECT json_extract_string(r.metadata, '$.index') AS idx, {aggregate} {scored} "
        "GROUP BY json_extract_string(r.metadata, '$.index')",
        window,
    ).dicts()
    for row in by_index:
        row["index"] = row.pop("idx")
    # One JOIN per SELECT, equalities only in ON, no reliance on NULLs from a LEFT JOIN: what ClickHouse takes.
    scored_retrievals = (
        f"SELECT r.span_id AS span_id, r.trace_id AS trace_id, r.project AS project, s.value AS value {scored}"
    )
    # One row per answer that followed a scored retrieval in its trace (the relevance it was given).
    answers = (
        "SELECT y.span_id AS span_id, y.value AS value, c.project AS project, c.message_id AS message_id "
        f"FROM ({scored_retrievals}) y JOIN (SELECT project, trace_id, message_id FROM spans WHERE kind = 'llm') c "
        "ON c.project = y.project AND c.trace_id = y.trace_id"
    )
    thumbs = (
        "SELECT project, message_id, feedback_type FROM store.feedback "
        "WHERE project = ? AND feedback_type IN ('thumbs_up', 'thumbs_down')"
    )
    label = "CASE WHEN f.feedback_type IN ('thumbs_up', 'thumbs_down') THEN f.feedback_type ELSE 'no thumbs' END"
    by_feedback = store.query(
        f"SELECT {label} AS feedback, COUNT(*) AS n, AVG(x.value) AS mean, SUM(x.value * x.value) AS squares "
        f"FROM ({answers}) x LEFT JOIN ({thumbs}) f ON f.project = x.project AND f.message_id = x.message_id "
        f"GROUP BY {label}",
        [*window, project],
    ).dicts()
    scored_n = sum(int(r["n"] or 0) for r in by_retriever)
    return {
        "retrievals": int(counts[0]["n"]) if counts else 0,
        "scored": scored_n,
        "least_relevant": [
            {
                "span_id": r["span_id"],
                "trace_id": r["trace_id"],
                "retriever": r["name"],
                "query": r["retrieval_query"],
                "timestamp": r["timestamp"],
                "documents": _documents(r["documents"]),
                "context_relevance": _r(r["relevance"]),
                "groundedness": _r(g)
                if (g := grounded.get(str(r["trace_id"]))) is not None and not math.isnan(g)
                else None,
            }
            for r in least
        ],
        "by_retriever": _group_rows(by_retriever, "retriever"),
        "by_index": _group_rows(by_index, "index"),
        "by_feedback": _group_rows(by_feedback, "feedback"),
    }
