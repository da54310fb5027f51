"""Aggregate questions answered from rollups: whole hours and days from the pre-aggregated tables,
the ragged edges of the window from raw spans, merged in one SQL statement.

Sums and counts equal the raw answer exactly; quantiles come from merged log-bucket sketches
(within 1 % of the exact percentile). Both stores keep the same relations (DuckDB: store/duckdb/_rollups.py,
ClickHouse: store/clickhouse/_rollups.py), so this SQL reads either; a backend without them keeps the
raw queries.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import numpy as np

from llmlens.store import Store
from llmlens.store.rollups import (
    GAMMA,
    MEASURES,
    ROLLUP_KINDS,
    SKETCHED_METRICS,
    USER_MEASURES,
    USER_TIER_SQL,
    ZERO_INDEX,
    Segment,
    index_sql,
    plan_window,
)

_RAW_MEASURES = {name: expr for name, _, expr in MEASURES}
_KINDS = ", ".join(f"'{k}'" for k in ROLLUP_KINDS)

Group = tuple[str, str]  # (alias, SQL expression over key columns)


def rollups_enabled(store: Store) -> bool:
    return bool(getattr(store, "has_rollups", False))


def _bucket(unit: str | None, column: str) -> list[str]:
    return [f"date_trunc('{unit}', {column}) AS bucket"] if unit else []


def _union(parts: list[str]) -> str:
    return " UNION ALL ".join(f"({p})" for p in parts)


def aggregate(
    store: Store,
    project: str,
    start: dt.datetime,
    end: dt.datetime,
    *,
    measures: Sequence[str],
    groups: Sequence[Group] = (),
    where: str = "TRUE",
    params: Sequence[Any] = (),
    unit: str | None = None,
) -> list[dict[str, Any]]:
    """Measures (names from `MEASURES`) over [start, end), grouped by `groups` (and by time bucket
    `unit` when given, as column `bucket`). `where` may use key columns only."""
    parts: list[str] = []
    args: list[Any] = []
    group_sql = [f"{expr} AS {alias}" for alias, expr in groups]
    segments = plan_window(start, end, unit or "none") or [Segment("raw", start, end)]
    for seg in segments:
        if seg.source == "raw":
            cols = [*_bucket(unit, "timestamp"), *group_sql, *(f"{_RAW_MEASURES[m]} AS {m}" for m in measures)]
            parts.append(
                f"SELECT {', '.join(cols)} FROM store.spans WHERE project = ? AND timestamp >= ? AND timestamp < ? "
                f"AND kind IN ({_KINDS}) AND ({where}) GROUP BY ALL"
            )
        else:
            cols = [*_bucket(unit, "bucket"), *group_sql, *(f"SUM({m}) AS {m}" for m in measures)]
            parts.append(
                f"SELECT {', '.join(cols)} FROM store.rollup_{seg.source} "
                f"WHERE project = ? AND bucket >= ? AND bucket < ? AND ({where}) GROUP BY ALL"
            )
        args += [project, seg.start, seg.end, *params]
    outer = [*(["bucket"] if unit else []), *(alias for alias, _ in groups), *(f"SUM({m}) AS {m}" for m in measures)]
    sql = f"SELECT {', '.join(outer)} FROM ({_union(parts)}) GROUP BY ALL"
    return store.query(sql, args).dicts()


def quantiles(
    store: Store,
    project: str,
    start: dt.datetime,
    end: dt.datetime,
    *,
    metric: str,
    qs: dict[str, float],
    groups: Sequence[Group] = (),
    where: str = "TRUE",
    params: Sequence[Any] = (),
    unit: str | None = None,
) -> list[dict[str, Any]]:
    """Quantiles `qs` ({name: q}) of an LLM-call metric (`SKETCHED_METRICS`) over [start, end), per group
    (and time bucket). `where` may use sketch keys only. Rows: group aliases, [bucket], `count`, names."""
    metric_id = SKETCHED_METRICS[metric]
    parts: list[str] = []
    args: list[Any] = []
    group_sql = [f"{expr} AS {alias}" for alias, expr in groups]
    keys = [*(["bucket"] if unit else []), *(alias for alias, _ in groups)]
    segments = plan_window(start, end, unit or "none") or [Segment("raw", start, end)]
    for seg in segments:
        if seg.source == "raw":
            cols = [*_bucket(unit, "timestamp"), *group_sql, f"{index_sql(metric)} AS idx"]
            parts.append(
                f"SELECT {', '.join(cols)}, 1 AS n FROM store.spans WHERE project = ? AND timestamp >= ? "
                f"AND timestamp < ? AND kind = 'llm' AND ({where})"
            )
        else:
            cols = [*_bucket(unit, "bucket"), *group_sql, "idx", "n"]
            parts.append(
                f"SELECT {', '.join(cols)} FROM store.sketch_{seg.source} "
                f"WHERE project = ? AND bucket >= ? AND bucket < ? AND metric = {metric_id} AND ({where})"
            )
        args += [project, seg.start, seg.end, *params]
    key_list = ", ".join(keys)
    sql = (
        f"SELECT {key_list}{', ' if keys else ''}idx, SUM(n) AS n FROM ({_union(parts)}) "
        f"WHERE idx IS NOT NULL GROUP BY ALL ORDER BY {key_list}{', ' if keys else ''}idx"
    )
    arrays = _arrays(store, sql, args)
    return _quantile_rows(arrays, keys, qs)


def _arrays(store: Store, sql: str, args: list[Any]) -> dict[str, np.ndarray[Any, Any]]:
    fetch = getattr(store, "query_arrays", None)
    if fetch is not None:
        got: dict[str, np.ndarray[Any, Any]] = fetch(sql, args)
        return got
    result = store.query(sql, args)
    return {c: np.array([r[i] for r in result.rows], dtype=object) for i, c in enumerate(result.columns)}


def _quantile_rows(
    arrays: dict[str, np.ndarray[Any, Any]], keys: list[str], qs: dict[str, float]
) -> list[dict[str, Any]]:
    """Quantiles per group from merged (keys..., idx, n) rows sorted by keys then idx, all groups at once."""
    idx = np.asarray(arrays["idx"], dtype=np.int64)
    n = np.asarray(arrays["n"], dtype=np.int64)
    if len(idx) == 0:
        return [] if keys else [{"count": 0, **dict.fromkeys(qs)}]
    new_group = np.zeros(len(idx), dtype=bool)
    new_group[0] = True
    for k in keys:
        col = arrays[k]
        new_group[1:] |= col[1:] != col[:-1]
    starts = np.flatnonzero(new_group)
    cum = np.cumsum(n)
    before = np.concatenate(([0], cum))[starts]  # count before each group
    ends = np.concatenate((starts[1:], [len(idx)]))
    totals = cum[ends - 1] - before
    values = np.where(idx <= ZERO_INDEX, 0.0, 2.0 * np.power(GAMMA, idx.astype(np.float64)) / (GAMMA + 1.0))
    out: list[dict[str, Any]] = []
    for g, start in enumerate(starts):
        row: dict[str, Any] = {}
        for k in keys:
            v = arrays[k][start]
            row[k] = v.item() if isinstance(v, np.generic) else v
        row["count"] = int(totals[g])
        out.append(row)
    for name, q in qs.items():
        rank = q * (totals - 1)
        lo = np.searchsorted(cum, before + np.floor(rank), side="right")
        hi = np.searchsorted(cum, before + np.ceil(rank), side="right")
        hi = np.minimum(hi, ends - 1)
        est = values[lo] + (rank - np.floor(rank)) * (values[hi] - values[lo])
        for g, row in enumerate(out):
            row[name] = float(est[g])
    return out


def user_spend(
    store: Store,
    project: str,
    start: dt.datetime,
    end: dt.datetime,
    *,
    where: str = "TRUE",
    params: Sequence[Any] = (),
    order_limit: str = "",
    by_day: bool = False,
) -> list[dict[str, Any]]:
    """Per user_id (and day, as column `bucket`, with `by_day`): calls, cost_usd, priced, tier over
    [start, end) from the daily user table and raw edges."""
    parts: list[str] = []
    args: list[Any] = []
    raw = ", ".join(f"{expr} AS {name}" for name, _, expr in USER_MEASURES)
    summed = ", ".join(f"SUM({name}) AS {name}" for name, _, _ in USER_MEASURES)
    unit = "day" if by_day else None
    keys = ", ".join(["bucket", "user_id"] if by_day else ["user_id"])
    for seg in plan_window(start, end, unit or "none", sources=("day",)) or [Segment("raw", start, end)]:
        if seg.source == "raw":
            cols = ", ".join([*_bucket(unit, "timestamp"), "user_id", raw, f"{USER_TIER_SQL} AS tier"])
            parts.append(
                f"SELECT {cols} FROM store.spans WHERE project = ? AND timestamp >= ? AND timestamp < ? "
                f"AND kind = 'llm' AND user_id IS NOT NULL AND ({where}) GROUP BY ALL"
            )
        else:
            cols = ", ".join([*_bucket(unit, "bucket"), "user_id", summed, "MAX(tier) AS tier"])
            parts.append(
                f"SELECT {cols} FROM store.user_day WHERE project = ? AND bucket >= ? AND bucket < ? "
                f"AND ({where}) GROUP BY ALL"
            )
        args += [project, seg.start, seg.end, *params]
    sql = f"SELECT {keys}, {summed}, MAX(tier) AS tier FROM ({_union(parts)}) GROUP BY {keys} {order_limit}"
    return store.query(sql, args).dicts()
