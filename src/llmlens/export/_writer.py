"""Write one view over one time window to a Parquet, JSON Lines or CSV file.

DuckDB stores use DuckDB's own `COPY (query) TO file` (no pyarrow needed at run time); other stores
fetch rows and write JSON Lines or CSV here, and Parquet through pyarrow when it is installed.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmlens._private_files import make_private_dir, restrict_to_owner
from llmlens.store import Store

from ._schema import FORMATS, ExportKind

# The generic path reads this much time per query, so memory stays bounded on long windows.
_CHUNK = dt.timedelta(days=1)
_ISO_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_DUCKDB_TYPES = {"string": "VARCHAR", "json": "VARCHAR", "int64": "BIGINT", "float64": "DOUBLE", "bool": "BOOLEAN"}
EXTENSIONS = {"parquet": "parquet", "jsonl": "jsonl", "csv": "csv"}
MEDIA_TYPES = {
    "parquet": "application/vnd.apache.parquet",
    "jsonl": "application/x-ndjson",
    "csv": "text/csv",
}


class ExportError(ValueError):
    """An export that cannot be made (bad format, missing library); the message says why."""


@dataclass(frozen=True, slots=True)
class ExportSpec:
    """One project's rows of one view with `start <= timestamp < end` (naive UTC)."""

    kind: ExportKind
    project: str
    start: dt.datetime
    end: dt.datetime
    format: str = "parquet"

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ExportError(f"format must be one of {', '.join(FORMATS)}, got {self.format!r}")
        if self.start >= self.end:
            raise ExportError("since must be before until")

    def where(self) -> str:
        return "project = ? AND timestamp >= ? AND timestamp < ?"

    def params(self) -> list[Any]:
        return [self.project, self.start, self.end]


def export_to_file(store: Store, spec: ExportSpec, path: Path, *, native: bool | None = None) -> int:
    """Write the rows to `path` (replaced atomically); returns how many. `native` forces DuckDB COPY on/off."""
    use_copy = store.url.startswith("duckdb://") if native is None else native
    make_private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.part-{os.getpid()}")
    try:
        count = _duckdb_copy(store, spec, tmp) if use_copy else _generic(store, spec, tmp)
        restrict_to_owner(tmp)  # exported rows are user data: 0600, whoever wrote the file
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return count


# -- DuckDB: COPY -------------------------------------------------------------------------------


def _duckdb_projection(spec: ExportSpec) -> str:
    parts = []
    for name, typ in spec.kind.columns:
        col = f'"{name}"'
        if typ == "timestamp":
            expr = f"{col} AT TIME ZONE 'UTC'" if spec.format == "parquet" else f"strftime({col}, '{_ISO_FORMAT}')"
        else:  # the declared type, whatever the view computes (e.g. json_array_length is UBIGINT)
            expr = f"CAST({col} AS {_DUCKDB_TYPES[typ]})"
        # Written as CASE so every column is nullable: DuckDB marks a Parquet column REQUIRED when the
        # rows it read happen to have no NULL, and warehouses refuse to append files whose modes differ.
        parts.append(f"CASE WHEN {col} IS NULL THEN NULL ELSE {expr} END AS {col}")
    return ", ".join(parts)


def _duckdb_copy(store: Store, spec: ExportSpec, path: Path) -> int:
    options = {"parquet": "FORMAT parquet", "jsonl": "FORMAT json", "csv": "FORMAT csv, HEADER true"}[spec.format]
    target = str(path).replace("'", "''")
    sql = (
        f"COPY (SELECT {_duckdb_projection(spec)} FROM {spec.kind.view} WHERE {spec.where()} "
        f"ORDER BY timestamp) TO '{target}' ({options})"
    )
    result = store.query(sql, spec.params())
    return int(result.rows[0][0]) if result.rows else 0


# -- any store: fetch and write -----------------------------------------------------------------


def _chunks(spec: ExportSpec) -> Iterator[tuple[dt.datetime, dt.datetime]]:
    start = spec.start
    while start < spec.end:
        end = min(start + _CHUNK, spec.end)
        yield start, end
        start = end


def _rows(store: Store, spec: ExportSpec) -> Iterator[list[Any]]:
    names = ", ".join(spec.kind.column_names)
    sql = f"SELECT {names} FROM {spec.kind.view} WHERE {spec.where()} ORDER BY timestamp"
    types = [t for _, t in spec.kind.columns]
    for start, end in _chunks(spec):
        for row in store.query(sql, [spec.project, start, end]).rows:
            yield [_value(v, t) for v, t in zip(row, types, strict=True)]


def _value(value: Any, typ: str) -> Any:
    if value is None:
        return None
    if typ == "timestamp" and isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.replace(tzinfo=dt.UTC)
    if typ == "json" and not isinstance(value, str):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    if typ == "bool":
        return bool(value)
    return value


def _text(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.strftime(_ISO_FORMAT)
    return value


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"  # as DuckDB, BigQuery and Snowflake write them
    return _text(value)


def _generic(store: Store, spec: ExportSpec, path: Path) -> int:
    names = spec.kind.column_names
    count = 0
    if spec.format == "parquet":
        return _parquet(store, spec, path)
    with path.open("w", encoding="utf-8", newline="") as out:
        if spec.format == "csv":
            writer = csv.writer(out)
            writer.writerow(names)
            for row in _rows(store, spec):
                writer.writerow([_csv_cell(v) for v in row])
                count += 1
        else:
            for row in _rows(store, spec):
                record = {n: _text(v) for n, v in zip(names, row, strict=True)}
                out.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
                count += 1
    return count


def _parquet(store: Store, spec: ExportSpec, path: Path) -> int:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ExportError("Parquet export from this store needs pyarrow: pip install pyarrow") from None
    arrow_types = {
        "string": pa.string(),
        "json": pa.string(),
        "int64": pa.int64(),
        "float64": pa.float64(),
        "bool": pa.bool_(),
        "timestamp": pa.timestamp("us", tz="UTC"),
    }
    schema = pa.schema([(name, arrow_types[typ]) for name, typ in spec.kind.columns])
    count = 0
    with pq.ParquetWriter(str(path), schema) as writer:
        for start, end in _chunks(spec):
            chunk = ExportSpec(spec.kind, spec.project, start, end, spec.format)
            rows = list(_rows(store, chunk))
            if not rows:
                continue
            columns = list(zip(*rows, strict=True))
            writer.write_table(
                pa.table([pa.array(list(c), type=f.type) for c, f in zip(columns, schema, strict=True)], schema=schema)
            )
            count += len(rows)
    return count
