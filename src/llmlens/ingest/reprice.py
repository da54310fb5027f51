"""Recompute stored costs after a price change: caller-sent costs stay, computed costs are redone."""

from __future__ import annotations

import datetime as dt

from llmlens.model import CostSource, Span
from llmlens.pricing import PriceBook
from llmlens.store import Store

_CHUNK = 50_000


def _to_us(value: dt.datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    delta = value - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def reprice(store: Store, prices: PriceBook, *, since_us: int | None = None) -> int:
    """Reprice every LLM/embedding call with token counts (since `since_us`); returns how many changed."""
    where = "kind IN ('llm', 'embedding') AND (prompt_tokens IS NOT NULL OR completion_tokens IS NOT NULL)"
    params: list[object] = []
    if since_us is not None:
        where += " AND timestamp >= make_timestamp(?)"
        params.append(since_us)
    result = store.query(
        "SELECT project, span_id, kind, timestamp, provider, model, response_model, prompt_tokens, "
        "completion_tokens, cached_tokens, cache_write_tokens, reasoning_tokens, cost_usd, cost_source "
        f"FROM spans WHERE {where}",
        params,
    )
    updated = 0
    batch: list[Span] = []
    for row in result.rows:
        (
            project,
            span_id,
            kind,
            ts,
            provider,
            model,
            response_model,
            prompt,
            completion,
            cached,
            cache_write,
            reasoning,
            cost,
            source,
        ) = row
        span = Span(
            trace_id="",
            span_id=span_id,
            kind=kind,
            project=project,
            start_us=_to_us(ts),
            provider=provider,
            model=model,
            response_model=response_model,
            prompt_tokens=prompt,
            completion_tokens=completion,
            cached_tokens=cached,
            cache_write_tokens=cache_write,
            reasoning_tokens=reasoning,
            cost_usd=cost if source == CostSource.CALLER.value else None,
        )
        prices.price_span(span)
        batch.append(span)
        if len(batch) >= _CHUNK:
            updated += store.update_costs(batch)
            batch = []
    if batch:
        updated += store.update_costs(batch)
    rebuild = getattr(store, "rebuild_rollups", None)
    if rebuild is not None and updated:
        rebuild(since_us)  # the rollups' costs follow the new prices
    return updated
