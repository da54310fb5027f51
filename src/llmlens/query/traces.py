"""The trace list: one row per trace, filtered, sorted, counted and paged both ways with keyset cursors.

A trace is listed when its root span starts in the window; filters look at the trace's spans in the window.
Nothing here reads the whole window when it need not: time-sorted pages come from a slice of the window
next to where the page starts, widened until it holds the page; the count stops at COUNT_CAP ("10,000+"),
counted from the newest slice outwards; and when more than COUNT_CAP traces match, a sort by latency, cost
or tokens orders the newest of them (from the start of the COUNT_CAP + 1st newest on), and says so.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from llmlens.store import Store

from ._common import Scope, num, opt, rows
from ._keyset import Cursor, CursorError, decode_cursor, encode_cursor
from ._known_values import known_values
from ._slices import FIRST_SLICE, count_newest
from ._spans import first_user_message
from ._trace_filters import (
    CHILD_LEAD,
    DEFAULT_SORT,
    PAGE_SIZE,
    SORTS,
    Conditions,
    FilterError,
    KnownValues,
    TraceFilters,
    TraceSort,
    parse_sort,
    trace_conditions,
)
from .waterfall import TraceDetail, WaterfallSpan, trace_detail

COUNT_CAP = 10_000
MAX_PAGE_SIZE = 500
_HIGH = 1e18  # sorts a row without a cost or latency after every real value, in either direction
_FIRST_MESSAGE_CHARS = 4000  # of the first LLM call's prompt text, searched for the first user message
# Reading a few hours more of spans costs less than another scan: stores read whole blocks of rows.
_MERGE_GAP = dt.timedelta(hours=6)

__all__ = [
    "COUNT_CAP",
    "DEFAULT_SORT",
    "MAX_PAGE_SIZE",
    "PAGE_SIZE",
    "SORTS",
    "CursorError",
    "FilterError",
    "KnownValues",
    "TraceDetail",
    "TraceFilters",
    "TracePage",
    "TraceRow",
    "WaterfallSpan",
    "known_values",
    "trace_count",
    "trace_detail",
    "trace_list",
]


@dataclass(slots=True)
class TraceRow:
    trace_id: str
    timestamp: dt.datetime
    name: str | None  # of the root span
    kind: str | None
    latency_ms: float | None
    status: str
    user_id: str | None
    session_id: str | None
    feature: str | None
    spans: int = 0
    llm_calls: int = 0
    models: list[str] = field(default_factory=list)
    cost_usd: float | None = None
    total_tokens: int = 0
    preview: str | None = None  # the start of the last LLM response
    error_type: str | None = None  # of the trace's first failed span
    first_message: str | None = None  # the first user message of its first LLM call
    title: str = ""  # root span name and first user message


@dataclass(slots=True)
class TracePage:
    traces: list[TraceRow]
    next_cursor: str | None  # the page after this one
    prev_cursor: str | None = None  # the page before this one
    total: int = 0  # traces matching the filters, at most COUNT_CAP
    total_capped: bool = False  # more than COUNT_CAP match
    sort: str = DEFAULT_SORT
    sorted_since: dt.datetime | None = None  # a sort by value covers only the roots from then on (see above)


@dataclass(frozen=True, slots=True)
class _Scan:
    """One read of the list: rows after (or before) a cursor, in one direction."""

    sort: TraceSort
    descending: bool  # the direction rows are read in
    at: Cursor | None
    limit: int
    since: dt.datetime | None  # roots from this time on only (sorts by value over many traces)
    start: dt.datetime | None = None  # newest first: the narrowest slice known to hold the page


@dataclass(frozen=True, slots=True)
class _Count:
    total: int  # at most COUNT_CAP
    capped: bool
    slices: list[tuple[dt.datetime, int]]  # (slice start, matching roots from then on), narrowest first


def trace_list(
    store: Store,
    scope: Scope,
    filters: TraceFilters,
    cursor: str | None = None,
    *,
    known: KnownValues | None = None,
) -> TracePage:
    """A page of matching traces in `filters.sort` order; `cursor` (a page's next or previous cursor) moves."""
    filters.check()
    sort = parse_sort(filters.sort)
    at = decode_cursor(cursor, sort.name) if cursor else None
    if known is None:
        known = _known_for(store, scope, filters)
    conditions = trace_conditions(scope.project, filters, known)
    limit = max(1, min(filters.limit, MAX_PAGE_SIZE))
    counted = _count(store, scope, conditions)
    since = start = None
    if sort.key != "time":
        # Later pages keep the first page's start, so that paging stays in one order.
        if at is not None:
            since = at.since
        elif counted.capped:
            since = _newest_start(store, scope, conditions, counted.slices[-1][0])
    elif at is None and sort.descending:
        # The count found where the newest page's traces are: read that slice only.
        start = next((lo for lo, n in counted.slices if n > limit), scope.window.start)
    backwards = at is not None and at.before
    scan = _Scan(sort=sort, descending=sort.descending != backwards, at=at, limit=limit + 1, since=since, start=start)
    found = _read(store, scope, conditions, scan)
    more = len(found) > limit
    found = found[:limit]
    if backwards:
        found.reverse()
    traces = [_row(r) for r in found]
    _add_summaries(store, scope, traces)
    first, last = (found[0], found[-1]) if found else (None, None)
    has_next = more if not backwards else at is not None
    has_prev = (at is not None) if not backwards else more
    return TracePage(
        traces=traces,
        next_cursor=encode_cursor(_cursor(sort, last, before=False, since=since)) if has_next and last else None,
        prev_cursor=encode_cursor(_cursor(sort, first, before=True, since=since)) if has_prev and first else None,
        total=counted.total,
        total_capped=counted.capped,
        sort=sort.name,
        sorted_since=since,
    )


def trace_count(
    store: Store, scope: Scope, filters: TraceFilters, *, known: KnownValues | None = None
) -> tuple[int, bool]:
    """How many traces match, exactly up to COUNT_CAP; (COUNT_CAP, True) when more do."""
    filters.check()
    conditions = trace_conditions(scope.project, filters, known or _known_for(store, scope, filters))
    counted = _count(store, scope, conditions)
    return counted.total, counted.capped


def _count(store: Store, scope: Scope, conditions: Conditions) -> _Count:
    """Matching traces, counted from the newest slice of the window outwards until more than COUNT_CAP
    or the whole window (each count stops reading at the cap)."""

    def count(lo: dt.datetime) -> int:
        where, params = _where(scope, conditions, roots_from=lo, spans_from=lo - CHILD_LEAD)
        sql = (
            f"SELECT COUNT(*) AS n FROM (SELECT 1 AS one FROM spans r WHERE {' AND '.join(where)} "
            f"LIMIT {COUNT_CAP + 1}) t"
        )
        return int(rows(store, sql, params)[0]["n"])

    slices = count_newest(scope.window.start, scope.window.end, count, COUNT_CAP)
    n = slices[-1][1]
    return _Count(min(n, COUNT_CAP), n > COUNT_CAP, slices)


def _newest_start(store: Store, scope: Scope, conditions: Conditions, lo: dt.datetime) -> dt.datetime:
    """When the newest COUNT_CAP + 1 matching roots start (all of them start at or after `lo`)."""
    where, params = _where(scope, conditions, roots_from=lo, spans_from=lo - CHILD_LEAD)
    found = rows(
        store,
        f"SELECT MIN(ts) AS since FROM (SELECT r.timestamp AS ts FROM spans r WHERE {' AND '.join(where)} "
        f"ORDER BY r.timestamp DESC LIMIT {COUNT_CAP + 1}) t",
        params,
    )
    since = found[0]["since"] if found else None
    return since if isinstance(since, dt.datetime) else lo


def _known_for(store: Store, scope: Scope, filters: TraceFilters) -> KnownValues:
    if not (filters.model or filters.user_id):
        return KnownValues()
    return known_values(store, scope, model=filters.model, user_id=filters.user_id)


def _where(
    scope: Scope,
    conditions: Conditions,
    *,
    roots_from: dt.datetime | None = None,
    roots_until: dt.datetime | None = None,
    spans_from: dt.datetime | None = None,
) -> tuple[list[str], list[Any]]:
    """Roots in the window (narrowed to [roots_from, roots_until)) meeting the conditions, whose span
    conditions read the window's spans from `spans_from` on."""
    window = scope.window
    lo = max(window.start, roots_from) if roots_from else window.start
    hi = min(window.end, roots_until) if roots_until else window.end
    where = ["r.project = ?", "r.timestamp >= ?", "r.timestamp < ?", "r.parent_span_id IS NULL"]
    params: list[Any] = [scope.project, lo, hi]
    since = max(window.start, spans_from) if spans_from else window.start
    more, more_params = conditions.sql(since, window.end)
    return where + more, params + more_params


def _slice_bounds(lo: dt.datetime, hi: dt.datetime, *, descending: bool, single: bool = False) -> Iterator[dt.datetime]:
    """Where ever wider slices of [lo, hi) end: from `hi` down (descending) or from `lo` up, 1 h, then 4x
    wider, ..., then the whole range. `single`: the whole range at once."""
    width = FIRST_SLICE
    while not single and width < hi - lo:
        yield hi - width if descending else lo + width
        width *= 4
    yield lo if descending else hi


def _sort_parts(scope: Scope, conditions: Conditions, scan: _Scan) -> tuple[str, str, list[Any]]:
    """(FROM clause, sort value expression, its parameters) of the scan's sort."""
    key = scan.sort.key
    if key == "time":
        return "spans r", "r.timestamp", []
    high = _HIGH if not scan.sort.descending else -_HIGH
    if key == "latency":
        return "spans r", f"COALESCE(r.latency_ms, {high!r})", []
    # The trace's LLM calls summed, for the matching roots only: cost rounded so that the value is the
    # same on every read (a float sum can differ in its last bits between runs) and cursors compare
    # equal; no tokens count as 0.
    total = "ROUND(SUM(cost_usd), 9)" if key == "cost" else "SUM(total_tokens)"
    missing = high if key == "cost" else 0
    roots, roots_params = _where(scope, conditions, roots_from=scan.since, spans_from=_lead(scan.since))
    joined = (
        f"spans r LEFT JOIN (SELECT trace_id, {total} AS v FROM spans WHERE project = ? AND timestamp >= ? "
        "AND timestamp < ? AND kind = 'llm' AND trace_id IN "
        f"(SELECT r.trace_id FROM spans r WHERE {' AND '.join(roots)}) GROUP BY trace_id) a ON a.trace_id = r.trace_id"
    )
    since = max(scope.window.start, scan.since - CHILD_LEAD) if scan.since else scope.window.start
    return joined, f"COALESCE(a.v, {missing!r})", [scope.project, since, scope.window.end, *roots_params]


def _lead(t: dt.datetime | None) -> dt.datetime | None:
    return t - CHILD_LEAD if t is not None else None


def _read(store: Store, scope: Scope, conditions: Conditions, scan: _Scan) -> list[dict[str, Any]]:
    """The scan's rows: up to `scan.limit` in its direction."""
    source, value, source_params = _sort_parts(scope, conditions, scan)
    order = "DESC" if scan.descending else "ASC"
    after: list[str] = []
    after_params: list[Any] = []
    if scan.at is not None:
        op = "<" if scan.descending else ">"
        after = [f"({value} {op} ? OR ({value} = ? AND r.trace_id {op} ?))"]
        after_params = [scan.at.value, scan.at.value, scan.at.trace_id]
    window = scope.window
    # (roots from, roots until, spans from) of each read, narrowest first.
    slices: Iterator[tuple[dt.datetime | None, dt.datetime | None, dt.datetime | None]]
    anchor = scan.at.value if scan.at is not None and isinstance(scan.at.value, dt.datetime) else None
    if scan.sort.key != "time":
        slices = iter([(scan.since, None, _lead(scan.since))])
    elif scan.start is not None:
        slices = iter([(scan.start, None, scan.start - CHILD_LEAD)])
    elif scan.descending:
        # Up to one second past the cursor's row: stores that keep whole seconds compare in seconds.
        top = min(window.end, anchor + dt.timedelta(seconds=1)) if anchor else window.end
        slices = ((lo, None, lo - CHILD_LEAD) for lo in _slice_bounds(window.start, top, descending=True))
    else:
        # Oldest first: a trace's spans may start any time after its root, so conditions on them read to the
        # window's end whatever the slice; slices only pay when there are no such conditions.
        bottom = max(window.start, anchor) if anchor else window.start
        ends = _slice_bounds(bottom, window.end, descending=False, single=bool(conditions.spans))
        slices = ((bottom, hi, bottom - CHILD_LEAD) for hi in ends)
    found: list[dict[str, Any]] = []
    for roots_from, roots_until, spans_from in slices:
        where, params = _where(scope, conditions, roots_from=roots_from, roots_until=roots_until, spans_from=spans_from)
        found = rows(
            store,
            "SELECT r.trace_id, r.timestamp, r.name, r.kind, r.latency_ms, r.status, r.user_id, r.session_id, "
            f"r.feature, {value} AS sort_value FROM {source} WHERE {' AND '.join(where + after)} "
            f"ORDER BY sort_value {order}, r.trace_id {order} LIMIT {scan.limit}",
            [*source_params, *params, *after_params],
        )
        if len(found) >= scan.limit:
            break
    return found


def _row(r: dict[str, Any]) -> TraceRow:
    return TraceRow(
        trace_id=str(r["trace_id"]),
        timestamp=r["timestamp"],
        name=r["name"],
        kind=r["kind"],
        latency_ms=opt(r["latency_ms"], 1),
        status=str(r["status"] or "unset"),
        user_id=r["user_id"],
        session_id=r["session_id"],
        feature=r["feature"],
    )


def _cursor(sort: TraceSort, record: dict[str, Any], *, before: bool, since: dt.datetime | None) -> Cursor:
    value = record["sort_value"]
    if not isinstance(value, dt.datetime):
        value = float(value)
    return Cursor(sort.name, value, str(record["trace_id"]), before=before, since=since)


def _trace_ranges(scope: Scope, traces: list[TraceRow]) -> list[tuple[dt.datetime, dt.datetime, list[str]]]:
    """Time ranges holding the traces' spans, with the traces in each: from just before each root to just
    after it ends (CHILD_LEAD each side), ranges less than _MERGE_GAP apart merged. A page of newest traces
    is one range; traces days apart are read from their own ranges instead of everything in between."""
    spans = sorted(
        (
            max(scope.window.start, t.timestamp - CHILD_LEAD),
            min(scope.window.end, t.timestamp + dt.timedelta(milliseconds=max(t.latency_ms or 0.0, 0.0)) + CHILD_LEAD),
            t.trace_id,
        )
        for t in traces
    )
    merged: list[tuple[dt.datetime, dt.datetime, list[str]]] = []
    for lo, hi, trace_id in spans:
        if merged and lo - merged[-1][1] < _MERGE_GAP:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi), [*merged[-1][2], trace_id])
        else:
            merged.append((lo, hi, [trace_id]))
    return merged


