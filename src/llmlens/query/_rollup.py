"""Aggregate questions answered from rollups: whole hours and days from the pre-aggregated tables,
the ragged edges of the window from raw spans, merged in one SQL statement.

Sums and counts equal the raw answer exactly; quantiles come from merged log-bucket sketches
(within 1 % of the exact percentile). Both stores keep the same relations (DuckDB: store/duckdb/_rollups.py,
ClickHouse: store/clickhouse/_rollups.py), so this SQL reads either; a backend without them keeps the
raw queries.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import math
import operator
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from itertools import repeat
from typing import Any

from llmlens.store import Store
from llmlens.store.rollups import (
    MEASURES,
    ROLLUP_KINDS,
    SKETCHED_METRICS,
    USER_MEASURES,
    USER_TIER_SQL,
    Segment,
    index_sql,
    plan_window,
    quantile_from_ranks,
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
    return quantile_rows(store, _union(parts), args, keys, qs)


# A sketch cell (bucket index, count) packed in one integer, so that DuckDB hands a group's sketch over as
# one string (converting one Python int per cell costs a third of a list of them), and Python sorts cells
# by index with integer sorting and reads the counts with a C-level `and`: index + 2^21 above bit 33
# (indexes run from ZERO_INDEX, -10^6, to ~1,100), the count below.
_INDEX_OFFSET = 1 << 21
_COUNT_BITS = 33
_COUNT_MASK = (1 << _COUNT_BITS) - 1
_PACKED = f"((idx + {_INDEX_OFFSET}) * {1 << _COUNT_BITS} + cell_n)::VARCHAR"

Packed = Sequence[int]  # a sketch's packed cells, ascending by index (an index may repeat)


def packed_sketches(
    store: Store, union: str, args: Sequence[Any], keys: Sequence[str]
) -> dict[tuple[Any, ...], Packed]:
    """The sketch of each group of `keys` in `union`'s (keys..., idx, n) rows, as packed cells.

    Rows are merged per group and index first: folds of changed or deleted calls add negative counts, and
    the cells they empty drop out (they hold no rank)."""
    lead = "".join(f"{k}, " for k in keys)
    merged = (
        f"SELECT {lead}idx, SUM(n) AS cell_n FROM ({union}) AS u WHERE idx IS NOT NULL GROUP BY {lead}idx "
        "HAVING SUM(n) > 0"
    )
    group = f" GROUP BY {', '.join(keys)}" if keys else ""
    sql = f"SELECT {lead}string_agg({_PACKED}, ',') FROM ({merged}) AS m{group}"
    found = store.query(sql, list(args)).rows
    return {tuple(r[:-1]): sorted(map(int, r[-1].split(","))) for r in found if r[-1]}


def packed_quantiles(
    keys: Sequence[str], group: Sequence[Any], packed: Packed, qs: dict[str, float]
) -> dict[str, Any] | None:
    counts = map(operator.and_, packed, repeat(_COUNT_MASK))
    return _group_quantiles(keys, group, counts, partial(_index_at, packed), qs)


def nulls_last(group: tuple[Any, ...]) -> tuple[tuple[bool, Any], ...]:
    """A sort key ordering groups as SQL's ORDER BY does (NULLs after every value)."""
    return tuple((v is None, v) for v in group)


def _index_at(packed: Packed, position: int) -> int:
    return (packed[position] >> _COUNT_BITS) - _INDEX_OFFSET


def quantile_rows(
    store: Store, union: str, args: Sequence[Any], keys: Sequence[str], qs: dict[str, float]
) -> list[dict[str, Any]]:
    """Quantiles `qs` per group of `keys` from `union`'s (keys..., idx, n) sketch rows, as the callers
    want them: keys, `count` and each quantile by name (None without values); no row per group without
    values, one row (count 0) when there are no keys."""
    sketches = packed_sketches(store, union, args, keys)
    found = (packed_quantiles(keys, g, sketches[g], qs) for g in sorted(sketches, key=nulls_last))
    out = [row for row in found if row is not None]
    if not keys and not out:
        out.append({"count": 0, **dict.fromkeys(qs)})
    return out


def _group_quantiles(
    keys: Sequence[str],
    group: Sequence[Any],
    n: Iterable[int],
    index_at: Callable[[int], int],
    qs: dict[str, float],
) -> dict[str, Any] | None:
    """One group's quantiles from its sketch: the counts `n` in ascending order of bucket index (an index
    may repeat) and the index at each position. The running count and a binary search find the first
    position whose count passes each rank. None when the group counts nothing."""
    cum = list(itertools.accumulate(n))
    total = int(cum[-1]) if cum else 0
    if total <= 0:  # no values, or every call of the group deleted
        return None
    row: dict[str, Any] = dict(zip(keys, group, strict=True))
    row["count"] = total
    last = len(cum) - 1
    for name, q in qs.items():
        rank = q * (total - 1)
        lo = min(bisect.bisect_right(cum, math.floor(rank)), last)
        hi = min(bisect.bisect_right(cum, math.ceil(rank)), last)
        row[name] = quantile_from_ranks(total, q, int(index_at(lo)), int(index_at(hi)))
    return row


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
