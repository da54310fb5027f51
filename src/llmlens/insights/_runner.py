"""Run every finder over one project and window: the examined window first, then each kind; a finder
that fails is reported in the answer's `errors` and does not stop the others."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence

from llmlens.pricing import PriceBook
from llmlens.query import TimeWindow, rollups_enabled, utc_now
from llmlens.store import Store

from ._context import FindingContext, Prices
from ._embeddings import Embeddings
from ._examined import examined_window
from ._model import InsightsReport, rank
from ._registry import FINDERS

logger = logging.getLogger("llmlens.insights")

DEFAULT_MAX_CALLS = 500_000
DEFAULT_CACHE_TTL_S = 3600.0


def compute_insights(
    store: Store,
    project: str,
    window: TimeWindow,
    *,
    prices: PriceBook | None,
    max_calls: int = DEFAULT_MAX_CALLS,
    cache_ttl_s: float = DEFAULT_CACHE_TTL_S,
    kinds: Sequence[str] | None = None,
    clock: Callable[[], dt.datetime] = utc_now,
    cancelled: Callable[[], bool] = lambda: False,
    embeddings: Embeddings | None = None,
) -> InsightsReport:
    """Every finding of `project` over `window` (`store` is confined to the project here)."""
    started = time.perf_counter()
    scoped = store.scoped(project)
    rollups = rollups_enabled(scoped)
    examined = examined_window(scoped, project, window.start, window.end, max_calls=max_calls, rollups=rollups)
    ctx = FindingContext(
        store=scoped,
        project=project,
        start=window.start,
        end=window.end,
        examined=examined,
        prices=Prices(prices),
        rollups=rollups,
        cache_ttl_s=cache_ttl_s,
        backend="clickhouse" if store.url.startswith("clickhouse") else "duckdb",
        embeddings=embeddings,
    )
    insights = []
    errors: list[dict[str, str]] = []
    if examined.calls:
        for kind in kinds or FINDERS:
            if cancelled():  # the server is stopping: do not hold its exit up
                break
            try:
                insights += FINDERS[kind](ctx)
                errors += [{"kind": kind, "error": problem} for problem in ctx.problems]
                ctx.problems.clear()
            except Exception as exc:
                # One broken finder (a backend without a function it uses, odd data) must not hide the others.
                logger.exception("insights: %s failed for project %s", kind, project)
                errors.append({"kind": kind, "error": f"{type(exc).__name__}: {exc}"})
    return InsightsReport(
        project=project,
        range=window.range,
        start=window.start,
        end=window.end,
        examined=examined,
        computed_at=clock(),
        compute_ms=(time.perf_counter() - started) * 1000,
        insights=rank(insights),
        errors=errors,
    )
