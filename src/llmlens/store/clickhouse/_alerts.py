"""Alert state in ClickHouse (18.16 and later): transition claims and API-managed rules.

ClickHouse has no transactions and no unique keys, so a transition is claimed by a deterministic
rule (see `_alert_state.py`): each claimant inserts its own row, stamped with the ClickHouse
server's clock; after a settle time it reads back the key's winner, the claim with the lowest
(claimed_at, claimed_by). The history is a plain MergeTree that keeps every claim (a
ReplacingMergeTree would keep an arbitrary row of a key on merge, not necessarily the winner);
readers show the winning row of each key only.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from .._alert_state import AlertRecord, StoredAlertRule
from ._cluster import Layout
from ._connection import GuardedClient

HISTORY_TABLE = "llmlens_alert_history"
RULES_TABLE = "llmlens_alert_rules"

HISTORY_DDL = f"""
CREATE TABLE IF NOT EXISTS {HISTORY_TABLE} (
  project String,
  rule String,
  seq Int64,
  state String,
  previous_state Nullable(String),
  changed_at_us Int64,
  value Nullable(Float64),
  threshold Nullable(Float64),
  sample_size Nullable(Int64),
  message String,
  details String,
  claimed_by String,
  claimed_at DateTime('UTC')
) ENGINE = MergeTree ORDER BY (project, rule, seq)
"""
# The latest change of a name wins (its version is the change time in microseconds).
RULES_DDL = f"""
CREATE TABLE IF NOT EXISTS {RULES_TABLE} (
  name String,
  spec Nullable(String),
  updated_at_us UInt64
) ENGINE = ReplacingMergeTree(updated_at_us) ORDER BY name
"""

_RECORD_COLUMNS = (
    "project, rule, seq, state, previous_state, changed_at_us, value, threshold, sample_size, message, details"
)
# The winning claim of each key: lowest (claimed_at, claimed_by).
_WINNERS = (
    f"SELECT {_RECORD_COLUMNS} FROM {HISTORY_TABLE}{{where}} "
    "ORDER BY claimed_at, claimed_by LIMIT 1 BY project, rule, seq"
)
_EPOCH = datetime(1970, 1, 1)


def _to_us(value: datetime) -> int:
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return (value - _EPOCH) // timedelta(microseconds=1)


def _from_us(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=int(value))


def create_alert_tables(client: GuardedClient, layout: Layout | None = None) -> None:
    """On a cluster both tables are replicated on every node: every server reads the same claims."""
    layout = layout or Layout("")
    client.execute(layout.every_node_ddl(HISTORY_DDL, HISTORY_TABLE, "MergeTree"))
    client.execute(layout.every_node_ddl(RULES_DDL, RULES_TABLE, "ReplacingMergeTree(updated_at_us)"))


def claim_transition(client: GuardedClient, record: AlertRecord, claimant: str, *, settle_s: float) -> bool:
    """Insert this claimant's claim, wait `settle_s`, and say whether it is the key's winner."""
    params: dict[str, Any] = {
        "project": record.project,
        "rule": record.rule,
        "seq": int(record.seq),
        "state": record.state,
        "previous_state": record.previous_state,
        "changed_at_us": _to_us(record.changed_at),
        "value": None if record.value is None else float(record.value),
        "threshold": None if record.threshold is None else float(record.threshold),
        "sample_size": None if record.sample_size is None else int(record.sample_size),
        "message": record.message,
        "details": record.details,
        "claimed_by": claimant,
    }
    # `now()` is the ClickHouse server's clock: the llmlens servers' clocks do not decide the winner.
    client.execute(
        f"INSERT INTO {HISTORY_TABLE} ({_RECORD_COLUMNS}, claimed_by, claimed_at) "
        "SELECT %(project)s, %(rule)s, toInt64(%(seq)s), %(state)s, CAST(%(previous_state)s AS Nullable(String)), "
        "toInt64(%(changed_at_us)s), CAST(%(value)s AS Nullable(Float64)), "
        "CAST(%(threshold)s AS Nullable(Float64)), CAST(%(sample_size)s AS Nullable(Int64)), "
        "%(message)s, %(details)s, %(claimed_by)s, now()",
        params,
    )
    # claimed_at has whole seconds: a rival stamped in the same second as this claim started its insert
    # less than a second after it. Waiting longer than that plus an insert's duration means every
    # claim that could beat this one is visible when the winner is read.
    time.sleep(settle_s)
    rows = client.execute(
        f"SELECT claimed_by FROM {HISTORY_TABLE} WHERE project = %(project)s AND rule = %(rule)s "
        "AND seq = %(seq)s ORDER BY claimed_at, claimed_by LIMIT 1",
        {"project": record.project, "rule": record.rule, "seq": int(record.seq)},
    )
    return bool(rows) and rows[0][0] == claimant


def read_history(
    client: GuardedClient, *, project: str | None, rule: str | None, latest_only: bool, limit: int | None
) -> list[AlertRecord]:
    conditions: list[str] = []
    params: dict[str, Any] = {}
    for column, value in (("project", project), ("rule", rule)):
        if value is not None:
            conditions.append(f"{column} = %({column})s")
            params[column] = value
    where = (" WHERE " + " AND ".join(conditions)) if conditions else ""
    source = _WINNERS.format(where=where)
    if latest_only:
        source = f"SELECT {_RECORD_COLUMNS} FROM ({source}) ORDER BY seq DESC LIMIT 1 BY project, rule"
    sql = f"SELECT {_RECORD_COLUMNS} FROM ({source}) ORDER BY changed_at_us DESC, seq DESC"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    rows = client.execute(sql, params)
    return [
        AlertRecord(
            project=r[0],
            rule=r[1],
            seq=int(r[2]),
            state=r[3],
            previous_state=r[4],
            changed_at=_from_us(r[5]),
            value=r[6],
            threshold=r[7],
            sample_size=None if r[8] is None else int(r[8]),
            message=r[9] or "",
            details=r[10] or "{}",
        )
        for r in rows
    ]


def read_rules(client: GuardedClient) -> list[StoredAlertRule]:
    rows = client.execute(
        f"SELECT name, spec, updated_at_us FROM (SELECT name, spec, updated_at_us FROM {RULES_TABLE} "
        "ORDER BY updated_at_us DESC LIMIT 1 BY name) ORDER BY updated_at_us, name"
    )
    return [StoredAlertRule(name=r[0], spec=r[1], updated_at=_from_us(r[2])) for r in rows]


def save_rule(client: GuardedClient, name: str, spec: str | None, at: datetime) -> None:
    client.execute(
        f"INSERT INTO {RULES_TABLE} (name, spec, updated_at_us) VALUES",
        [{"name": name, "spec": spec, "updated_at_us": max(0, _to_us(at))}],
    )
