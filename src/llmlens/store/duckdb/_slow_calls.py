"""The slowest LLM calls of each hour and model (SLOW_CALLS in `store/rollups/_page_tables.py`) in DuckDB,
kept beside the page rollups: appended as spans are caught up, trimmed to the kept number when the page
rollups compact, made again for the hours whose spans change or go."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import duckdb

from ..rollups._page_tables import SLOW_CALL_COLUMNS, SLOW_CALLS, SLOW_CALLS_KEPT
from ._id_index import hour_sql

_COLUMNS = ", ".join(c for c, _ in SLOW_CALL_COLUMNS)
_LLM = "kind = 'llm'"
# Per project, hour and model, the calls ranked by latency (NaN, which DuckDB sorts above every number, first).
_RANKED = (
    "row_number() OVER (PARTITION BY project, date_trunc('hour', timestamp), COALESCE(model, '') "
    "ORDER BY latency_ms DESC, span_id)"
)


def create_table(con: duckdb.DuckDBPyConnection) -> None:
    columns = ", ".join(f"{c} {t}" for c, t in SLOW_CALL_COLUMNS)
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {SLOW_CALLS} (project VARCHAR NOT NULL, bucket TIMESTAMP NOT NULL, {columns})"
    )


def _slowest_of(relation: str, where: str) -> str:
    """SELECT the kept slowest calls per hour and model of `relation` (rows with the span columns kept)."""
    return (
        f"SELECT project, date_trunc('hour', timestamp), {_COLUMNS} FROM {relation} "
        f"WHERE latency_ms IS NOT NULL AND ({where}) QUALIFY {_RANKED} <= {SLOW_CALLS_KEPT}"
    )


def append(con: duckdb.DuckDBPyConnection, relation: str) -> None:
    """Inside a transaction: the slowest calls of each hour and model among the spans in `relation`."""
    con.execute(f"INSERT INTO {SLOW_CALLS} {_slowest_of(relation, _LLM)}")


def compact(con: duckdb.DuckDBPyConnection, lo: dt.datetime, hi: dt.datetime) -> None:
    """Inside a transaction: only the kept number per hour and model, in the buckets from `lo` to `hi`."""
    kept = _slowest_of(SLOW_CALLS, "bucket >= ? AND bucket <= ?")
    con.execute(f"CREATE OR REPLACE TEMP TABLE slow_calls_kept AS {kept}", [lo, hi])
    con.execute(f"DELETE FROM {SLOW_CALLS} WHERE bucket >= ? AND bucket <= ?", [lo, hi])
    con.execute(f"INSERT INTO {SLOW_CALLS} SELECT * FROM slow_calls_kept")
    con.execute("DROP TABLE slow_calls_kept")


def recompute(
    con: duckdb.DuckDBPyConnection,
    project: str,
    lo: dt.datetime,
    hi: dt.datetime,
    hours_table: str,
    source_filter: str,
    source_params: Sequence[object],
) -> None:
    """Inside a transaction: the rows of the hours listed in temp table `hours_table` (between `lo` and
    `hi`) made again from the spans of those hours that match `source_filter`."""
    in_hours = f"IN (SELECT hour FROM {hours_table})"
    in_range = f"project = ? AND bucket >= ? AND bucket < ? AND {hour_sql('bucket')} {in_hours}"
    con.execute(f"DELETE FROM {SLOW_CALLS} WHERE {in_range}", [project, lo, hi])
    spans = (
        "(SELECT * FROM store.spans WHERE project = ? AND timestamp >= ? AND timestamp < ? "
        f"AND {hour_sql('timestamp')} {in_hours})"
    )
    where = f"{_LLM} AND ({source_filter})"
    con.execute(f"INSERT INTO {SLOW_CALLS} {_slowest_of(spans, where)}", [project, lo, hi, *source_params])


def rebuild(con: duckdb.DuckDBPyConnection) -> None:
    """Inside a transaction: every row made again from the stored spans."""
    con.execute(f"DELETE FROM {SLOW_CALLS}")
    con.execute(f"INSERT INTO {SLOW_CALLS} {_slowest_of('store.spans', _LLM)}")
