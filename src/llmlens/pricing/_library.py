"""Prices from the genai-prices library: model lookup and conversion to our rate schedules."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal

import genai_prices
from genai_prices import data_snapshot
from genai_prices import types as gp

from ._names import name_variants
from ._rates import DailyWindow, PriceSchedule, Rate, Rates, StartsAt

LIBRARY_VERSION = f"genai-prices@{genai_prices.__version__}"

# Runtimes that serve open-weight models on your own hardware: their calls cost what your hardware
# costs, which only a custom price file can say, so the library is not asked (a self-hosted
# `llama-3.1-70b` must not be priced at some cloud's rate).
SELF_HOSTED_PROVIDERS = frozenset(
    {"ollama", "vllm", "llama.cpp", "llamacpp", "lmstudio", "lm-studio", "tgi", "localai", "sglang", "local"}
)

# Provider names seen in the wild that genai-prices' own matching does not map.
_PROVIDER_ALIASES = {
    "az.ai.inference": "azure",
    "azure.ai.inference": "azure",
    "azure.ai.openai": "azure",
    "azure_openai": "azure",
    "azure-openai": "azure",
    "xai": "x-ai",
}

# Tried, in order, when neither the provider nor the model name identifies a provider
# (e.g. `text-embedding-3-small` with no provider).
_FIRST_PARTY = ("openai", "anthropic", "google", "mistral", "deepseek", "x-ai", "cohere")


@dataclass(frozen=True, slots=True)
class LibraryMatch:
    provider_id: str
    model_id: str
    schedule: PriceSchedule


def _rate(value: object) -> Rate | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, gp.TieredPrices):
        return (float(value.base), tuple((t.start, float(t.price)) for t in value.tiers))
    raise TypeError(f"unexpected genai-prices price value {value!r}")


def _rates(price: gp.ModelPrice) -> Rates | None:
    """Our rates for a genai-prices ModelPrice; None if it prices no tokens (e.g. audio hours only)."""
    input_rate = _rate(price.input_mtok)
    output_rate = _rate(price.output_mtok)
    per_kilo_requests = price.requests_kcount
    per_request = float(per_kilo_requests) / 1000 if isinstance(per_kilo_requests, Decimal) else 0.0
    if input_rate is None and output_rate is None:
        if any(v is not None for k, v in vars(price).items() if not k.startswith("_")):
            return None  # priced, but not by the token
        return Rates(0.0, 0.0)  # listed with no prices at all: a free model
    return Rates(
        input=input_rate if input_rate is not None else 0.0,
        output=output_rate if output_rate is not None else 0.0,
        cache_read=_rate(price.cache_read_mtok),
        cache_write=_rate(price.cache_write_mtok),
        reasoning=_rate(price.output_reasoning_mtok),
        per_request=per_request,
    )


def _time_of_day_us(value: time) -> int:
    if value.tzinfo is not None:
        value = datetime.combine(date(1970, 1, 1), value).astimezone(UTC).time()
    return ((value.hour * 60 + value.minute) * 60 + value.second) * 1_000_000 + value.microsecond


def _constraint(constraint: object) -> StartsAt | DailyWindow | None:
    if constraint is None:
        return None
    if isinstance(constraint, gp.StartDateConstraint):
        day = datetime.combine(constraint.start_date, time(0), tzinfo=UTC)
        return StartsAt(int(day.timestamp()) * 1_000_000)
    if isinstance(constraint, gp.TimeOfDateConstraint):
        return DailyWindow(_time_of_day_us(constraint.start_time), _time_of_day_us(constraint.end_time))
    raise TypeError(f"unexpected genai-prices constraint {constraint!r}")


def schedule_for(model: gp.ModelInfo) -> PriceSchedule:
    if isinstance(model.prices, gp.ModelPrice):
        return PriceSchedule.constant(_rates(model.prices))
    return PriceSchedule(tuple((_constraint(c.constraint), _rates(c.prices)) for c in model.prices))


class LibraryPrices:
    """Looks models up in one genai-prices data snapshot (the bundled one: no network)."""

    version = LIBRARY_VERSION

    def __init__(self, snapshot: data_snapshot.DataSnapshot | None = None) -> None:
        self._snapshot = snapshot or data_snapshot.get_snapshot()
        self._schedules: dict[tuple[str, str], PriceSchedule] = {}

    def provider_id(self, provider: str | None) -> str | None:
        """genai-prices' id for a provider name (`aws.bedrock` -> `aws`), or None if it has none."""
        if not provider:
            return None
        low = provider.strip().lower()
        low = _PROVIDER_ALIASES.get(low, low)
        found = data_snapshot.find_provider_by_id(self._snapshot.providers, low)
        return found.id if found is not None else None

    def clear_caches(self) -> None:
        """Forget lookups, including genai-prices' own caches, which keep every name ever tried."""
        self._schedules.clear()
        for cache in ("_lookup_cache", "_provider_cache", "_provider_misses"):
            held = getattr(self._snapshot, cache, None)
            if isinstance(held, dict | set):
                held.clear()

    def _find(self, provider_id: str | None, name: str) -> LibraryMatch | None:
        try:
            provider, model = self._snapshot.find_provider_model(name, None, provider_id, None)
        except LookupError:
            return None
        key = (provider.id, model.id)
        schedule = self._schedules.get(key)
        if schedule is None:
            schedule = self._schedules[key] = schedule_for(model)
        return LibraryMatch(provider.id, model.id, schedule)

    def lookup(self, provider: str | None, name: str) -> LibraryMatch | None:
        """Find a model's prices, tolerating provider prefixes, dated names and a missing provider.

        Order: the span's provider with each name variant; the provider a prefix names; any provider
        whose model-name pattern matches; the first-party providers. Not memoised here: PriceBook
        memoises per (provider, model).
        """
        if provider and provider.strip().lower() in SELF_HOSTED_PROVIDERS:
            return None
        known = self.provider_id(provider)
        variants = name_variants(name)
        attempts: list[tuple[str | None, str]] = []
        if known is not None:
            attempts += [(known, variant) for _, variant in variants]
        for hint, variant in variants:
            hinted = self.provider_id(hint)
            if hinted is not None and hinted != known:
                attempts.append((hinted, variant))
        attempts += [(None, variant) for _, variant in variants]
        for first_party in _FIRST_PARTY:
            if first_party != known:
                attempts += [(first_party, variant) for _, variant in variants]
        seen: set[tuple[str | None, str]] = set()
        for attempt in attempts:
            if attempt in seen:
                continue
            seen.add(attempt)
            found = self._find(*attempt)
            if found is not None and found.schedule.steps:
                return found
        return None
