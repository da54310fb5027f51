"""Alert state in DuckDB: `store.alert_history` keyed (project, rule, seq) and `store.alert_rules`.

One process owns a DuckDB file and writes through one connection under the store's write lock, so
a claim is simply an insert guarded by the primary key: the row that lands wins (see `_alert_state.py`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb

from .._alert_state import AlertRecord, StoredAlertRule

HISTORY_DDL = """
CREATE TABLE IF NOT EXISTS store.alert_history (
  project VARCHAR NOT NULL,
  rule VARCHAR NOT NULL,
  seq BIGINT NOT NULL,
  state VARCHAR NOT NULL,
  previous_state VARCHAR,
  changed_at TIMESTAMP NOT NULL,
  value DOUBLE,
  threshold DOUBLE,
  sample_size BIGINT,
  message VARCHAR,
  details VARCHAR,
  claimed_by VARCHAR,
  PRIMARY KEY (project, rule, seq)
)
"""
RULES_DDL = """
CREATE TABLE IF NOT EXISTS store.alert_rules (
  name VARCHAR NOT NULL PRIMARY KEY,
  spec VARCHAR,
  updated_at TIMESTAMP
)
"""
_COLUMNS = "project, rule, seq, state, previous_state, changed_at, value, threshold, sample_size, message, details"


def create_alert_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS store")
    con.execute(HISTORY_DDL)
    con.execute(RULES_DDL)


def claim_transition(con: duckdb.DuckDBPyConnection, record: AlertRecord, claimant: str) -> bool:
    """Insert the record unless its key exists; True when this insert landed (caller holds the write lock)."""
    key = [record.project, record.rule, record.seq]
    try:
        row = con.execute(
            f"INSERT INTO store.alert_history ({_COLUMNS}, claimed_by) SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? "
            "WHERE NOT EXISTS (SELECT 1 FROM store.alert_history WHERE project = ? AND rule = ? AND seq = ?)",
            [
                *key,
                record.state,
                record.previous_state,
                record.changed_at,
                record.value,
                record.threshold,
                record.sample_size,
                record.message,
                record.details,
                claimant,
                *key,
            ],
        ).fetchone()
    except duckdb.ConstraintException:
        return False
    return bool(row and int(row[0]) == 1)


def read_history(
    cur: duckdb.DuckDBPyConnection,
    *,
    project: str | None,
    rule: str | None,
    latest_only: bool,
    limit: int | None,
) -> list[AlertRecord]:
    where: list[str] = []
    params: list[Any] = []
    for column, value in (("project", project), ("rule", rule)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    sql = f"SELECT {_COLUMNS} FROM store.alert_history"
    if where:
        sql += " WHERE " + " AND ".join(where)
    if latest_only:
        sql += " QUALIFY row_number() OVER (PARTITION BY project, rule ORDER BY seq DESC) = 1"
    sql += " ORDER BY changed_at DESC, seq DESC"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    try:
        rows = cur.execute(sql, params).fetchall()
    except duckdb.CatalogException:
        return []  # a file opened read-only before any alert ran: nothing recorded yet
    return [
        AlertRecord(
            project=r[0],
            rule=r[1],
            seq=int(r[2]),
            state=r[3],
            previous_state=r[4],
            changed_at=r[5],
            value=r[6],
            threshold=r[7],
            sample_size=None if r[8] is None else int(r[8]),
            message=r[9] or "",
            details=r[10] or "{}",
        )
        for r in rows
    ]


def read_rules(cur: duckdb.DuckDBPyConnection) -> list[StoredAlertRule]:
    try:
        rows = cur.execute("SELECT name, spec, updated_at FROM store.alert_rules ORDER BY updated_at").fetchall()
    except duckdb.CatalogException:
        return []
    return [StoredAlertRule(name=r[0], spec=r[1], updated_at=r[2]) for r in rows]


def save_rule(con: duckdb.DuckDBPyConnection, name: str, spec: str | None, at: datetime) -> None:
    """Replace the rule's row (caller holds the write lock)."""
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DELETE FROM store.alert_rules WHERE name = ?", [name])
        con.execute("INSERT INTO store.alert_rules (name, spec, updated_at) VALUES (?, ?, ?)", [name, spec, at])
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
