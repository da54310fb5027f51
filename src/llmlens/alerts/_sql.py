"""SQL fragments the alert queries share: scope filters, time ranges, rows as dicts.

Portable DuckDB-flavoured SQL: explicit `project = ?`, `?` parameters, naive UTC timestamps.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from llmlens.store import Store

from .rules import Scope

# Scope field -> column of llm_logs / tool_logs.
_SCOPE_COLUMNS = {
    "model": "model",
    "feature": "feature",
    "template": "template_id",
    "template_version": "template_version",
    "environment": "environment",
    "user": "user_id",
    "tool": "tool_name",
}
# Columns missing from a view: a scope on them cannot match there, so it is ignored there.
_TOOL_LOGS_MISSING = frozenset({"model", "template_id", "template_version"})

Range = tuple[datetime, datetime]


def scope_clause(scope: Scope, *, view: str = "llm_logs") -> tuple[str, list[Any]]:
    """` AND col = ?` for every scoped field that the view has."""
    parts: list[str] = []
    params: list[Any] = []
    for name, column in _SCOPE_COLUMNS.items():
        value = getattr(scope, name)
        if value is None:
            continue
        if view == "llm_logs" and column == "tool_name":
            continue
        if view == "tool_logs" and column in _TOOL_LOGS_MISSING:
            continue
        parts.append(f" AND {column} = ?")
        params.append(value)
    return "".join(parts), params


def ranges_clause(ranges: Sequence[Range]) -> tuple[str, list[Any]]:
    """`(timestamp >= ? AND timestamp < ?) OR ...` for several ranges (FALSE when none)."""
    if not ranges:
        return "(1 = 0)", []
    parts = []
    params: list[Any] = []
    for start, end in ranges:
        parts.append("(timestamp >= ? AND timestamp < ?)")
        params.extend([start, end])
    return "(" + " OR ".join(parts) + ")", params


def rows(store: Store, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
    return store.query(sql, list(params)).dicts()


def one(store: Store, sql: str, params: Sequence[Any]) -> dict[str, Any]:
    found = rows(store, sql, params)
    return found[0] if found else {}


def first_timestamp(store: Store, project: str, view: str = "llm_logs") -> datetime | None:
    """The oldest stored record, so baselines never count days before data existed as zero."""
    # LLM calls are read from `spans`: `llm_logs` joins every call to its feedback, which alerts never need.
    relation = "spans WHERE kind = 'llm' AND" if view == "llm_logs" else f"{view} WHERE"
    row = one(store, f"SELECT min(timestamp) AS first FROM {relation} project = ?", [project])
    first = row.get("first")
    return first if isinstance(first, datetime) else None


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def as_float(value: Any, default: float = 0.0) -> float:
    return default if value is None else float(value)
