"""Quantiles of several sketched LLM-call metrics by model (and over all models) from one read of the main
rollup's sketches: the Latency page asks seven such questions of the same rows.

A week of hourly sketches is ~135,000 rows per metric; grouping and sorting them in SQL once per question
cost most of the page. Here they are read once, as integers (time, model number, metric, bucket index,
count), and merged and ordered in numpy, each question then a slice of the result.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import numpy as np

from llmlens.store import Store
from llmlens.store.rollups import SKETCHED_METRICS, Segment, index_sql, plan_window

from ._rollup import _arrays, _quantile_rows

Arrays = dict[str, np.ndarray[Any, Any]]
_MODEL = "COALESCE(model, '(none)')"
_EPOCH = np.datetime64("1970-01-01T00:00:00", "us")


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
) -> Arrays | None:
    """The merged sketches of `metrics` over [start, end) per (metric, bucket if `unit`, model): columns
    metric, bucket (µs since the epoch; 0 without `unit`), model (position in `models`), idx, n, sorted by
    them. None when a row's model is not in `models` (the caller asks `_rollup.quantiles` instead)."""
    ids = [SKETCHED_METRICS[m] for m in metrics]
    position = f"COALESCE(list_position(?::VARCHAR[], {_MODEL}), 0)"  # 0: not in `models`
    parts: list[str] = []
    args: list[Any] = []
    for seg in plan_window(start, end, unit or "none") or [Segment("raw", start, end)]:
        raw = seg.source == "raw"
        time = "timestamp" if raw else "bucket"
        bucket = f"epoch_us(date_trunc('{unit}', {time}))" if unit else "0"
        if raw:
            indexes = ", ".join(index_sql(m) for m in metrics)
            parts.append(
                f"SELECT metric, bucket, model, idx, COUNT(*) AS n FROM (SELECT {bucket} AS bucket, "
                f"{position} AS model, UNNEST({ids}) AS metric, UNNEST([{indexes}]) AS idx FROM store.spans "
                f"WHERE project = ? AND timestamp >= ? AND timestamp < ? AND kind = 'llm' AND ({where})) "
                "WHERE idx IS NOT NULL GROUP BY ALL"
            )
        else:
            parts.append(
                f"SELECT metric, {bucket} AS bucket, {position} AS model, idx, n FROM store.sketch_{seg.source} "
                f"WHERE project = ? AND bucket >= ? AND bucket < ? AND metric IN ({', '.join(map(str, ids))}) "
                f"AND ({where})"
            )
        args += [list(models), project, seg.start, seg.end, *params]
    found = _arrays(store, " UNION ALL ".join(f"({p})" for p in parts), args)
    cols = {k: np.asarray(found[k]).astype(np.int64) for k in ("metric", "bucket", "model", "idx", "n")}
    if (cols["model"] == 0).any():
        return None
    return _merged(cols, ("metric", "bucket", "model"))


def _merged(cols: Arrays, keys: Sequence[str]) -> Arrays:
    """Rows with equal `keys` and index added up, sorted by `keys` then index (as one integer key each)."""
    names = (*keys, "idx")
    lows = [int(cols[k].min()) if len(cols[k]) else 0 for k in names]
    widths = [int(cols[k].max() - low).bit_length() if len(cols[k]) else 0 for k, low in zip(names, lows, strict=True)]
    if sum(widths) > 62:  # too wide for one integer: sort by the columns
        order = np.lexsort(tuple(cols[k] for k in reversed(names)))
        sorted_cols = {k: cols[k][order] for k in names}
        new_row = np.zeros(len(order), dtype=bool)
        if len(order):
            new_row[0] = True
            for k in names:
                new_row[1:] |= sorted_cols[k][1:] != sorted_cols[k][:-1]
        starts = np.flatnonzero(new_row)
        out = {k: v[starts] for k, v in sorted_cols.items()}
        out["n"] = np.add.reduceat(cols["n"][order], starts) if len(starts) else cols["n"][:0]
        return out
    composite = np.zeros(len(cols["idx"]), dtype=np.int64)
    for k, low, width in zip(names, lows, widths, strict=True):
        composite = (composite << width) | (cols[k] - low)
    unique, inverse = np.unique(composite, return_inverse=True)
    out = {"n": np.bincount(inverse, weights=cols["n"], minlength=len(unique)).astype(np.int64)}
    for k, low, width in reversed(list(zip(names, lows, widths, strict=True))):
        out[k] = (unique & ((1 << width) - 1)) + low
        unique = unique >> width
    return out


def quantiles_of(
    rows: Arrays, metric: str, qs: dict[str, float], models: Sequence[str], *, by_model: bool = True
) -> list[dict[str, Any]]:
    """Quantiles `qs` of `metric` per (bucket,) model, or per bucket over all models, from `sketch_rows`;
    rows as `_rollup.quantiles` gives them (bucket as a datetime, model as its name)."""
    chosen = rows["metric"] == SKETCHED_METRICS[metric]
    cols = {k: v[chosen] for k, v in rows.items() if k != "metric"}
    keys = ["bucket", "model"] if by_model else ["bucket"]
    if not by_model:
        cols = _merged(cols, keys)
    found = _quantile_rows(cols, keys, qs)
    names = np.asarray(models, dtype=object)
    for row in found:
        row["bucket"] = (_EPOCH + np.timedelta64(int(row["bucket"]), "us")).item()
        if by_model:
            row["model"] = str(names[int(row["model"]) - 1])
    return found
