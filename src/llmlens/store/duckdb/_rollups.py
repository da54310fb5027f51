"""DuckDB rollup tables: created by migration, appended to by folds of newly stored spans
(`_pending_rollups.py`), compacted in the writer thread, rebuilt from raw spans on demand
(`llmlens rollups rebuild`, after reprice).

Each fold appends the aggregates of the spans it covers (a few rows per touched hour and key);
rows of the same key accumulate until compaction merges them (readers merge with SUM anyway, so an
uncompacted table gives the same answers, only slower).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import duckdb

from .._columns import SPAN_COLUMNS
from ..rollups import (
    MEASURES,
    ROLLUP_KEYS,
    ROLLUP_KINDS,
    SKETCH_KEYS,
    SKETCHED_METRICS,
    USER_MEASURES,
    USER_TIER_SQL,
    index_sql,
)

GRAINS = ("hour", "day")
# Appended rows after which the touched buckets are compacted.
COMPACT_AFTER_ROWS = 300_000


@dataclass(frozen=True, slots=True)
class _Table:
    name: str
    keys: tuple[str, ...]  # after project and bucket
    merged: tuple[tuple[str, str], ...]  # (column, merge aggregate)


def _tables() -> list[_Table]:
    out = []
    for grain in GRAINS:
        out.append(_Table(f"rollup_{grain}", ROLLUP_KEYS, tuple((c, f"SUM({c})") for c, _, _ in MEASURES)))
        out.append(_Table(f"sketch_{grain}", (*SKETCH_KEYS, "metric", "idx"), (("n", "SUM(n)"),)))
    user = tuple((c, f"SUM({c})") for c, _, _ in USER_MEASURES)
    out.append(_Table("user_day", ("user_id",), (*user, ("tier", "MAX(tier)"))))
    return out


TABLES = _tables()


def create_rollup_tables(con: duckdb.DuckDBPyConnection) -> None:
    for grain in GRAINS:
        keys = ", ".join(f'"{k}" VARCHAR' for k in ROLLUP_KEYS)
        measures = ", ".join(f'"{c}" {t}' for c, t, _ in MEASURES)
        con.execute(
            f"CREATE TABLE IF NOT EXISTS store.rollup_{grain} "
            f"(project VARCHAR NOT NULL, bucket TIMESTAMP NOT NULL, {keys}, {measures})"
        )
        sketch_keys = ", ".join(f'"{k}" VARCHAR' for k in SKETCH_KEYS)
        con.execute(
            f"CREATE TABLE IF NOT EXISTS store.sketch_{grain} (project VARCHAR NOT NULL, bucket TIMESTAMP NOT NULL, "
            f"{sketch_keys}, metric TINYINT NOT NULL, idx INTEGER NOT NULL, n BIGINT NOT NULL)"
        )
    user = ", ".join(f'"{c}" {t}' for c, t, _ in USER_MEASURES)
    con.execute(
        "CREATE TABLE IF NOT EXISTS store.user_day (project VARCHAR NOT NULL, bucket TIMESTAMP NOT NULL, "
        f"user_id VARCHAR, {user}, tier VARCHAR)"
    )


def _delta_statements(source: str) -> list[str]:
    """INSERTs appending the aggregates of `source` (a relation with span columns) to every table."""
    kinds = ", ".join(f"'{k}'" for k in ROLLUP_KINDS)
    keys = ", ".join(ROLLUP_KEYS)
    measures = ", ".join(expr for _, _, expr in MEASURES)
    sketch_keys = ", ".join(SKETCH_KEYS)
    metrics = ", ".join(str(m) for m in SKETCHED_METRICS.values())
    indexes = ", ".join(index_sql(col) for col in SKETCHED_METRICS)
    user = ", ".join(expr for _, _, expr in USER_MEASURES)
    out = []
    for grain in GRAINS:
        out.append(
            f"INSERT INTO store.rollup_{grain} SELECT project, date_trunc('{grain}', timestamp), {keys}, {measures} "
            f"FROM {source} WHERE kind IN ({kinds}) GROUP BY ALL"
        )
        out.append(
            f"INSERT INTO store.sketch_{grain} SELECT project, date_trunc('{grain}', timestamp) AS bucket, "
            f"{sketch_keys}, metric, idx, COUNT(*) FROM ("
            f"SELECT project, timestamp, {sketch_keys}, UNNEST([{metrics}]) AS metric, UNNEST([{indexes}]) AS idx "
            f"FROM {source} WHERE kind = 'llm') WHERE idx IS NOT NULL GROUP BY ALL"
        )
    out.append(
        f"INSERT INTO store.user_day SELECT project, date_trunc('day', timestamp), user_id, {user}, {USER_TIER_SQL} "
        f"FROM {source} WHERE kind = 'llm' AND user_id IS NOT NULL GROUP BY ALL"
    )
    return out


def signed_delta_statements(source: str, sign: int) -> list[str]:
    """The deltas of `source`, or with `sign` -1 their opposite: spans about to be deleted or changed
    take their aggregates out first (readers and compaction merge with SUM, so they cancel)."""
    statements = _delta_statements(source)
    if sign > 0:
        return statements
    out = []
    for sql, table in zip(statements, TABLES, strict=True):
        prefix = f"INSERT INTO store.{table.name} "
        assert sql.startswith(prefix)
        n_keys = 2 + len(table.keys)  # project, bucket, then the table's keys
        cols = [f"c{i}" for i in range(n_keys + len(table.merged))]
        measures = [c if name == "tier" else f"-{c}" for c, (name, _) in zip(cols[n_keys:], table.merged, strict=True)]
        out.append(
            f"{prefix}SELECT {', '.join(cols[:n_keys] + measures)} "
            f"FROM ({sql.removeprefix(prefix)}) AS d({', '.join(cols)})"
        )
    return out


def _referenced_columns() -> tuple[str, ...]:
    text = " ".join(_delta_statements("source"))
    return tuple(col for col, _, _ in SPAN_COLUMNS if re.search(rf"\b{col}\b", text))


# The span columns the deltas read: a fold copies only these out of store.spans.
DELTA_COLUMNS = _referenced_columns()


class RollupMaintainer:
    """Appends deltas within a caller's transaction and compacts the buckets they touched."""

    def __init__(self) -> None:
        self._appended = 0
        self._dirty: tuple[dt.datetime, dt.datetime] | None = None
        self._statements: dict[str, list[str]] = {}
        self._changes: list[tuple[dt.datetime, dt.datetime]] = []

    def append(self, con: duckdb.DuckDBPyConnection, source: str, first: dt.datetime, last: dt.datetime) -> None:
        """Run inside a transaction: the deltas of the spans in relation `source` (starting between
        `first` and `last`) are appended to every rollup table."""
        statements = self._statements.get(source)
        if statements is None:
            statements = self._statements[source] = _delta_statements(source)
        for sql in statements:
            row = con.execute(sql).fetchone()
            self._appended += int(row[0]) if row else 0
        self.touched(first, last)

    def touched(self, first: dt.datetime, last: dt.datetime) -> None:
        """Buckets between `first` and `last` received rows: the next compaction merges them."""
        lo, hi = (first, last) if self._dirty is None else (min(first, self._dirty[0]), max(last, self._dirty[1]))
        self._dirty = (lo, hi)
        self._changes.append((first, last))

    def drain_changes(self) -> list[tuple[dt.datetime, dt.datetime]]:
        """The time ranges touched since the last call (for the store to report once committed)."""
        changes, self._changes = self._changes, []
        return changes

    @property
    def due(self) -> bool:
        return self._appended >= COMPACT_AFTER_ROWS

    def compact(self, con: duckdb.DuckDBPyConnection) -> None:
        """Merge the rows of every touched bucket into one row per key (own transaction)."""
        if self._dirty is None:
            return
        lo = self._dirty[0].replace(hour=0, minute=0, second=0, microsecond=0)
        hi = self._dirty[1]
        con.execute("BEGIN TRANSACTION")
        try:
            for table in TABLES:
                keys = ", ".join(f'"{k}"' for k in ("project", "bucket", *table.keys))
                merged = ", ".join(agg for _, agg in table.merged)
                # Keys whose rows cancelled out (spans deleted or moved to another key) are dropped.
                count = table.merged[0][1]
                con.execute(
                    f"CREATE OR REPLACE TEMP TABLE rollup_compacted AS SELECT {keys}, {merged} "
                    f"FROM store.{table.name} WHERE bucket >= ? AND bucket <= ? GROUP BY ALL HAVING {count} <> 0",
                    [lo, hi],
                )
                con.execute(f"DELETE FROM store.{table.name} WHERE bucket >= ? AND bucket <= ?", [lo, hi])
                con.execute(f"INSERT INTO store.{table.name} SELECT * FROM rollup_compacted")
            con.execute("DROP TABLE rollup_compacted")
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        self._appended = 0
        self._dirty = None


def rebuild_rollups(con: duckdb.DuckDBPyConnection, since: dt.datetime | None = None) -> None:
    """Recompute every rollup from raw spans (from the day of `since` on). Caller holds a transaction."""
    cutoff = since.replace(hour=0, minute=0, second=0, microsecond=0) if since else None
    for table in TABLES:
        if cutoff is None:
            con.execute(f"DELETE FROM store.{table.name}")
        else:
            con.execute(f"DELETE FROM store.{table.name} WHERE bucket >= ?", [cutoff])
    source = "store.spans"
    if cutoff is not None:
        source = f"(SELECT * FROM store.spans WHERE timestamp >= TIMESTAMP '{cutoff.isoformat(sep=' ')}')"
    for sql in _delta_statements(source):
        con.execute(sql)
