"""Feedback on the calls of one trace or session, as the `feedback_events` and `scores` views give it, read
through the id maps and `feedback_calls` instead of the views (which join every feedback event to every
call before the filter applies). Stores without them (ClickHouse, an old read-only file) read the views."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from llmlens.store import Store

from ._common import rows
from ._id_lookup import rows_by_id

THUMBS = ("thumbs_up", "thumbs_down")
_EVENT_COLUMNS = ("message_id", "feedback_type", "feedback_text", "user_id", "timestamp")
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


def page_rollups(store: Store) -> bool:
    """Whether the store keeps `feedback_calls` and the page rollups, caught up with every stored row."""
    return bool(getattr(store, "page_rollups", False))


@dataclass(slots=True)
class SpanFeedback:
    """Feedback on the messages of some spans."""

    events: list[dict[str, Any]] = field(default_factory=list)  # feedback_events rows, oldest first
    # `user_feedback` scores on these spans' calls; None where the store has no feedback_calls (read `scores`)
    thumbs: list[dict[str, Any]] | None = field(default_factory=list)


def _messages(spans: Sequence[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(str(s["message_id"]) for s in spans if s.get("message_id")))


def feedback_on_spans(
    store: Store, project: str, spans: Sequence[dict[str, Any]], *, resolve_calls: bool = True
) -> SpanFeedback:
    """The feedback events on the spans' messages (`feedback_events` rows: message_id, feedback_type,
    feedback_text, user_id, timestamp), and the thumbs among them whose rated call (the message's LLM span
    with the smallest span id) is one of `spans`, as `scores` rows (with `resolve_calls`)."""
    messages = _messages(spans)
    if not page_rollups(store):
        if not messages:
            return SpanFeedback(thumbs=None)
        marks = ", ".join("?" for _ in messages)
        events = rows(
            store,
            f"SELECT {', '.join(_EVENT_COLUMNS)} FROM feedback_events "
            f"WHERE project = ? AND message_id IN ({marks}) ORDER BY timestamp",
            [project, *messages],
        )
        return SpanFeedback(events=events, thumbs=None)
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
    calls = _calls(store, project, spans, messages) if resolve_calls else []
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


def _calls(store: Store, project: str, spans: Sequence[dict[str, Any]], messages: list[str]) -> list[dict[str, Any]]:
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
    return rows(
        store,
        f"SELECT {', '.join(_SCORE_COLUMNS)} FROM scores WHERE project = ? AND source <> 'feedback' AND trace_id = ?",
        [project, trace_id],
    )


def score_order(score: dict[str, Any]) -> tuple[Any, ...]:
    """The order of a trace's scores: time, name, id."""
    return (score["timestamp"], score["name"], score["score_id"])
