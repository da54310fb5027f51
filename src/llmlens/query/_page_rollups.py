"""Questions answered from the page rollups (`store/rollups/_page_tables.py`): whole hours and days from
their tables, the ragged edges of the window from the rows they summarise, merged in one SQL statement.

Sums, counts, minimums and maximums equal the raw answer; quantiles come from merged log-bucket sketches
(within 1 % of the exact value). Only stores that keep them (`page_rollups`) are asked.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from llmlens.store import SPAN_COLUMNS, Store
from llmlens.store.rollups import Segment, index_sql, plan_window
from llmlens.store.rollups._page_tables import FEEDBACK_CALL_COLUMNS, FEEDBACK_CALLS, PageRollup

from ._rollup import quantile_rows

Group = tuple[str, str]  # (alias, SQL over the rollup's key columns)

_SPAN_COLUMNS = frozenset(c for c, _, _ in SPAN_COLUMNS)
_FEEDBACK_CALL_COLUMNS = frozenset(c for c, _ in FEEDBACK_CALL_COLUMNS)


def _keyed_source(rollup: PageRollup) -> str:
    """The rollup's source rows with its keys as columns (a key computed from other columns replaces the
    column of its name, or is added), so that one `where` and one group SQL serve raw rows and stored ones."""
    own = _FEEDBACK_CALL_COLUMNS if rollup.source == FEEDBACK_CALLS else _SPAN_COLUMNS
    replaced = [f'{sql} AS "{key}"' for key, sql in rollup.keys if key != sql and key in own]
    added = [f'{sql} AS "{key}"' for key, sql in rollup.keys if key != sql and key not in own]
    star = f"* REPLACE ({', '.join(replaced)})" if replaced else "*"
    return f"SELECT {', '.join([star, *added])} FROM {rollup.source}"


def _bucket(unit: str | None, column: str) -> list[str]:
    return [f"date_trunc('{unit}', {column}) AS bucket"] if unit else []


def _segments(start: dt.datetime, end: dt.datetime, unit: str | None) -> list[Segment]:
    return plan_window(start, end, unit or "none") or [Segment("raw", start, end)]


def page_aggregate(
    store: Store,
    rollup: PageRollup,
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
    """Measures of `rollup` over [start, end), per group (and time bucket `unit`, as column `bucket`).
    `where` and `groups` may use the rollup's key columns only."""
    by_name = {m.name: m for m in rollup.measures}
    group_sql = [f"{expr} AS {alias}" for alias, expr in groups]
    parts: list[str] = []
    args: list[Any] = []
    for seg in _segments(start, end, unit):
        if seg.source == "raw":
            cols = [*_bucket(unit, rollup.time), *group_sql, *(f'{by_name[m].expr} AS "{m}"' for m in measures)]
            parts.append(
                f"SELECT {', '.join(cols)} FROM ({_keyed_source(rollup)}) AS raw WHERE project = ? "
                f"AND {rollup.time} >= ? AND {rollup.time} < ? AND ({rollup.where}) AND ({where}) GROUP BY ALL"
            )
        else:
            merged = (f'{by_name[m].merge}("{m}") AS "{m}"' for m in measures)
            cols = [*_bucket(unit, "bucket"), *group_sql, *merged]
            parts.append(
                f"SELECT {', '.join(cols)} FROM {rollup.table(seg.source)} WHERE project = ? "
                f"AND bucket >= ? AND bucket < ? AND ({where}) GROUP BY ALL"
            )
        args += [project, seg.start, seg.end, *params]
    outer = [
        *(["bucket"] if unit else []),
        *(alias for alias, _ in groups),
        *(f'{by_name[m].merge}("{m}") AS "{m}"' for m in measures),
    ]
    union = " UNION ALL ".join(f"({p})" for p in parts)
    return store.query(f"SELECT {', '.join(outer)} FROM ({union}) GROUP BY ALL", args).dicts()


def page_quantiles(
    store: Store,
    sketch: PageRollup,
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
    """Quantiles `qs` ({name: q}) of `metric` of a sketch rollup over [start, end), per group (and time
    bucket). Rows: group aliases, [bucket], `count`, the names."""
    group_sql = [f"{expr} AS {alias}" for alias, expr in groups]
    keys = [*(["bucket"] if unit else []), *(alias for alias, _ in groups)]
    parts: list[str] = []
    args: list[Any] = []
    for seg in _segments(start, end, unit):
        if seg.source == "raw":
            value = index_sql(f"({sketch.metric_value(metric)})::DOUBLE")
            cols = [*_bucket(unit, sketch.time), *group_sql, f"{value} AS idx"]
            parts.append(
                f"SELECT {', '.join(cols)}, 1 AS n FROM ({_keyed_source(sketch)}) AS raw WHERE project = ? "
                f"AND {sketch.time} >= ? AND {sketch.time} < ? AND ({sketch.where}) AND ({where})"
            )
        else:
            cols = [*_bucket(unit, "bucket"), *group_sql, "idx", "n"]
            parts.append(
                f"SELECT {', '.join(cols)} FROM {sketch.table(seg.source)} WHERE project = ? AND bucket >= ? "
                f"AND bucket < ? AND metric = {sketch.metric_id(metric)} AND ({where})"
            )
        args += [project, seg.start, seg.end, *params]
    union = " UNION ALL ".join(f"({p})" for p in parts)
    return quantile_rows(store, union, args, keys, qs)
