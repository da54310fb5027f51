"""Which hours hold an id on ClickHouse: `llmlens_id_map`, one row per project, id, source and hour, filled
by materialized views on every insert of spans (trace, span, session and message ids) and feedback (the
message it rates). Sorted by (project, id), a lookup reads one granule per monthly partition; a trace or
session lookup then reads only those hours of the spans table (its sort key holds the hour).

A row whose spans went (a DELETE, or retention) only sends a lookup to an hour with nothing in it; the
map has the spans table's TTL, and retention by whole days (`delete_spans_before`) drops its rows too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._located import Located

TABLE = "llmlens_id_map"
_SOURCES = {"spans": 0, "feedback": 1}
_HOUR_S = 3600


def _views(spans_table: str, feedback_table: str) -> dict[str, str]:
    """Materialized view name -> the SELECT it inserts (typed as the table's columns: 18.16 does not convert)."""
    hour = "toStartOfHour(toDateTime(timestamp, 'UTC'))"
    ids = "[trace_id, span_id, ifNull(session_id, ''), ifNull(message_id, '')]"
    return {
        f"{TABLE}_spans_mv": (
            f"SELECT project, id, toUInt8(0) AS source, {hour} AS bucket FROM {spans_table} "
            f"ARRAY JOIN {ids} AS id WHERE id != ''"
        ),
        f"{TABLE}_feedback_mv": (
            f"SELECT project, message_id AS id, toUInt8(1) AS source, {hour} AS bucket FROM {feedback_table}"
        ),
    }


def table_ddl(*, engine: str | None = None) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {TABLE} (project String, id String, source UInt8, bucket DateTime('UTC')) "
        f"ENGINE = {engine or 'ReplacingMergeTree()'} PARTITION BY toYYYYMM(bucket) "
        "ORDER BY (project, id, source, bucket)"
    )


def create_id_map(client: Any, spans_table: str, feedback_table: str, *, backfill: bool) -> None:
    """The map and its materialized views; with `backfill` (a database from before the map), filled from the
    stored spans and feedback first (a map left half-filled by an interrupted run is made again)."""
    views = _views(spans_table, feedback_table)
    if backfill:
        for view in views:
            client.execute(f"DROP TABLE IF EXISTS {view}")
        client.execute(f"DROP TABLE IF EXISTS {TABLE}")
    client.execute(table_ddl())
    if backfill:
        for select in views.values():
            client.execute(f"INSERT INTO {TABLE} (project, id, source, bucket) {select}")
    for view, select in views.items():
        client.execute(f"CREATE MATERIALIZED VIEW IF NOT EXISTS {view} TO {TABLE} AS {select}")


def ttl_statement(days: int) -> str:
    """An hour of the map goes once every row in it is past the retention limit."""
    return f"ALTER TABLE {TABLE} MODIFY TTL bucket + INTERVAL 1 HOUR + INTERVAL {int(days)} DAY"


def locate(client: Any, project: str, ids: Sequence[str], source: str = "spans") -> Located:
    """The hours that may hold spans (`source` "spans") or feedback ("feedback") with any of `ids`."""
    wanted = sorted({i for i in ids if i})
    if not wanted:
        return Located([], None)
    rows = client.execute(
        f"SELECT DISTINCT intDiv(toUInt32(bucket), {_HOUR_S}) FROM {TABLE} "
        "WHERE project = %(project)s AND id IN %(ids)s AND source = %(source)s",
        {"project": project, "ids": tuple(wanted), "source": _SOURCES[source]},
    )
    return Located(sorted(int(r[0]) for r in rows), None)


def forget_before(project_condition: str, before: str) -> str:
    """The condition on map rows of spans of a project (`project = '...'`) from before `before` (SQL time)."""
    return f"{project_condition} AND source = 0 AND bucket < {before}"
