"""Feedback on the calls of one trace or session, as the `feedback_events` and `scores` views give it, read
through the id maps and `feedback_calls` instead of the views (which join every feedback event to every
call before the filter applies). Stores without `feedback_calls` (ClickHouse, an old read-only file) find
each message's first call through the id map instead."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from llmlens.store import Store

from ._common import rows
from ._id_lookup import rows_by_id

THUMBS = ("thumbs_up", "thumbs_down")
_SCORE_COLUMNS = (
    "score_id",
    "span_id",
    "message_id",
    "name",
    "data_type",
    "value",
    "label",
    "source",
    "evaluator",
    "evaluator_version",
    "comment",
    "reasoning",
    "judge_cost_usd",
    "timestamp",
)


STORED_ONLY = "source <> 'feedback'"  # stored scores: thumbs come from the feedback table


def page_rollups(store: Store) -> bool:
    """Whether the store keeps `feedback_calls` and the page rollups, caught up with every stored row."""
    return bool(getattr(store, "page_rollups", False))


@dataclass(slots=True)
class SpanFeedback:
    """Feedback on the messages of some spans."""

    events: list[dict[str, Any]] = field(default_factory=list)  # feedback_events rows, oldest first
    thumbs: list[dict[str, Any]] = field(default_factory=list)  # `user_feedback` scores on these spans' calls


def _messages(spans: Sequence[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(str(s["message_id"]) for s in spans if s.get("message_id")))


def feedback_on_spans(
    store: Store, project: str, spans: Sequence[dict[str, Any]], *, resolve_calls: bool = True
) -> SpanFeedback:
    """The feedback events on the spans' messages (`feedback_events` rows: message_id, feedback_type,
    feedback_text, user_id, timestamp), and the thumbs among them whose rated call (the message's LLM span
    with the smallest span id) is one of `spans`, as `scores` rows (with `resolve_calls`)."""
    messages = _messages(spans)
    found = rows_by_id(
        store,
        project,
        "message_id",
        messages,
        "feedback_id, message_id, feedback_type, feedback_text, user_id, timestamp",
        table="feedback",
    )
    if not found:
        return SpanFeedback()
    # `resolve_calls` False: the caller shows neither the events' users nor the thumbs.
    calls: list[dict[str, Any]] = []
    if resolve_calls:
        calls = _calls(store, project, spans) if page_rollups(store) else _calls_looked_up(store, project, spans, found)
    callers = _call_users(store, project, found, calls) if resolve_calls else {}
    events = [
        {
            "message_id": f["message_id"],
            "feedback_type": f["feedback_type"],
            "feedback_text": f["feedback_text"],
            "user_id": f["user_id"] if f["user_id"] is not None else callers.get(str(f["message_id"])),
            "timestamp": f["timestamp"],
        }
        for f in sorted(found, key=lambda f: f["timestamp"])
    ]
    first_call = {str(c["feedback_id"]): c for c in calls if c["first_call"]}
    thumbs = [
        _thumb_score(f, first_call[str(f["feedback_id"])])
        for f in found
        if f["feedback_type"] in THUMBS and str(f["feedback_id"]) in first_call
    ]
    return SpanFeedback(events=events, thumbs=thumbs)


def _calls(store: Store, project: str, spans: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The feedback_calls rows of the spans' LLM calls (read by their call times, which the spans give)."""
    llm = [s for s in spans if s["kind"] == "llm" and s.get("message_id")]
    if not llm:
        return []
    ids = [str(s["span_id"]) for s in llm]
    marks = ", ".join("?" for _ in ids)
    return rows(
        store,
        "SELECT feedback_id, message_id, span_id, user_id, first_call FROM store.feedback_calls "
        f"WHERE project = ? AND called_at >= ? AND called_at <= ? AND span_id IN ({marks})",
        [project, min(s["timestamp"] for s in llm), max(s["timestamp"] for s in llm), *ids],
    )


