"""Records as columns for DuckDB: one numpy object array a column, read by a replacement scan.

A span insert names only the columns that hold a value somewhere in its batch: DuckDB binds, casts
and converts every column a statement names, so a single event (most of whose 63 columns are empty)
or an OTLP batch without HTTP or retrieval spans costs less; the columns left out are stored NULL,
as they would have been.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from operator import attrgetter
from typing import Any

import duckdb
import numpy as np

from .._columns import ColumnType
from ._schema import _SQL_TYPES

Columns = tuple[tuple[str, ColumnType, str], ...]

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


def column_arrays(records: Sequence[Any], columns: Columns) -> dict[str, np.ndarray[Any, Any]]:
    return {
        col: np.array(values, dtype=object)
        for (col, _, _), values in zip(columns, column_values(records, columns), strict=True)
    }


def select_list(columns: Columns, *, typed: bool = False) -> str:
    """The batch's columns as the table stores them (`typed`: cast to the column's type and named)."""
    parts = []
    for col, kind, _ in columns:
        if kind == "timestamp":
            expr = f'make_timestamp(b."{col}"::BIGINT)'
        elif kind == "json":
            expr = f'b."{col}"::JSON'
        elif typed:
            expr = f'b."{col}"::{_SQL_TYPES[kind]}'
        else:
            expr = f'b."{col}"'
        parts.append(f'{expr} AS "{col}"' if typed else expr)
    return ", ".join(parts)


class SpanInsert:
    """INSERT of a batch of spans into `table`, stamped with the commit's `ingested_at`."""

    def __init__(self, table: str, columns: Columns) -> None:
        self._table = table
        self._columns = columns
        # One statement per set of columns that hold values: batches of one kind of traffic repeat a few.
        self._statements: dict[tuple[int, ...], str] = {}

    def _statement(self, present: tuple[int, ...]) -> str:
        sql = self._statements.get(present)
        if sql is None:
            named = tuple(self._columns[i] for i in present)
            names = ", ".join(f'"{col}"' for col, _, _ in named)
            sql = (
                f"INSERT INTO {self._table} ({names}, ingested_at) "
                f"SELECT {select_list(named, typed=True)}, ?::TIMESTAMP FROM batch b"
            )
            if len(self._statements) < 256:
                self._statements[present] = sql
        return sql

    def run(self, con: duckdb.DuckDBPyConnection, records: Sequence[Any], stamp: dt.datetime) -> int:
        """Inside the caller's transaction; returns the rows inserted."""
        values = column_values(records, self._columns)
        size = len(records)
        present = tuple(i for i, column in enumerate(values) if column.count(None) != size)
        batch = {  # noqa: F841 - read by DuckDB's replacement scan
            self._columns[i][0]: np.array(values[i], dtype=object) for i in present
        }
        row = con.execute(self._statement(present), [stamp]).fetchone()
        return int(row[0]) if row else 0
