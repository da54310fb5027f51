"""Where spans, feedback and scores are kept: the Store protocol and its backends."""

from __future__ import annotations

from pathlib import Path

from ._alert_state import AlertRecord, StoredAlertRule
from ._columns import FEEDBACK_COLUMNS, QUERYABLE_VIEWS, SCORE_COLUMNS, SPAN_COLUMNS
from ._protocol import QueryResult, ScoreWriteResult, SqlFailed, SqlRejected, Store, StoreUnavailable, WriteResult
from ._scoping import ProjectStore, confined_to, current_project, force_project

__all__ = [
    "FEEDBACK_COLUMNS",
    "QUERYABLE_VIEWS",
    "SCORE_COLUMNS",
    "SPAN_COLUMNS",
    "AlertRecord",
    "ProjectStore",
    "QueryResult",
    "ScoreWriteResult",
    "SqlFailed",
    "SqlRejected",
    "Store",
    "StoreUnavailable",
    "StoredAlertRule",
    "WriteResult",
    "confined_to",
    "current_project",
    "force_project",
    "open_store",
]


def open_store(
    url: str | None, data_dir: Path, *, read_only: bool = False, memory_mb: int = 0, upgrade: bool = False
) -> Store:
    """`duckdb://PATH` (default: `<data_dir>/llmlens.duckdb`) or `clickhouse://user:pass@host:port/db`.

    `memory_mb` caps an embedded store's memory (DuckDB's buffer cache and query state); 0: DuckDB's default.
    `upgrade` lets a ClickHouse database made by an older llmlens be migrated (`llmlens migrate`); without
    it such a database is refused with that command to run.
    """
    if url is None or url == "" or url == "duckdb" or url.startswith("duckdb://"):
        from .duckdb import DuckDBStore

        path = Path(url.removeprefix("duckdb://")) if url and url != "duckdb" else data_dir / "llmlens.duckdb"
        return DuckDBStore(path, read_only=read_only, memory_mb=memory_mb)
    if url.startswith("clickhouse://"):
        try:
            from .clickhouse import ClickHouseStore  # type: ignore[import-not-found,unused-ignore]
        except ImportError as exc:
            raise ValueError(
                f"the ClickHouse store needs its client libraries ({exc.name} is missing): "
                "install the clickhouse extra (pip install '.[server,clickhouse]' in a clone of llmlens)"
            ) from None

        store: Store = ClickHouseStore(url, upgrade=upgrade)
        return store
    raise ValueError(f"unknown store URL {url!r}: use duckdb://PATH or clickhouse://user:pass@host:port/db")
