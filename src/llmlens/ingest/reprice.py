"""Recompute stored costs after a price change: caller-sent costs stay, computed costs are redone.

The calls are read a window of hours at a time and written back in small batches, each one short
transaction, so a reprice of a large store lets ingest commit between its batches.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from llmlens.model import CostSource, Span
from llmlens.pricing import PriceBook
from llmlens.store import Store

_READ_ROWS = 50_000  # calls read per window of hours (memory)
_WRITE_ROWS = 5_000  # calls per cost update (how long one write holds the store)
_PRICEABLE = "kind IN ('llm', 'embedding') AND (prompt_tokens IS NOT NULL OR completion_tokens IS NOT NULL)"
_COLUMNS = (
    "project, span_id, kind, timestamp, provider, model, response_model, prompt_tokens, completion_tokens, "
    "cached_tokens, cache_write_tokens, reasoning_tokens, cost_usd, cost_source"
)
_EPOCH = dt.datetime(1970, 1, 1)


@dataclass(slots=True)
class RepriceResult:
    """What a reprice did: calls whose costs were recomputed, and those that still have no price."""

    price_version: str
    repriced: int = 0
    unpriced: int = 0
    unpriced_models: dict[str, int] = field(default_factory=dict)  # model -> calls, of the unpriced ones


def _naive_utc(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value
    return dt.datetime.fromisoformat(str(value).replace("Z", "")).replace(tzinfo=None)


def _to_us(value: dt.datetime) -> int:
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _windows(hours: Sequence[Sequence[Any]], max_rows: int) -> Iterator[tuple[dt.datetime, dt.datetime]]:
    """[start, end) windows of whole hours holding about `max_rows` calls each (one busy hour may hold more)."""
    start: dt.datetime | None = None
    rows = 0
    for hour_value, count in hours:
        hour = _naive_utc(hour_value)
        if start is not None and rows + int(count) > max_rows:
            yield start, hour
            start, rows = None, 0
        if start is None:
            start = hour
        rows += int(count)
    if start is not None and hours:
        yield start, _naive_utc(hours[-1][0]) + dt.timedelta(hours=1)


def _span(row: Sequence[Any]) -> Span:
    (project, span_id, kind, ts, provider, model, response_model, prompt, completion, cached, cache_write, reasoning,
     cost, source) = row  # fmt: skip
    return Span(
        trace_id="",
        span_id=span_id,
        kind=kind,
        project=project,
        start_us=_to_us(_naive_utc(ts)),
        provider=provider,
        model=model,
        response_model=response_model,
        prompt_tokens=prompt,
        completion_tokens=completion,
        cached_tokens=cached,
        cache_write_tokens=cache_write,
        reasoning_tokens=reasoning,
        # A cost the caller sent is kept; one computed earlier is redone, so it is not passed on.
        cost_usd=cost if source == CostSource.CALLER.value else None,
    )


def reprice(
    store: Store,
    prices: PriceBook,
    *,
    since: dt.datetime | None = None,
    project: str | None = None,
) -> RepriceResult:
    """Reprice every LLM/embedding call with token counts (from `since`, naive UTC; of `project`, or all)."""
    where = _PRICEABLE
    params: list[Any] = []
    if project is not None:
        where += " AND project = ?"
        params.append(project)
    if since is not None:
        where += " AND timestamp >= ?"
        params.append(since)
    hours = store.query(
        f"SELECT date_trunc('hour', timestamp) AS hour, count(*) AS calls FROM spans WHERE {where} "
        "GROUP BY hour ORDER BY hour",
        params,
    ).rows
    result = RepriceResult(price_version=prices.version)
    for start, end in _windows(hours, _READ_ROWS):
        rows = store.query(
            f"SELECT {_COLUMNS} FROM spans WHERE {where} AND timestamp >= ? AND timestamp < ?",
            [*params, start, end],
        ).rows
        for first in range(0, len(rows), _WRITE_ROWS):
            spans = [_span(row) for row in rows[first : first + _WRITE_ROWS]]
            for span in spans:
                prices.price_span(span)
                if span.computed_cost_usd is None:
                    result.unpriced += 1
                    name = span.model or span.response_model or "(no model)"
                    result.unpriced_models[name] = result.unpriced_models.get(name, 0) + 1
            result.repriced += store.update_costs(spans)
    return result
