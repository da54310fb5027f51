"""Quantiles of several sketched LLM-call metrics by model (and over all models) from the main rollup's
sketches: the Latency page asks seven such questions of the same rows.

Grouping and sorting the sketch rows once per question cost most of the page (a week of hourly sketches is
~135,000 rows a metric). `sketch_rows` reads every metric's rows once (hourly and daily sketches and the
raw edges of the window), merged per sketch into packed cells (`_rollup.packed_sketches`); `quantiles_of`
then answers each question from those with running counts and a binary search.
"""

from __future__ import annotations

import datetime as dt
from array import array
from collections.abc import Sequence
from typing import Any

from llmlens.store import Store
from llmlens.store.rollups import SKETCHED_METRICS, Segment, index_sql, plan_window
from llmlens.store.rollups._memo import RollupMemo

from ._rollup import Packed, nulls_last, packed_quantiles, packed_sketches

_MODEL = "COALESCE(model, '(none)')"


# Merged sketches of some metrics: (metric id, bucket or None, model) -> packed cells.
Sketches = dict[tuple[Any, ...], Packed]


def sketch_rows(
    store: Store,
    project: str,
    start: dt.datetime,
    end: dt.datetime,
    metrics: Sequence[str],
    models: Sequence[str],
    *,
    where: str = "TRUE",
    params: Sequence[Any] = (),
    unit: str | None = None,
) -> Sketches | None:
    """The sketches of `metrics` over [start, end) per metric, bucket (when `unit`) and model, in one read.
    None when a row's model is not in `models` (the caller asks `_rollup.quantiles` instead).

    With a `unit`, the buckets read whole from their own grain of rollup are kept in the store's memo
    (`store/rollups/_memo.py`) where it has one, and read again only once they change."""
    get_memo = getattr(store, "rollup_memo", None)
    grain = unit if unit in ("hour", "day") else None
    memo: RollupMemo | None = get_memo() if get_memo is not None and grain is not None else None
    generation = memo.generation if memo is not None else 0
    key = (tuple(metrics), where, tuple(params))
    cells: Sketches = {}
    kept: list[dt.datetime] = []  # buckets read whole, to keep
    parts: list[str] = []
    args: list[Any] = []
    for seg in plan_window(start, end, unit or "none") or [Segment("raw", start, end)]:
        ranges = [(seg.start, seg.end)]
        if memo is not None and grain is not None and seg.source == grain:
            ranges = []
            for bucket in _buckets(seg.start, seg.end, grain):
                found = memo.get(project, key, grain, bucket)
                if found is None:
                    kept.append(bucket)
                    _extend(ranges, bucket, bucket + _STEP[grain])
                else:
                    cells.update(found)
        for lo, hi in ranges:
            parts.append(_part(seg.source, metrics, where, unit))
            args += [project, lo, hi, *params]
    if parts:
        union = " UNION ALL ".join(f"({p})" for p in parts)
        read = packed_sketches(store, union, args, ("metric", "bucket", "model"))
        cells.update(read)
        if memo is not None and grain is not None:
            by_bucket: dict[dt.datetime, Sketches] = {b: {} for b in kept}
            for group, packed in read.items():
                if group[1] in by_bucket:  # kept as 8-byte machine ints: a fifth of a list's memory
                    by_bucket[group[1]][group] = array("q", packed)
            for bucket, found in by_bucket.items():
                size = sum(len(p) for p in found.values()) + 1
                memo.put(project, key, grain, bucket, generation, found, size)
    if any(model not in models for _, _, model in cells):
        return None
    return cells


_STEP = {"hour": dt.timedelta(hours=1), "day": dt.timedelta(days=1)}


def _buckets(start: dt.datetime, end: dt.datetime, unit: str) -> list[dt.datetime]:
    out, t = [], start
    while t < end:
        out.append(t)
        t += _STEP[unit]
    return out


def _extend(ranges: list[tuple[dt.datetime, dt.datetime]], lo: dt.datetime, hi: dt.datetime) -> None:
    """Add [lo, hi) to `ranges`, merged with the last one when they meet."""
    if ranges and ranges[-1][1] == lo:
        ranges[-1] = (ranges[-1][0], hi)
    else:
        ranges.append((lo, hi))


def _part(source: str, metrics: Sequence[str], where: str, unit: str | None) -> str:
    """SELECT metric, bucket, model, idx, n of `source` (raw spans or a sketch grain) for one time range
    (parameters: project, start, end, then those of `where`)."""
    ids = ", ".join(str(SKETCHED_METRICS[m]) for m in metrics)
    time = "timestamp" if source == "raw" else "bucket"
    bucket = f"date_trunc('{unit}', {time})" if unit else "NULL::TIMESTAMP"
    if source == "raw":
        # One row per call and metric, counted per bucket index like a sketch.
        indexes = ", ".join(index_sql(m) for m in metrics)
        return (
            f"SELECT metric, bucket, model, idx, COUNT(*) AS n FROM (SELECT {bucket} AS bucket, "
            f"{_MODEL} AS model, UNNEST([{ids}]) AS metric, UNNEST([{indexes}]) AS idx FROM store.spans "
            f"WHERE project = ? AND timestamp >= ? AND timestamp < ? AND kind = 'llm' AND ({where})) "
            "WHERE idx IS NOT NULL GROUP BY ALL"
        )
    return (
        f"SELECT metric, {bucket} AS bucket, {_MODEL} AS model, idx, n FROM store.sketch_{source} "
        f"WHERE project = ? AND bucket >= ? AND bucket < ? AND metric IN ({ids}) AND ({where})"
    )


def quantiles_of(
    sketches: Sketches, metric: str, qs: dict[str, float], *, by_model: bool = True
) -> list[dict[str, Any]]:
    """Quantiles `qs` of `metric` per (bucket,) model, or per bucket over all models, from `sketch_rows`;
    rows as `_rollup.quantiles` gives them (bucket as a datetime, model as its name)."""
    wanted = SKETCHED_METRICS[metric]
    mine = (((b, model), packed) for (m, b, model), packed in sketches.items() if m == wanted)
    chosen: list[tuple[tuple[Any, ...], Packed]] = sorted(mine, key=_by_group)
    if not by_model:  # every model's cells of a bucket in one ascending run (an index may repeat)
        by_bucket: dict[Any, list[int]] = {}
        for (b, _), packed in chosen:
            by_bucket.setdefault(b, []).extend(packed)
        chosen = [((b,), sorted(packed)) for b, packed in by_bucket.items()]
    keys = ("bucket", "model") if by_model else ("bucket",)
    out = []
    for group, packed in chosen:
        row = packed_quantiles(keys, group, packed, qs)
        if row is not None:
            out.append(row)
    return out


def _by_group(item: tuple[tuple[Any, ...], Packed]) -> tuple[tuple[bool, Any], ...]:
    return nulls_last(item[0])
