"""Stored scores beside the LLM calls they name, kept whichever of the two arrives first.

`store.score_calls` holds one row per stored score whose span id names a stored LLM call (what a join of
`scores` and the `llm` spans on project and span id gives), with what the score columns group by: the
call's time, model, feature, template, user, latency and budget tier. The score rollups summarise it.

New scores and newly caught-up calls add their rows; where calls change or go, or scores go, every row of
the hours they touch is dropped and made again from the stored scores and calls of those hours. So the
table always equals the join (over the calls caught up).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

import duckdb

from ..rollups._page_tables import SCORE_CALL_COLUMNS, SCORE_CALLS, TIER_SQL
from ._id_index import hour_sql, hour_start

_HOURS = "score_call_hours"
_ADDED = "score_calls_added"


def create_table(con: duckdb.DuckDBPyConnection) -> None:
    columns = ", ".join(f"{c} {t}" for c, t in SCORE_CALL_COLUMNS)
    con.execute(f"CREATE TABLE IF NOT EXISTS {SCORE_CALLS} ({columns})")


def _rows_sql(scores: str, calls: str, calls_where: str) -> str:
    """The table's rows for the scores of `scores` (relation with the score columns) on the LLM spans of
    `calls` (relation with the span columns) matching `calls_where`."""
    tier = TIER_SQL.replace("metadata", "c.metadata")
    return (
        "SELECT sc.project, sc.score_id, sc.name, sc.data_type, sc.value, c.span_id, c.timestamp AS called_at, "
        "c.model, c.feature, c.template_id, c.template_version, c.user_id, c.latency_ms, "
        f"{tier} AS tier FROM (SELECT * FROM {calls} WHERE kind = 'llm' AND {calls_where}) c "
        f"JOIN {scores} sc ON sc.project = c.project AND sc.span_id = c.span_id"
    )


def rebuild(con: duckdb.DuckDBPyConnection) -> None:
    """Inside the caller's transaction: the whole table again from every stored score and call."""
    create_table(con)
    con.execute(f"DELETE FROM {SCORE_CALLS}")
    # In call time order, so that reads of a time window skip most row groups.
    rows = _rows_sql("store.scores", "store.spans", "TRUE")
    con.execute(f"INSERT INTO {SCORE_CALLS} SELECT * FROM ({rows}) ORDER BY called_at")


def add(
    con: duckdb.DuckDBPyConnection,
    scores: str,
    calls: str,
    calls_where: str = "TRUE",
    params: Sequence[Any] = (),
) -> dict[str, set[int]]:
    """Inside the caller's transaction: add the rows of the scores in `scores` on the calls in `calls`
    matching `calls_where` (none of them here yet). Returns the hours of those calls, by project."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE {_ADDED} AS {_rows_sql(scores, calls, calls_where)}", list(params))
    hours = _hours(con, _ADDED, "TRUE")
    if hours:
        con.execute(f"INSERT INTO {SCORE_CALLS} SELECT * FROM {_ADDED} ORDER BY called_at")
    con.execute(f"DROP TABLE {_ADDED}")
    return hours


def recompute(
    con: duckdb.DuckDBPyConnection,
    project: str,
    hours: Iterable[int],
    spans_until: dt.datetime,
    scores_until: dt.datetime,
) -> None:
    """Inside the caller's transaction: the rows of `project`'s calls in `hours` (hour numbers) made again
    from the calls and scores stamped up to `spans_until` and `scores_until`."""
    wanted = sorted(set(hours))
    if not wanted:
        return
    lo, hi = hour_start(wanted[0]), hour_start(wanted[-1] + 1)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {_HOURS} AS SELECT unnest(?::INTEGER[]) AS hour", [wanted])
    in_hours = f"IN (SELECT hour FROM {_HOURS})"
    con.execute(
        f"DELETE FROM {SCORE_CALLS} WHERE project = ? AND called_at >= ? AND called_at < ? "
        f"AND {hour_sql('called_at')} {in_hours}",
        [project, lo, hi],
    )
    calls = (
        f"project = ? AND timestamp >= ? AND timestamp < ? AND {hour_sql('timestamp')} {in_hours} AND ingested_at <= ?"
    )
    scores = "(SELECT * FROM store.scores WHERE ingested_at <= ?)"
    add(con, scores, "store.spans", calls, [project, lo, hi, spans_until, scores_until])
    con.execute(f"DROP TABLE {_HOURS}")


def hours_of_scores(
    con: duckdb.DuckDBPyConnection, where: str, params: Sequence[Any] | dict[str, Any]
) -> dict[str, set[int]]:
    """{project: hours} of the calls of the stored scores matching `where` (their rows here say)."""
    scored = f"(project, score_id) IN (SELECT project, score_id FROM store.scores WHERE {where})"
    return _hours(con, SCORE_CALLS, scored, params)


def _hours(
    con: duckdb.DuckDBPyConnection, rows: str, where: str, params: Sequence[Any] | dict[str, Any] = ()
) -> dict[str, set[int]]:
    """{project: hours of `called_at`} of the rows of `rows` (this table's columns) matching `where`."""
    hours: dict[str, set[int]] = {}
    sql = f"SELECT DISTINCT project, {hour_sql('called_at')} FROM {rows} WHERE {where}"
    for project, hour in con.execute(sql, params).fetchall():
        hours.setdefault(str(project), set()).add(int(hour))
    return hours
