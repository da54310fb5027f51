"""Records as columns for DuckDB, and DuckDB's appender to load them.

Records are read attribute by attribute into one tuple a column (JSON columns encoded once), then
handed to DuckDB row by row through its appender: no intermediate array library, and the appender
converts Python values in C++. A span insert names only the columns that hold a value somewhere in its
batch; the columns left out are stored NULL, as they would have been.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from itertools import repeat
from operator import attrgetter
from typing import Any

import duckdb

from .._columns import ColumnType
from ._schema import _SQL_TYPES

Columns = tuple[tuple[str, ColumnType, str], ...]

_EPOCH = dt.datetime(1970, 1, 1)
# One encoder for every value (json.dumps with options builds a new one per call).
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)


def to_json(value: Any) -> str | None:
    if value is None:
        return None
    return _JSON.encode(value)


def column_values(records: Sequence[Any], columns: Columns) -> list[tuple[Any, ...]]:
    """Each column's values, in record order, JSON columns encoded (an empty `attributes` is NULL)."""
    # Every attribute of a record in one C call, then transposed into columns.
    row_values = attrgetter(*(attr for _, _, attr in columns))
    transposed: list[tuple[Any, ...]] = (
        list(zip(*map(row_values, records), strict=True)) if records else [() for _ in columns]
    )
    encode = _JSON.encode
    for i, (col, kind, _) in enumerate(columns):
        if kind == "json":
            values = transposed[i]
            if col == "attributes":
                transposed[i] = tuple([encode(v) if v else None for v in values])
            else:
                transposed[i] = tuple([None if v is None else encode(v) for v in values])
    return transposed


def stage(
    con: duckdb.DuckDBPyConnection,
    name: str,
    columns: Sequence[tuple[str, str]],
    rows: Iterable[Sequence[Any]],
    *,
    replace: bool = False,
) -> None:
    """Load `rows` into the temporary table `name` ((column, SQL type) each), replacing what it held
    (and, with `replace`, its columns).

    For statements that join a batch to stored rows (dedupe, updates): the appender takes Python values
    as they are, so nothing is built per value on our side; the table lives as long as the connection.
    """
    defined = ", ".join(f'"{col}" {sql_type}' for col, sql_type in columns)
    if replace:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} ({defined})")
    else:
        con.execute(f"CREATE TEMP TABLE IF NOT EXISTS {name} ({defined})")
        con.execute(f"DELETE FROM {name}")
    appender = con.appender(name)
    appender.append_rows(rows)
    appender.flush()


def staged_types(columns: Columns) -> list[tuple[str, str]]:
    """The staging table's columns for records of `columns` (timestamps as µs since the epoch)."""
    staged = {"timestamp": "BIGINT", "json": "VARCHAR"}
    return [(col, staged.get(kind) or _SQL_TYPES[kind]) for col, kind, _ in columns]


def select_list(columns: Columns) -> str:
    """A staged batch `b`'s columns (`staged_types`) as the table stores them."""
    parts = []
    for col, kind, _ in columns:
        if kind == "timestamp":
            parts.append(f'make_timestamp(b."{col}")')
        elif kind == "json":
            parts.append(f'b."{col}"::JSON')
        else:
            parts.append(f'b."{col}"')
    return ", ".join(parts)


class SpanInsert:
    """INSERT of a batch of spans into `table`, stamped with the commit's `ingested_at`.

    Rows go through DuckDB's appender, which converts each Python value to its column's type, straight
    into the table. Only the columns holding a value somewhere in the batch are named (the rest are
    NULL), so a single event, most of whose columns are empty, converts a handful of values.
    """

    def __init__(self, table: str, columns: Columns) -> None:
        self._table = table
        self._columns = columns
        self._timestamps = {i for i, (_, kind, _) in enumerate(columns) if kind == "timestamp"}
        # One appender per set of columns that hold values (making one costs ~0.3 ms): batches of one kind
        # of traffic repeat a few sets. They are the writer connection's, used under its lock.
        self._appenders: dict[tuple[int, ...], duckdb.Appender] = {}

    def run(self, con: duckdb.DuckDBPyConnection, records: Sequence[Any], stamp: dt.datetime) -> int:
        """Inside the caller's transaction; returns the rows inserted."""
        values = column_values(records, self._columns)
        size = len(records)
        present = tuple(i for i, column in enumerate(values) if column.count(None) != size)
        for i in self._timestamps.intersection(present):
            values[i] = tuple([None if us is None else _EPOCH + dt.timedelta(microseconds=us) for us in values[i]])
        appender = self._appenders.get(present)
        if appender is None:
            appender = con.appender(self._table, columns=[*(self._columns[i][0] for i in present), "ingested_at"])
            if len(self._appenders) < 256:
                self._appenders[present] = appender
        try:
            appender.append_rows(zip(*(values[i] for i in present), repeat(stamp, size), strict=True))
            appender.flush()
        except Exception:
            appender.clear()  # the caller rolls back: nothing of this batch may reach the next one
            raise
        return size
