"""Alert state as the store keeps it: transition records, API-managed rules, and the claim rule.

The alerts package decides what a transition is; the store only keeps them, and decides which
evaluator owns one. Every transition is keyed (project, rule, seq). When several llmlens servers
share a store they all evaluate the rules, so two of them may record the same key; the store's
`claim_alert_transition` says yes to exactly one of them, and only that one notifies:

- DuckDB (one process owns the file): an insert guarded by the primary key; the row that lands wins.
- ClickHouse (no transactions, no unique keys): every claim is inserted with the ClickHouse server's
  own clock (`claimed_at`, so the llmlens servers' clocks do not matter) and the claimant's id. The
  winner of a key is its claim with the lowest (claimed_at, claimed_by). A claimant waits a settle
  time before reading the winner back, so every claim that could beat it has landed by then; all
  claimants therefore read the same winner, and a late evaluator (later claimed_at) always loses.
  Readers show only the winning row of each key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """One recorded transition: `rule` of `project` entered `state` at `changed_at` (naive UTC)."""

    project: str
    rule: str
    seq: int
    state: str
    previous_state: str | None
    changed_at: datetime
    value: float | None = None
    threshold: float | None = None
    sample_size: int | None = None
    message: str = ""
    details: str = "{}"  # JSON text


@dataclass(frozen=True, slots=True)
class StoredAlertRule:
    """A rule created, replaced (`spec` is its JSON) or deleted (`spec` is None) through the API."""

    name: str
    spec: str | None
    updated_at: datetime
