"""Which hours hold an id: a map from (project, id) to the hours of its spans (or feedback), kept at write time.

Looking a trace, session, message or span up by id would otherwise scan the whole spans table (DuckDB
keeps no index on it). The map holds one row per id and hour: `(project, key, hour)`, where `key` is 32
bits of the id's hash (another id with the same key only adds an hour to read) and `hour` counts hours
since the epoch. A lookup finds the hours, then reads only those hours of spans: DuckDB skips the rest
by the min/max of `timestamp` it keeps per row group.

To find a key without scanning, most of the map is kept in sorted runs: `<name>` holds runs sorted by
(project, key), so each run's row groups cover narrow key ranges and a lookup reads about one row group
per run. New rows go to `<name>_recent` (unsorted, small); when it grows, its rows are sorted into a new
run; when runs pile up, the whole map is sorted into one. Rows are never needed to be unique: a
duplicate only repeats an hour.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb

_EPOCH = dt.datetime(1970, 1, 1)
_HOUR_US = 3_600_000_000
# Recent rows sorted into a run once they exceed this, or an eighth of the runs' rows if more.
_RECENT_MIN_ROWS = 500_000
# Runs after which the whole map is sorted into one (each run costs a lookup about one row group).
_MAX_RUNS = 16
# Ids looked up at once: with a few keys DuckDB skips the row groups of a sorted run by their min/max;
# a long list of keys spans every row group, so longer lists are looked up in chunks of this size.
LOOKUP_CHUNK = 32
# The ids of a span that may be looked up.
SPAN_ID_COLUMNS = ("trace_id", "span_id", "session_id", "message_id")
# DuckDB's hash() is not promised to stay the same across versions: the map records the key of this
# text, and a store opened by a DuckDB that hashes it differently rebuilds its maps.
HASH_CANARY = "llmlens id map"


def key_sql(expr: str) -> str:
    """SQL for the map key of the id `expr`."""
    return f"(hash({expr}) % 4294967296)::UINTEGER"


def hour_sql(expr: str) -> str:
    """SQL for the hour number (hours since the epoch) of the timestamp `expr`."""
    return f"(epoch_us({expr}) // {_HOUR_US})::INTEGER"


def hour_start(hour: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(hours=hour)


@dataclass(frozen=True, slots=True)
class IdMap:
    """One map: `store.<name>` (sorted runs) and `store.<name>_recent`, filled from `source` rows."""

    name: str
    source: str  # the table whose rows it locates: store.spans or store.feedback
    id_columns: tuple[str, ...]  # the ids of a source row that it maps

    @property
    def runs(self) -> str:
        return f"store.{self.name}"

    @property
    def recent(self) -> str:
        return f"store.{self.name}_recent"

    @property
    def _runs_key(self) -> str:
        return f"{self.name}_runs"

    def create(self, con: duckdb.DuckDBPyConnection) -> None:
        for table in (self.runs, self.recent):
            con.execute(
                f"CREATE TABLE IF NOT EXISTS {table} "
                "(project VARCHAR NOT NULL, key UINTEGER NOT NULL, hour INTEGER NOT NULL)"
            )

    def key_of(self, expr: str) -> str:
        """SQL for the key of the id `expr` in this map."""
        return key_sql(expr)

    def rows_sql(self, where: str, *, relation: str | None = None) -> str:
        """SELECT project, key, hour of the ids of the source rows (or of `relation`, with the source's
        columns) matching `where`, each at most once."""
        ids = ", ".join(self.id_columns)
        return (
            f"SELECT DISTINCT project, {key_sql('id')} AS key, hour FROM ("
            f"SELECT project, {hour_sql('timestamp')} AS hour, unnest([{ids}]) AS id "
            f"FROM {relation or self.source} WHERE {where}) WHERE id IS NOT NULL"
        )

    def add(self, con: duckdb.DuckDBPyConnection, where: str, params: Sequence[object]) -> int:
        """Inside the caller's transaction: map the ids of the source rows matching `where`."""
        row = con.execute(f"INSERT INTO {self.recent} {self.rows_sql(where)}", list(params)).fetchone()
        return int(row[0]) if row else 0

    def rebuild(self, con: duckdb.DuckDBPyConnection, where: str = "TRUE", params: Sequence[object] = ()) -> None:
        """Inside the caller's transaction: the map of every source row matching `where`, as one sorted run."""
        con.execute(f"DROP TABLE IF EXISTS {self.runs}")
        con.execute(f"DROP TABLE IF EXISTS {self.recent}")
        con.execute(f"CREATE TABLE {self.runs} AS {self.rows_sql(where)} ORDER BY project, key", list(params))
        self.create(con)
        _set_meta(con, self._runs_key, "1")

    def compact_if_due(self, con: duckdb.DuckDBPyConnection) -> None:
        """Inside the caller's transaction: sort the recent rows into a run when there are enough of them,
        and every run into one when there are too many runs."""
        recent = _count(con, self.recent)
        runs_rows = _count(con, self.runs)
        if recent < max(_RECENT_MIN_ROWS, runs_rows // 8):
            return
        con.execute(f"INSERT INTO {self.runs} SELECT DISTINCT * FROM {self.recent} ORDER BY project, key")
        con.execute(f"DROP TABLE {self.recent}")
        self.create(con)
        runs = int(_get_meta(con, self._runs_key) or "1") + 1
        if runs > _MAX_RUNS:
            sorted_table = f"{self.runs}_sorted"
            con.execute(f"CREATE OR REPLACE TABLE {sorted_table} AS SELECT * FROM {self.runs} ORDER BY project, key")
            con.execute(f"DROP TABLE {self.runs}")
            con.execute(f"ALTER TABLE {sorted_table} RENAME TO {self.name}")
            runs = 1
        _set_meta(con, self._runs_key, str(runs))

    def forget_hours(self, con: duckdb.DuckDBPyConnection, project: str, hours: Sequence[int]) -> None:
        """Inside the caller's transaction: drop the rows of `hours` of `project` (their source rows went)."""
        if not hours:
            return
        con.execute("CREATE OR REPLACE TEMP TABLE id_map_hours AS SELECT unnest(?::INTEGER[]) AS hour", [list(hours)])
        for table in (self.runs, self.recent):
            con.execute(
                f"DELETE FROM {table} WHERE project = ? AND hour >= ? AND hour <= ? "
                "AND hour IN (SELECT hour FROM id_map_hours)",
                [project, min(hours), max(hours)],
            )
        con.execute("DROP TABLE id_map_hours")

    def hours(self, cur: duckdb.DuckDBPyConnection, project: str, ids: Sequence[str]) -> list[int]:
        """The hours that may hold `ids` of `project` (as mapped so far), ascending."""
        wanted = sorted({i for i in ids if i})
        found: set[int] = set()
        for start in range(0, len(wanted), LOOKUP_CHUNK):
            chunk = wanted[start : start + LOOKUP_CHUNK]
            row = cur.execute(
                f"SELECT list(DISTINCT {key_sql('x')}) FROM unnest(?::VARCHAR[]) t(x)", [chunk]
            ).fetchone()
            keys = ", ".join(str(int(k)) for k in (row[0] if row and row[0] else []))
            if not keys:
                continue
            # Literal keys: DuckDB checks each against a row group's min/max key and skips the rest.
            for (hour,) in cur.execute(
                f"SELECT DISTINCT hour FROM {self.runs} WHERE project = ? AND key IN ({keys}) "
                f"UNION SELECT DISTINCT hour FROM {self.recent} WHERE project = ? AND key IN ({keys})",
                [project, project],
            ).fetchall():
                found.add(int(hour))
        return sorted(found)


SPAN_IDS = IdMap("span_ids", "store.spans", SPAN_ID_COLUMNS)
FEEDBACK_IDS = IdMap("feedback_ids", "store.feedback", ("message_id",))
MAPS = (SPAN_IDS, FEEDBACK_IDS)


def hour_ranges(hours: Sequence[int]) -> list[tuple[dt.datetime, dt.datetime]]:
    """Consecutive hours merged into [start, end) ranges."""
    out: list[tuple[dt.datetime, dt.datetime]] = []
    for hour in sorted(set(hours)):
        start, end = hour_start(hour), hour_start(hour + 1)
        if out and out[-1][1] == start:
            out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def hash_canary(con: duckdb.DuckDBPyConnection) -> str:
    row = con.execute(f"SELECT {key_sql('?')}", [HASH_CANARY]).fetchone()
    return str(row[0]) if row else ""


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    row = con.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0


def _get_meta(con: duckdb.DuckDBPyConnection, key: str) -> str | None:
    row = con.execute("SELECT value FROM llmlens_meta WHERE key = ?", [key]).fetchone()
    return str(row[0]) if row else None


def _set_meta(con: duckdb.DuckDBPyConnection, key: str, value: str) -> None:
    con.execute("INSERT OR REPLACE INTO llmlens_meta VALUES (?, ?)", [key, value])