def first_calls(store: Store, project: str, messages: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Each message's rated call: its LLM span with the smallest span id (span_id, trace_id), found through
    the id map."""
    first: dict[str, dict[str, Any]] = {}
    for c in rows_by_id(store, project, "message_id", messages, "message_id, span_id, trace_id", where="kind = 'llm'"):
        message = str(c["message_id"])
        if message not in first or str(c["span_id"]) < str(first[message]["span_id"]):
            first[message] = c
    return first


def _calls_looked_up(
    store: Store, project: str, spans: Sequence[dict[str, Any]], feedback: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """`_calls` for stores without feedback_calls: the spans' LLM calls paired with the feedback on their
    messages, each marked whether it is its message's first call (over every call of the message)."""
    llm = [s for s in spans if s["kind"] == "llm" and s.get("message_id")]
    first = first_calls(store, project, _messages(llm))
    by_message: dict[str, list[dict[str, Any]]] = {}
    for f in feedback:
        by_message.setdefault(str(f["message_id"]), []).append(f)
    return [
        {
            "feedback_id": f["feedback_id"],
            "message_id": f["message_id"],
            "span_id": s["span_id"],
            "user_id": s.get("user_id"),
            "first_call": str(first[str(s["message_id"])]["span_id"]) == str(s["span_id"]),
        }
        for s in llm
        for f in by_message.get(str(s["message_id"]), [])
    ]


def _call_users(
    store: Store, project: str, feedback: list[dict[str, Any]], calls: list[dict[str, Any]]
) -> dict[str, Any]:
    """For messages whose feedback names no user: a user of the message's LLM calls (the view's any_value)."""
    wanted = {str(f["message_id"]) for f in feedback if f["user_id"] is None}
    if not wanted:
        return {}
    users = {str(c["message_id"]): c["user_id"] for c in calls if c["user_id"] is not None}
    missing = sorted(wanted - users.keys())
    if missing:
        for r in rows_by_id(
            store, project, "message_id", missing, "message_id, user_id", where="kind = 'llm' AND user_id IS NOT NULL"
        ):
            users.setdefault(str(r["message_id"]), r["user_id"])
    return users


def _thumb_score(feedback: dict[str, Any], call: dict[str, Any]) -> dict[str, Any]:
    return {
        "score_id": f"feedback:{feedback['feedback_id']}",
        "span_id": call["span_id"],
        "message_id": feedback["message_id"],
        "name": "user_feedback",
        "data_type": "boolean",
        "value": 1.0 if feedback["feedback_type"] == "thumbs_up" else 0.0,
        "label": None,
        "source": "feedback",
        "evaluator": None,
        "evaluator_version": None,
        "comment": feedback["feedback_text"],
        "reasoning": None,
        "judge_cost_usd": None,
        "timestamp": feedback["timestamp"],
    }


def stored_trace_scores(store: Store, project: str, trace_id: str) -> list[dict[str, Any]]:
    """The scores stored for a trace (not thumbs), as the `scores` view resolves them."""
    if page_rollups(store):  # DuckDB applies the trace filter inside the view
        return rows(
            store,
            f"SELECT {', '.join(_SCORE_COLUMNS)} FROM scores WHERE project = ? AND {STORED_ONLY} AND trace_id = ?",
            [project, trace_id],
        )
    return _trace_scores_resolved(store, project, trace_id)


def _trace_scores_resolved(store: Store, project: str, trace_id: str) -> list[dict[str, Any]]:
    """`stored_trace_scores` without the view (which resolves every stored score before the filter applies):
    the scores that may be the trace's, resolved as the view does. A score is on the trace named by its own
    trace id, else by the trace of its span, else (no span either) by its message's first call."""
    spans = {
        str(s["span_id"]): s
        for s in rows_by_id(store, project, "trace_id", [trace_id], "span_id, trace_id, message_id, kind")
    }
    messages = _messages([s for s in spans.values() if s["kind"] == "llm"])
    in_spans, in_messages = (", ".join("?" for _ in ids) or "NULL" for ids in (spans, messages))
    candidates = rows(
        store,
        f"SELECT {', '.join(_SCORE_COLUMNS)}, trace_id AS own_trace_id FROM store.scores WHERE project = ? "
        f"AND {STORED_ONLY} AND (trace_id = ? OR span_id IN ({in_spans}) OR message_id IN ({in_messages}))",
        [project, trace_id, *spans, *messages],
    )
    elsewhere = [str(c["span_id"]) for c in candidates if c["span_id"] and str(c["span_id"]) not in spans]
    for s in rows_by_id(store, project, "span_id", elsewhere, "span_id, trace_id, message_id, kind"):
        spans.setdefault(str(s["span_id"]), s)
    unplaced = [str(c["message_id"]) for c in candidates if not c["span_id"] and c["message_id"]]
    first = first_calls(store, project, unplaced)
    out = []
    for c in candidates:
        span = spans.get(str(c["span_id"])) if c["span_id"] else None
        call = first.get(str(c["message_id"])) if not c["span_id"] and c["message_id"] else None
        own_trace = c.pop("own_trace_id")
        trace = own_trace or (span["trace_id"] if span else None) or (call["trace_id"] if call else None)
        if trace != trace_id:
            continue
        if call is not None:
            c["span_id"] = call["span_id"]
        if not c["message_id"] and span is not None:
            c["message_id"] = span["message_id"]
        out.append(c)
    return out


def score_order(score: dict[str, Any]) -> tuple[Any, ...]:
    """The order of a trace's scores: time, name, id."""
    return (score["timestamp"], score["name"], score["score_id"])