def _add_summaries(store: Store, scope: Scope, traces: list[TraceRow]) -> None:
    """Counts, models, cost, tokens, errors and the first user message of each trace, from its spans."""
    if not traces:
        return
    by_id = {t.trace_id: t for t in traces}
    parts: list[str] = []
    params: list[Any] = []
    for lo, hi, ids in _trace_ranges(scope, traces):
        parts.append(
            "SELECT trace_id, span_id, timestamp, kind, model, cost_usd, total_tokens, status, error_type, "
            "substr(response, 1, 120) AS response, "
            f"CASE WHEN kind = 'llm' THEN substr(prompt, 1, {_FIRST_MESSAGE_CHARS}) END AS prompt FROM spans "
            f"WHERE project = ? AND timestamp >= ? AND timestamp < ? AND trace_id IN ({', '.join('?' for _ in ids)})"
        )
        params += [scope.project, lo, hi, *ids]
    found = rows(store, " UNION ALL ".join(parts), params)
    found.sort(key=lambda r: (r["timestamp"], str(r["span_id"])))
    for r in found:
        t = by_id[str(r["trace_id"])]
        t.spans += 1
        if r["status"] == "error":
            t.status = "error"
            t.error_type = t.error_type or r["error_type"]
        if r["kind"] != "llm":
            continue
        if t.llm_calls == 0:
            t.first_message = first_user_message(r["prompt"])
        t.llm_calls += 1
        if r["model"] and r["model"] not in t.models:
            t.models.append(str(r["model"]))
        if r["cost_usd"] is not None:
            t.cost_usd = (t.cost_usd or 0.0) + num(r["cost_usd"])
        t.total_tokens += int(num(r["total_tokens"]))
        if r["response"]:
            t.preview = str(r["response"])
    for t in traces:
        t.title = " · ".join(part for part in (t.name or t.kind, t.first_message) if part)
