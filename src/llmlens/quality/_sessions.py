"""Reading ended sessions for inferred feedback: which sessions to look at, their calls and activity.

Every query names its project and reads a store already scoped to it. SQL is the portable subset
both backends run (ClickHouse gets it translated).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llmlens.store import Store, confined_to

from ._inference import Call, Turn, turns_from_calls

# A visit is read from this long before the scan's start: its earlier calls are part of it.
VISIT_LOOKBACK_S = 6 * 3600.0
# At most this many spans of one session are read per scan (the latest ones).
MAX_SPANS_PER_SESSION = 2_000
_CHUNK = 200


def _utc(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.UTC).replace(tzinfo=None)


def _seconds(value: Any) -> float:
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
        return aware.timestamp()
    return float(value)


def projects_with_new_sessions(store: Store, since_s: float) -> list[str]:
    """Projects that stored session spans since `since_s` (ingestion time, the store's clock).

    Read across projects: the service serves them all, each then through a store scoped to it."""
    with confined_to(None):
        result = store.query(
            "SELECT DISTINCT project FROM store.spans WHERE session_id IS NOT NULL AND ingested_at >= ?",
            [_utc(since_s)],
        )
    return sorted(str(r[0]) for r in result.rows)


def sessions_stored_since(store: Store, project: str, since_s: float, *, limit: int) -> list[str]:
    """Sessions of `project` that got spans stored since `since_s` (ingestion time): by when they were
    stored, not when they happened, so late or imported spans are not missed. No upper bound: a store that
    keeps whole seconds (ClickHouse) would hide the current second's spans behind one.

    At most the `limit` most recently stored, oldest first: after an import of millions of sessions the
    first scan must not hold them all in memory (about 120 bytes each in Python)."""
    result = store.query(
        "SELECT session_id FROM store.spans WHERE project = ? AND session_id IS NOT NULL AND ingested_at >= ? "
        f"GROUP BY session_id ORDER BY MAX(ingested_at) DESC, session_id LIMIT {int(limit)}",
        [project, _utc(since_s)],
    )
    return [str(r[0]) for r in reversed(result.rows)]


def last_activity(store: Store, project: str, session_ids: Sequence[str]) -> dict[str, tuple[float, float]]:
    """Each session's (latest span start, latest store time): when it last happened, when it last got data."""
    out: dict[str, tuple[float, float]] = {}
    for start in range(0, len(session_ids), _CHUNK):
        chunk = list(session_ids[start : start + _CHUNK])
        result = store.query(
            "SELECT session_id, max(timestamp) AS last, max(ingested_at) AS stored FROM store.spans "
            f"WHERE project = ? AND session_id IN ({_placeholders(len(chunk))}) GROUP BY session_id",
            [project, *chunk],
        )
        out.update((str(r[0]), (_seconds(r[1]), _seconds(r[2]))) for r in result.rows)
    return out


@dataclass(slots=True)
class SessionRecords:
    turns: list[Turn]
    activity_ends: list[float]


def _placeholders(n: int) -> str:
    return ", ".join("?" for _ in range(n))


def session_records(
    store: Store, project: str, session_ids: Sequence[str], since_s: float
) -> dict[str, SessionRecords]:
    """Each session's requests (turns, in time order) and the end time of every span, from `since_s` on."""
    out: dict[str, SessionRecords] = {}
    for start in range(0, len(session_ids), _CHUNK):
        chunk = list(session_ids[start : start + _CHUNK])
        result = store.query(
            "SELECT session_id, span_id, trace_id, message_id, kind, timestamp, latency_ms, feature, "
            "CASE WHEN kind = 'llm' THEN input_messages END AS input_messages, "
            "CASE WHEN kind = 'llm' THEN prompt END AS prompt, "
            "CASE WHEN kind = 'llm' THEN template_id END AS template_id, "
            "CASE WHEN kind = 'llm' THEN variables END AS variables "
            f"FROM spans WHERE project = ? AND session_id IN ({_placeholders(len(chunk))}) AND timestamp >= ? "
            "ORDER BY session_id, timestamp, span_id",
            [project, *chunk, _utc(since_s)],
        )
        rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in result.dicts():
            rows[str(row["session_id"])].append(row)
        for session_id, spans in rows.items():
            calls: list[Call] = []
            ends: list[float] = []
            for s in spans[-MAX_SPANS_PER_SESSION:]:
                start_s = _seconds(s["timestamp"])
                end_s = start_s + float(s["latency_ms"] or 0.0) / 1000.0
                ends.append(end_s)
                if s["kind"] == "llm":
                    calls.append(
                        Call(
                            span_id=str(s["span_id"]),
                            trace_id=str(s["trace_id"]),
                            message_id=str(s["message_id"]) if s["message_id"] else None,
                            start_s=start_s,
                            end_s=end_s,
                            input_messages=s["input_messages"],
                            prompt=s["prompt"],
                            template_id=s["template_id"],
                            variables=s["variables"],
                            feature=s["feature"],
                        )
                    )
            out[session_id] = SessionRecords(turns_from_calls(calls), ends)
    return out


def rated_messages(store: Store, project: str, message_ids: Sequence[str]) -> set[str]:
    """The messages among `message_ids` that got a thumbs up or down."""
    rated: set[str] = set()
    for start in range(0, len(message_ids), _CHUNK):
        chunk = list(message_ids[start : start + _CHUNK])
        result = store.query(
            "SELECT DISTINCT message_id FROM store.feedback WHERE project = ? "
            f"AND feedback_type IN ('thumbs_up', 'thumbs_down') AND message_id IN ({_placeholders(len(chunk))})",
            [project, *chunk],
        )
        rated.update(str(r[0]) for r in result.rows)
    return rated
