"""Project scoping in the store layer: a Store view that sees one project, and the request's project.

`store.scoped(project)` returns a `ProjectStore`: its reads see only that project (DuckDB sets the
`llmlens_project` connection variable the views filter on; ClickHouse replaces every relation by a
project-filtered subquery), its writes force `project` on every span and feedback, and its user SQL
runs in that project whatever the caller asks.

`current_project` is the project the current request is confined to (set by the server's auth
middleware from the caller's API key or login). Backends consult it on every `query`, so a route
that still reads `state.store` directly cannot see another project's data either, and the ingest
pipeline forces it on what it writes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from datetime import datetime
from typing import Any, Protocol

from llmlens.model import Feedback, Score, Span

from ._alert_state import AlertRecord, StoredAlertRule
from ._protocol import QueryResult, ScoreWriteResult, Store, WriteResult

current_project: ContextVar[str | None] = ContextVar("llmlens_current_project", default=None)


@contextlib.contextmanager
def confined_to(project: str | None) -> Iterator[None]:
    """Run a block as if it served a request confined to `project` (None: no confinement)."""
    token = current_project.set(project)
    try:
        yield
    finally:
        current_project.reset(token)


def confined_elsewhere(project: str) -> bool:
    """Whether the current request is confined to a project other than `project`: it may not change `project`."""
    confined = current_project.get()
    return confined is not None and confined != project


def force_project(spans: Sequence[Span], feedback: Sequence[Feedback], project: str) -> None:
    """Whatever project the events named, they belong to `project` (the caller's)."""
    for span in spans:
        span.project = project
    for fb in feedback:
        fb.project = project


class ScopableBackend(Protocol):
    """What a backend offers ProjectStore: its own query with an explicit project."""

    url: str

    def query_in_project(self, sql: str, params: Sequence[Any] | dict[str, Any], project: str) -> QueryResult: ...

    def write(self, spans: Sequence[Span], feedback: Sequence[Feedback]) -> WriteResult: ...

    def user_sql(self, query: str, *, project: str, max_rows: int = 10_000, timeout_s: float = 30.0) -> QueryResult: ...

    def update_costs(self, spans: Sequence[Span]) -> int: ...

    def update_span_fields(self, project: str, updates: Mapping[str, Mapping[str, Any]]) -> int: ...

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> None: ...

    def write_scores(self, scores: Sequence[Score]) -> ScoreWriteResult: ...

    def score_names(self, project: str) -> dict[str, str]: ...

    def ensure_alert_tables(self) -> None: ...

    def claim_alert_transition(self, record: AlertRecord, claimant: str) -> bool: ...

    def alert_history(
        self,
        *,
        project: str | None = None,
        rule: str | None = None,
        latest_only: bool = False,
        limit: int | None = None,
    ) -> list[AlertRecord]: ...

    def alert_rules(self) -> list[StoredAlertRule]: ...

    def save_alert_rule(self, name: str, spec: str | None, at: datetime) -> None: ...


class ProjectStore:
    """A view of a backend confined to one project; implements the Store protocol."""

    def __init__(self, backend: ScopableBackend, project: str) -> None:
        self.backend = backend
        self.project = project
        self.url = backend.url

    @property
    def has_rollups(self) -> bool:
        """The query layer answers aggregate questions from the backend's rollups when it keeps them."""
        return bool(getattr(self.backend, "has_rollups", False))

    def write(self, spans: Sequence[Span], feedback: Sequence[Feedback]) -> WriteResult:
        force_project(spans, feedback, self.project)
        return self.backend.write(spans, feedback)

    def user_sql(
        self, query: str, *, project: str = "", max_rows: int = 10_000, timeout_s: float = 30.0
    ) -> QueryResult:
        # The scope wins over whatever project the caller names.
        return self.backend.user_sql(query, project=self.project, max_rows=max_rows, timeout_s=timeout_s)

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> QueryResult:
        return self.backend.query_in_project(sql, params, self.project)

    @property
    def locate_ids(self) -> Callable[[str, Sequence[str], str], Any] | None:
        """The backend's id map (which hours hold some ids), for this project whatever the caller names;
        None without one."""
        locate = getattr(self.backend, "locate_ids", None)
        if locate is None:
            return None
        project = self.project

        def locate_ids(_project: str, ids: Sequence[str], source: str = "spans") -> Any:
            return locate(project, ids, source)

        return locate_ids

    def rollup_memo(self) -> Any:
        """The backend's memo of whole-bucket rollup reads (`store/rollups/_memo.py`), if it keeps one; the
        query layer keys what it keeps there by project."""
        memo = getattr(self.backend, "rollup_memo", None)
        return memo() if memo is not None else None

    @property
    def page_rollups(self) -> bool:
        """The query layer reads the backend's page rollups (`store/rollups/_page_tables.py`) when it keeps them."""
        return bool(getattr(self.backend, "page_rollups", False))

    @property
    def read_together(self) -> Callable[[Sequence[Callable[[], Any]]], list[Any]] | None:
        """The backend's way of running independent reads at once (they read through this view); None
        where it has none."""
        run: Callable[[Sequence[Callable[[], Any]]], list[Any]] | None = getattr(self.backend, "read_together", None)
        return run

    def update_costs(self, spans: Sequence[Span]) -> int:
        return self.backend.update_costs([s for s in spans if s.project == self.project])

    def update_span_fields(self, project: str, updates: Mapping[str, Mapping[str, Any]]) -> int:
        return self.backend.update_span_fields(self.project, updates) if project == self.project else 0

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> None:
        # Trusted statements written by llmlens itself (they name their project); not for user input.
        self.backend.execute(sql, params)

    def write_scores(self, scores: Sequence[Score]) -> ScoreWriteResult:
        for score in scores:  # whatever project a score named, it belongs to this one
            score.project = self.project
        return self.backend.write_scores(scores)

    def score_names(self, project: str) -> dict[str, str]:
        return self.backend.score_names(self.project) if project == self.project else {}

    # Alert state: transitions of this project only; rules are server-wide (read-only from here).

    def ensure_alert_tables(self) -> None:
        self.backend.ensure_alert_tables()

    def claim_alert_transition(self, record: AlertRecord, claimant: str) -> bool:
        if record.project != self.project:
            raise PermissionError(f"a store scoped to project {self.project!r} cannot record {record.project!r}")
        return self.backend.claim_alert_transition(record, claimant)

    def alert_history(
        self,
        *,
        project: str | None = None,
        rule: str | None = None,
        latest_only: bool = False,
        limit: int | None = None,
    ) -> list[AlertRecord]:
        if project not in (None, self.project):
            return []
        return self.backend.alert_history(project=self.project, rule=rule, latest_only=latest_only, limit=limit)

    def alert_rules(self) -> list[StoredAlertRule]:
        return self.backend.alert_rules()

    def save_alert_rule(self, name: str, spec: str | None, at: datetime) -> None:
        raise PermissionError("alert rules apply to every project: a store scoped to one project cannot change them")

    def scoped(self, project: str) -> Store:
        if project != self.project:
            raise PermissionError(f"a store scoped to project {self.project!r} cannot see {project!r}")
        return self

    def close(self) -> None:
        """The backend belongs to the server: closing a view of it does nothing."""
