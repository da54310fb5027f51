"""The Store protocol every backend implements, and the values it returns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from llmlens.model import Feedback, Score, Span

from ._alert_state import AlertRecord, StoredAlertRule


@dataclass(slots=True)
class QueryResult:
    columns: list[str]
    rows: list[list[Any]]
    types: list[str] = field(default_factory=list)
    truncated: bool = False

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


@dataclass(slots=True)
class WriteResult:
    spans_written: int
    spans_duplicate: int
    feedback_written: int
    feedback_duplicate: int


@dataclass(slots=True)
class ScoreWriteResult:
    written: int
    duplicate: int
    # Position in the batch -> the data type its name already has in its project: that score was not written.
    type_conflicts: dict[int, str] = field(default_factory=dict)


class SqlRejected(ValueError):
    """User SQL refused by the sandbox (writes, files, network, settings, unknown relations)."""


class SqlFailed(ValueError):
    """User SQL that the engine could not run (syntax, unknown column, timeout)."""


class StoreUnavailable(RuntimeError):
    """The store's server (or a node behind it) cannot be reached or cannot take writes right now.

    Nothing of the failed call was acknowledged: the HTTP boundary answers 503 with Retry-After, and a
    retried write is stored once. The message names the store (its URL without password)."""

    def __init__(self, message: str, *, retry_after_s: float = 5.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Store(Protocol):
    """Where spans and feedback live. Writes are durable when `write` returns."""

    url: str

    def write(self, spans: Sequence[Span], feedback: Sequence[Feedback]) -> WriteResult: ...

    def user_sql(self, query: str, *, project: str, max_rows: int = 10_000, timeout_s: float = 30.0) -> QueryResult:
        """Run untrusted, read-only SQL over the article's views for one project."""
        ...

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> QueryResult:
        """Run trusted SQL written by llmlens itself (dashboards, alerts, CLI)."""
        ...

    def update_costs(self, spans: Sequence[Span]) -> int:
        """Set cost_usd, computed_cost_usd, cost_source and price_version of stored spans by id."""
        ...

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> None:
        """Run a trusted statement that changes data (repricing, retention)."""
        ...

    def update_span_fields(self, project: str, updates: Mapping[str, Mapping[str, Any]]) -> int:
        """Overwrite columns of stored spans of `project`: {span_id: {column: value}} (values as on `Span`).

        For what is learnt after a span was stored: context inherited from a late ancestor, message
        content from late log records, tokens moved off a duplicate. Not for project, ids, kind or time.
        """
        ...

    def scoped(self, project: str) -> Store:
        """A view of this store that reads and writes only `project` (see `_scoping.py`)."""
        ...

    # -- scores (`quality/`) ----------------------------------------------------------------------

    def write_scores(self, scores: Sequence[Score]) -> ScoreWriteResult:
        """Store scores; durable when it returns. A name unknown in its project is registered with the
        score's data type; a score whose type differs from its name's is not written (`type_conflicts`).
        A score id already stored in its project is written once."""
        ...

    def score_names(self, project: str) -> dict[str, str]:
        """The score names of `project` with their data types."""
        ...

    # -- alert state (see `_alert_state.py`) -----------------------------------------------------

    def ensure_alert_tables(self) -> None:
        """Create the alert history and rules tables when missing."""
        ...

    def claim_alert_transition(self, record: AlertRecord, claimant: str) -> bool:
        """Record a transition for `claimant`; True for exactly one claimant of its (project, rule, seq)."""
        ...

    def alert_history(
        self,
        *,
        project: str | None = None,
        rule: str | None = None,
        latest_only: bool = False,
        limit: int | None = None,
    ) -> list[AlertRecord]:
        """Recorded transitions, newest first (at most `limit`); `latest_only`: the latest of each (project, rule).
        Empty when the tables do not exist yet (a store opened read-only before any alert ran)."""
        ...

    def alert_rules(self) -> list[StoredAlertRule]:
        """The latest API change of each rule name, oldest change first."""
        ...

    def save_alert_rule(self, name: str, spec: str | None, at: datetime) -> None:
        """Record a rule made through the API (`spec` JSON), or its deletion (`spec` None)."""
        ...

    def close(self) -> None: ...
