"""Feedback joined to the LLM calls it rates, kept whichever of the two arrives first.

`store.feedback_calls` holds one row per feedback event and LLM call of the message it names (what a
join of `feedback` and the `llm` spans on project and message id gives), with what the Feedback page
groups and lists by: the call's time, model, feature, template, user, latency and budget tier, the
feedback's type, text and time. `first_call` marks the call the `scores` and `feedback_events` views
name for a message: its LLM span with the smallest span id.

Rows are refreshed per message: every row of the messages whose feedback or calls changed is dropped
and made again from the stored feedback and calls of those messages, so the table always equals the
join, and `first_call` follows a call with a smaller span id arriving late.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import duckdb

from ..rollups._page_tables import FEEDBACK_CALL_COLUMNS, FEEDBACK_CALLS, TIER_SQL
from ._id_index import hour_sql

# The span columns a row takes from its call.
CALL_COLUMNS = (
    "project",
    "message_id",
    "span_id",
    "trace_id",
    "timestamp",
    "model",
    "feature",
    "template_id",
    "template_version",
    "user_id",
    "latency_ms",
    "metadata",
)
# Temp tables of a refresh: the messages to refresh, their calls and their feedback.
MESSAGES = "fc_messages"
_CALLS = "fc_calls"
_FEEDBACK = "fc_feedback"


def create_table(con: duckdb.DuckDBPyConnection) -> None:
    columns = ", ".join(f"{c} {t}" for c, t in FEEDBACK_CALL_COLUMNS)
    con.execute(f"CREATE TABLE IF NOT EXISTS {FEEDBACK_CALLS} ({columns})")


def _rows_sql(feedback: str, calls: str) -> str:
    """The table's rows for the feedback rows in `feedback` and the LLM spans in `calls` (relations)."""
    return (
        "SELECT f.project, f.feedback_id, f.message_id, f.feedback_type, f.feedback_text, f.timestamp, "
        "c.span_id, c.trace_id, c.timestamp, c.model, c.feature, c.template_id, c.template_version, "
        f"c.user_id, c.latency_ms, {TIER_SQL.replace('metadata', 'c.metadata')}, "
        "c.span_id = min(c.span_id) OVER (PARTITION BY c.project, c.message_id) "
        f"FROM {feedback} f JOIN {calls} c ON c.project = f.project AND c.message_id = f.message_id"
    )


def rebuild(con: duckdb.DuckDBPyConnection) -> None:
    """Inside the caller's transaction: the whole table again from every stored feedback event and call."""
    con.execute(f"DELETE FROM {FEEDBACK_CALLS}")
    calls = "(SELECT * FROM store.spans WHERE kind = 'llm' AND message_id IS NOT NULL)"
    # In call time order, so that reads of a time window skip most row groups.
    con.execute(f"INSERT INTO {FEEDBACK_CALLS} SELECT * FROM ({_rows_sql('store.feedback', calls)}) ORDER BY 9")


def refresh(
    con: duckdb.DuckDBPyConnection,
    calls_where: str,
    calls_params: Sequence[object],
    feedback_where: str,
    feedback_params: Sequence[object],
) -> dict[str, set[int]]:
    """Inside the caller's transaction: remake the rows of the messages in temp table `fc_messages`
    (project, message_id) from their LLM spans matching `calls_where` and their feedback matching
    `feedback_where`. Returns the hours of calls whose rows changed, by project."""
    in_messages = f"(project, message_id) IN (SELECT project, message_id FROM {MESSAGES})"
    touched: dict[str, set[int]] = defaultdict(set)
    old = con.execute(
        f"SELECT DISTINCT project, {hour_sql('called_at')} FROM {FEEDBACK_CALLS} WHERE {in_messages}"
    ).fetchall()
    for project, hour in old:
        touched[str(project)].add(int(hour))
    if old:
        con.execute(f"DELETE FROM {FEEDBACK_CALLS} WHERE {in_messages}")
    columns = ", ".join(CALL_COLUMNS)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_CALLS} AS SELECT {columns} FROM store.spans "
        f"WHERE kind = 'llm' AND {in_messages} AND {calls_where}",
        list(calls_params),
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_FEEDBACK} AS SELECT * FROM store.feedback "
        f"WHERE {in_messages} AND {feedback_where}",
        list(feedback_params),
    )
    con.execute(f"INSERT INTO {FEEDBACK_CALLS} SELECT * FROM ({_rows_sql(_FEEDBACK, _CALLS)}) ORDER BY 9")
    for project, hour in con.execute(
        f"SELECT DISTINCT project, {hour_sql('timestamp')} FROM {_CALLS} "
        f"WHERE (project, message_id) IN (SELECT project, message_id FROM {_FEEDBACK})"
    ).fetchall():
        touched[str(project)].add(int(hour))
    con.execute(f"DROP TABLE {_CALLS}")
    con.execute(f"DROP TABLE {_FEEDBACK}")
    return touched
