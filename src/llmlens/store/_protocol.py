"""The Store protocol every backend implements, and the values it returns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from llmlens.model import Feedback, Span


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


class SqlRejected(ValueError):
    """User SQL refused by the sandbox (writes, files, network, settings, unknown relations)."""


class SqlFailed(ValueError):
    """User SQL that the engine could not run (syntax, unknown column, timeout)."""


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

    def close(self) -> None: ...
