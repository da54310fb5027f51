"""Synthetic traffic at explicit timestamps: a steady baseline, and the anomalies the alerts must catch."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from llmlens.model import Span
from llmlens.store import Store, open_store

EPOCH = datetime(1970, 1, 1)
MODELS = ("gpt-4o-mini", "claude-3-5-haiku-20241022")
FEATURES = ("chat", "summarize")
USERS = tuple(f"user-{i:02d}" for i in range(1, 21))


def us(t: datetime) -> int:
    return (t - EPOCH) // timedelta(microseconds=1)


@dataclass
class Traffic:
    """Builds spans; `write(store)` stores them. Deterministic for a seed."""

    seed: int = 11
    spans: list[Span] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self._n = 0

    def _ids(self) -> tuple[str, str]:
        self._n += 1
        return f"{self.seed:08x}{self._n:024x}", f"{self.seed:04x}{self._n:012x}"

    def llm(self, t: datetime, **fields: Any) -> Span:
        trace_id, span_id = self._ids()
        rng = self.rng
        values: dict[str, Any] = {
            "model": rng.choice(MODELS),
            "feature": rng.choice(FEATURES),
            "user_id": rng.choice(USERS),
            "environment": "production",
            "template_id": "answer",
            "template_version": "v1",
            "prompt_tokens": int(rng.uniform(900, 1100)),
            "completion_tokens": int(rng.uniform(100, 300)),
            "latency_ms": rng.uniform(600, 1800),
            "cost_usd": rng.uniform(0.008, 0.012),
            "status": "ok",
            "metadata": {"tier": "free"},
        }
        values.update(fields)
        span = Span(trace_id=trace_id, span_id=span_id, kind="llm", name="chat", start_us=us(t), **values)
        self.spans.append(span)
        return span

    def tool(self, t: datetime, name: str = "search", success: bool = True, **fields: Any) -> Span:
        trace_id, span_id = self._ids()
        span = Span(
            trace_id=trace_id,
            span_id=span_id,
            kind="tool",
            name=name,
            start_us=us(t),
            tool_name=name,
            tool_success=success,
            status="ok" if success else "error",
            error_message=None if success else "backend returned 503",
            latency_ms=self.rng.uniform(50, 300),
            feature="chat",
            user_id=self.rng.choice(USERS),
            **fields,
        )
        self.spans.append(span)
        return span

    def baseline(
        self,
        now: datetime,
        *,
        days: int = 8,
        per_hour: int = 100,
        until: datetime | None = None,
        rate_factor: Callable[[datetime], float] | None = None,
    ) -> None:
        """Steady traffic for `days` up to `until` (default now): per_hour LLM calls (a bit more by day),
        1% errors, a search tool that works 95% of the time."""
        end = until or now
        t = now - timedelta(days=days)
        i = 0
        while t < end:
            daytime = 8 <= t.hour < 20
            i += 1
            failed = i % 100 == 0
            self.llm(
                t,
                **(
                    {"status": "error", "error_type": "rate_limit", "error_message": "429", "prompt_tokens": 0}
                    if failed
                    else {}
                ),
            )
            if i % 4 == 0:
                self.tool(t + timedelta(seconds=1), success=(i // 4) % 20 != 0)
            rate = per_hour * (1.2 if daytime else 0.8) * (rate_factor(t) if rate_factor else 1.0)
            t += timedelta(seconds=3600 / rate)

    def write(self, store: Store) -> None:
        for start in range(0, len(self.spans), 10_000):
            store.write(self.spans[start : start + 10_000], [])
        self.spans.clear()


def new_store(path: Path) -> Store:
    return open_store(None, path)


def utc_now_minute() -> datetime:
    now = datetime.now(UTC).replace(tzinfo=None)
    return now.replace(second=0, microsecond=0)


def as_event(span: Span) -> dict[str, Any]:
    """The native ingest event (docs/events.md) of a span built here."""
    event: dict[str, Any] = {
        "type": "llm" if span.kind == "llm" else "tool",
        "trace_id": span.trace_id,
        "span_id": span.span_id,
        "timestamp": span.start_us / 1e6,
        "latency_ms": span.latency_ms,
        "user_id": span.user_id,
        "feature": span.feature,
        "environment": span.environment,
        "metadata": span.metadata,
    }
    if span.kind == "llm":
        event.update(
            model=span.model,
            template_id=span.template_id,
            template_version=span.template_version,
            prompt_tokens=span.prompt_tokens,
            completion_tokens=span.completion_tokens,
            cost_usd=span.cost_usd,
            status=span.status,
        )
        if span.status == "error":
            event.update(error_type=span.error_type, error=span.error_message)
    else:
        event.update(tool_name=span.tool_name, success=span.tool_success, error=span.error_message)
    return event
