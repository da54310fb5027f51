"""The page rollups of `store/rollups/_page_tables.py` in DuckDB: created by migration, appended to as
spans are caught up (`_write_indexes.py`), recomputed by hour where rows change or go, compacted as they grow.

Appended rows of the same key accumulate until compaction merges them (readers merge with the same
aggregates, so an uncompacted table answers the same, only slower). Where stored rows change or are
deleted, the hours they were in are computed again from what is left, and their days from those hours:
MIN and MAX cannot be taken back out of a row the way a sum can.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

import duckdb

from ..rollups._page_tables import GRAINS, PAGE_ROLLUPS, SPAN_ROLLUPS, PageRollup
from . import _slow_calls
from ._id_index import hour_sql, hour_start

# Appended rows after which the touched buckets are compacted.
COMPACT_AFTER_ROWS = 200_000


def create_tables(con: duckdb.DuckDBPyConnection) -> None:
    _slow_calls.create_table(con)
    for rollup in PAGE_ROLLUPS:
        columns = ", ".join(f'"{c}" {t}' for c, t in rollup.columns())
        for grain in GRAINS:
            con.execute(
                f"CREATE TABLE IF NOT EXISTS {rollup.table(grain)} "
                f"(project VARCHAR NOT NULL, bucket TIMESTAMP NOT NULL, {columns})"
            )


def _insert(rollup: PageRollup, grain: str, relation: str) -> str:
    bucket = f"date_trunc('{grain}', {rollup.time})"
    return f"INSERT INTO {rollup.table(grain)} {rollup.aggregate_sql(relation, bucket)}"


def _days_from_hours(rollup: PageRollup, where: str) -> str:
    """INSERT the day rows of the hour rows matching `where` (merged)."""
    keys = ", ".join(f'"{k}"' for k in rollup.key_columns())
    merged = ", ".join(rollup.merges())
    return (
        f"INSERT INTO {rollup.table('day')} SELECT project, date_trunc('day', bucket), {keys}, {merged} "
        f"FROM {rollup.table('hour')} WHERE {where} GROUP BY ALL"
    )


class PageRollupMaintainer:
    """Appends the page rollups' deltas within a caller's transaction and compacts what they touched."""

    def __init__(self) -> None:
        self._appended = 0
        self._dirty: tuple[dt.datetime, dt.datetime] | None = None

    def append(self, con: duckdb.DuckDBPyConnection, relation: str, first: dt.datetime, last: dt.datetime) -> None:
        """Inside a transaction: add the spans in `relation` (span columns) to every span rollup."""
        for rollup in SPAN_ROLLUPS:
            for grain in GRAINS:
                row = con.execute(_insert(rollup, grain, relation)).fetchone()
                self._appended += int(row[0]) if row else 0
        _slow_calls.append(con, relation)
        lo, hi = (first, last) if self._dirty is None else (min(first, self._dirty[0]), max(last, self._dirty[1]))
        self._dirty = (lo, hi)

    @property
    def due(self) -> bool:
        return self._appended >= COMPACT_AFTER_ROWS

    def compact(self, con: duckdb.DuckDBPyConnection) -> None:
        """Inside a transaction: merge the rows of every touched bucket into one row per key."""
        if self._dirty is None:
            return
        lo = self._dirty[0].replace(hour=0, minute=0, second=0, microsecond=0)
        hi = self._dirty[1]
        for rollup in SPAN_ROLLUPS:
            keys = ", ".join(f'"{k}"' for k in ("project", "bucket", *rollup.key_columns()))
            merged = ", ".join(f"{m} AS {c}" for m, c in zip(rollup.merges(), rollup.value_columns(), strict=True))
            for grain in GRAINS:
                table = rollup.table(grain)
                con.execute(
                    f"CREATE OR REPLACE TEMP TABLE page_rollup_compacted AS SELECT {keys}, {merged} "
                    f"FROM {table} WHERE bucket >= ? AND bucket <= ? GROUP BY ALL",
                    [lo, hi],
                )
                con.execute(f"DELETE FROM {table} WHERE bucket >= ? AND bucket <= ?", [lo, hi])
                con.execute(f"INSERT INTO {table} SELECT * FROM page_rollup_compacted")
        con.execute("DROP TABLE IF EXISTS page_rollup_compacted")
        _slow_calls.compact(con, lo, hi)
        self._appended = 0
        self._dirty = None

    def recompute(
        self,
        con: duckdb.DuckDBPyConnection,
        rollups: Iterable[PageRollup],
        hours: Mapping[str, Iterable[int]],
        *,
        source_filter: str = "TRUE",
        source_params: tuple[object, ...] = (),
    ) -> None:
        """Inside a transaction: the rows of `hours` ({project: hour numbers}) and of their days, computed
        again from the rows of each rollup's source that match `source_filter`."""
        rollups = list(rollups)
        for project, project_hours in hours.items():
            wanted = sorted(set(project_hours))
            if not wanted:
                continue
            lo, hi = hour_start(wanted[0]), hour_start(wanted[-1] + 1)
            days = sorted({hour_start(h).replace(hour=0) for h in wanted})
            con.execute(
                "CREATE OR REPLACE TEMP TABLE page_rollup_hours AS SELECT unnest(?::INTEGER[]) AS hour", [wanted]
            )
            if any(r.source == "store.spans" for r in rollups):
                _slow_calls.recompute(con, project, lo, hi, "page_rollup_hours", source_filter, source_params)
            for rollup in rollups:
                hour_table, day_table = rollup.table("hour"), rollup.table("day")
                con.execute(
                    f"DELETE FROM {hour_table} WHERE project = ? AND bucket >= ? AND bucket < ? "
                    f"AND {hour_sql('bucket')} IN (SELECT hour FROM page_rollup_hours)",
                    [project, lo, hi],
                )
                relation = (
                    f"(SELECT * FROM {rollup.source} WHERE project = ? AND {rollup.time} >= ? AND {rollup.time} < ? "
                    f"AND {hour_sql(rollup.time)} IN (SELECT hour FROM page_rollup_hours) AND {source_filter})"
                )
                con.execute(_insert(rollup, "hour", relation), [project, lo, hi, *source_params])
                day_lo, day_hi = days[0], days[-1] + dt.timedelta(days=1)
                in_days = "date_trunc('day', bucket) IN (SELECT unnest(?::TIMESTAMP[]))"
                con.execute(
                    f"DELETE FROM {day_table} WHERE project = ? AND bucket >= ? AND bucket < ? AND {in_days}",
                    [project, day_lo, day_hi, days],
                )
                con.execute(
                    _days_from_hours(rollup, f"project = ? AND bucket >= ? AND bucket < ? AND {in_days}"),
                    [project, day_lo, day_hi, days],
                )
        con.execute("DROP TABLE IF EXISTS page_rollup_hours")

    def rebuild(
        self, con: duckdb.DuckDBPyConnection, rollups: Iterable[PageRollup], source_filter: str = "TRUE"
    ) -> None:
        """Inside a transaction: every row of `rollups` computed again from their sources."""
        rollups = list(rollups)
        if any(r.source == "store.spans" for r in rollups):
            _slow_calls.rebuild(con)
        for rollup in rollups:
            for grain in GRAINS:
                con.execute(f"DELETE FROM {rollup.table(grain)}")
            con.execute(_insert(rollup, "hour", f"(SELECT * FROM {rollup.source} WHERE {source_filter})"))
            con.execute(_days_from_hours(rollup, "TRUE"))
        self._appended = 0
        self._dirty = None
