"""Where spans and feedback are kept: the Store protocol and its backends."""

from __future__ import annotations

from pathlib import Path

from ._alert_state import AlertRecord, StoredAlertRule
from ._columns import FEEDBACK_COLUMNS, QUERYABLE_VIEWS, SPAN_COLUMNS
from ._protocol import QueryResult, SqlFailed, SqlRejected, Store, WriteResult
from ._scoping import ProjectStore, confined_to, current_project, force_project

__all__ = [
    "FEEDBACK_COLUMNS",
    "QUERYABLE_VIEWS",
    "SPAN_COLUMNS",
    "AlertRecord",
    "ProjectStore",
    "QueryResult",
    "SqlFailed",
    "SqlRejected",
    "Store",
    "StoredAlertRule",
    "WriteResult",
    "confined_to",
    "current_project",
    "force_project",
    "open_store",
]


def open_store(url: str | None, data_dir: Path, *, read_only: bool = False) -> Store:
    """`duckdb://PATH` (default: `<data_dir>/llmlens.duckdb`) or `clickhouse://user:pass@host:port/db`."""
    if url is None or url == "" or url == "duckdb":
        from .duckdb import DuckDBStore

        return DuckDBStore(data_dir / "llmlens.duckdb", read_only=read_only)
    if url.startswith("duckdb://"):
        from .duckdb import DuckDBStore

        return DuckDBStore(Path(url.removeprefix("duckdb://")), read_only=read_only)
    if url.startswith("clickhouse://"):
        from .clickhouse import ClickHouseStore  # type: ignore[import-not-found,unused-ignore]

        store: Store = ClickHouseStore(url)
        return store
    raise ValueError(f"unknown store URL {url!r}: use duckdb://PATH or clickhouse://user:pass@host:port/db")
