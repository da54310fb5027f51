"""Rows by trace, session, message or span id without scanning the table: the store's id map names the
hours that hold an id, and only those hours are read (plus, on DuckDB, the rows committed since the map
last caught up). A store without a map (an old read-only file) is read whole, as before."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from llmlens.store import Store

from ._common import rows

_EPOCH = dt.datetime(1970, 1, 1)
# More time ranges than this are merged across their smallest gaps (reading a few hours more).
_MAX_RANGES = 48


class _Located(Protocol):
    hours: list[int]  # hours since the epoch that may hold the ids
    unmapped_after: dt.datetime | None  # rows stamped after this are not in the map yet (None: all are)


Locate = Callable[[str, Sequence[str], str], _Located | None]


def _locator(store: Store) -> Locate | None:
    found: Locate | None = getattr(store, "locate_ids", None)
    return found


def time_ranges(hours: Sequence[int]) -> list[tuple[dt.datetime, dt.datetime]]:
    """Hours as [start, end) ranges: consecutive ones merged, and at most _MAX_RANGES (merged across the
    smallest gaps)."""
    spans: list[list[int]] = []
    for hour in sorted(set(hours)):
        if spans and spans[-1][1] == hour:
            spans[-1][1] = hour + 1
        else:
            spans.append([hour, hour + 1])
    while len(spans) > _MAX_RANGES:
        gap = min(range(len(spans) - 1), key=lambda i: spans[i + 1][0] - spans[i][1])
        spans[gap][1] = spans[gap + 1][1]
        del spans[gap + 1]
    return [(_EPOCH + dt.timedelta(hours=lo), _EPOCH + dt.timedelta(hours=hi)) for lo, hi in spans]


def rows_by_id(
    store: Store,
    project: str,
    column: str,
    ids: Sequence[str],
    select: str,
    *,
    table: str = "spans",
    where: str = "TRUE",
    params: Sequence[Any] = (),
    order: str | None = None,
) -> list[dict[str, Any]]:
    """`SELECT select FROM store.<table> WHERE project = ? AND column IN ids AND where` (`table` spans or
    feedback; trusted `select`, `column` and `where`), reading only where the store's id map says the
    ids are."""
    wanted = list(dict.fromkeys(i for i in ids if i))
    if not wanted:
        return []
    marks = ", ".join("?" for _ in wanted)
    base = f"SELECT {select} FROM store.{table} WHERE project = ? AND {column} IN ({marks}) AND ({where})"
    args: list[Any] = [project, *wanted, *params]
    order_by = f" ORDER BY {order}" if order else ""
    locate = _locator(store)
    located = locate(project, wanted, table) if locate is not None else None
    if located is None:
        return rows(store, base + order_by, args)
    parts: list[str] = []
    part_args: list[Any] = []
    ranges = time_ranges(located.hours)
    if ranges:
        in_time = " OR ".join("(timestamp >= ? AND timestamp < ?)" for _ in ranges)
        mapped = "" if located.unmapped_after is None else " AND ingested_at <= ?"
        parts.append(f"{base}{mapped} AND ({in_time})")
        part_args += [*args, *([located.unmapped_after] if located.unmapped_after is not None else [])]
        part_args += [t for pair in ranges for t in pair]
    if located.unmapped_after is not None:
        # What was committed since the map last caught up: the newest row groups only.
        parts.append(f"{base} AND ingested_at > ?")
        part_args += [*args, located.unmapped_after]
    if not parts:
        return []
    sql = " UNION ALL ".join(f"({p})" for p in parts) if len(parts) > 1 else parts[0]
    if order and len(parts) > 1:
        sql = f"SELECT * FROM ({sql}) AS found{order_by}"
    else:
        sql += order_by
    return rows(store, sql, part_args)


def spans_by_id(store: Store, project: str, column: str, value: str, where: str = "TRUE") -> list[dict[str, Any]]:
    """Every stored column of the spans whose `column` (trace_id, session_id, message_id or span_id) is
    `value`, JSON columns parsed, in time order: what `read_spans` gives for `column = value`."""
    from ._spans import SPAN_SELECT, parse_json_columns

    found = rows_by_id(store, project, column, [value], SPAN_SELECT, where=where, order="timestamp, span_id")
    return [parse_json_columns(r) for r in found]
