"""PriceBook against the genai-prices library: article prices, token kinds, conventions, time, matching."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import genai_prices
import pytest
from genai_prices import Usage, calc_price, extract_usage
from genai_prices import types as gp
from genai_prices.data_snapshot import get_snapshot

from llmlens.model import CostSource, Span, SpanKind
from llmlens.pricing import LIBRARY_VERSION, PriceBook
from llmlens.pricing._library import LibraryPrices


def _us(dt: datetime) -> int:
    return int(dt.timestamp()) * 1_000_000


JUNE_2025 = _us(datetime(2025, 7, 1, 12, tzinfo=UTC))


@pytest.fixture(scope="module")
def book() -> PriceBook:
    return PriceBook.load()


def _span(**fields: object) -> Span:
    fields.setdefault("kind", SpanKind.LLM.value)
    return Span(trace_id="a" * 32, span_id="b" * 16, start_us=JUNE_2025, **fields)  # type: ignore[arg-type]


def _library_rates(model: str, provider: str) -> gp.ModelPrice:
    """The rates genai-prices itself reports, read without going through llmlens."""
    return calc_price(Usage(input_tokens=1), model, provider_id=provider).model_price


def test_the_articles_prices_come_from_the_library(book: PriceBook) -> None:
    gpt4o = _span(provider="openai", model="gpt-4o", prompt_tokens=1_000_000, completion_tokens=1_000_000)
    mini = _span(provider="openai", model="gpt-4o-mini", prompt_tokens=1_000_000, completion_tokens=1_000_000)
    book.price_span(gpt4o)
    book.price_span(mini)
    assert gpt4o.cost_usd == pytest.approx(2.50 + 10.00)
    assert mini.cost_usd == pytest.approx(0.15 + 0.60)
    assert gpt4o.computed_cost_usd == gpt4o.cost_usd
    assert gpt4o.cost_source == CostSource.LIBRARY
    assert gpt4o.price_version == LIBRARY_VERSION == f"genai-prices@{genai_prices.__version__}"
    priced = book.cost_for_usage(model="gpt-4o", provider="openai", prompt_tokens=1000, completion_tokens=0)
    assert priced is not None
    assert (priced.input_per_mtok, priced.output_per_mtok) == (2.5, 10.0)


def test_openai_cached_tokens_are_inside_prompt_and_priced_at_the_cache_rate(book: PriceBook) -> None:
    rates = _library_rates("gpt-4o", "openai")
    assert rates.cache_read_mtok is not None and rates.cache_read_mtok < rates.input_mtok
    span = _span(provider="openai", model="gpt-4o", prompt_tokens=10_000, cached_tokens=4_000, completion_tokens=500)
    book.price_span(span)
    expected = (6_000 * rates.input_mtok + 4_000 * rates.cache_read_mtok + 500 * rates.output_mtok) / 1_000_000
    assert span.cost_usd == pytest.approx(float(expected))
    library = calc_price(
        Usage(input_tokens=10_000, cache_read_tokens=4_000, output_tokens=500), "gpt-4o", provider_id="openai"
    )
    assert span.cost_usd == pytest.approx(float(library.total_price))


def test_reasoning_tokens_are_priced_at_their_own_rate_when_the_library_has_one(book: PriceBook) -> None:
    rates = _library_rates("sonar-deep-research", "perplexity")
    assert rates.output_reasoning_mtok is not None and rates.output_reasoning_mtok != rates.output_mtok
    priced = book.cost_for_usage(
        model="sonar-deep-research",
        provider="perplexity",
        prompt_tokens=1_000,
        completion_tokens=5_000,  # OpenAI-style: includes the 2,000 reasoning tokens
        reasoning_tokens=2_000,
    )
    assert priced is not None
    expected = (1_000 * rates.input_mtok + 3_000 * rates.output_mtok + 2_000 * rates.output_reasoning_mtok) / 1_000_000
    assert priced.cost_usd == pytest.approx(float(expected))
    assert priced.reasoning_per_mtok == float(rates.output_reasoning_mtok)


def test_reasoning_without_its_own_rate_costs_the_output_rate_and_is_not_counted_twice(
    book: PriceBook,
) -> None:
    with_reasoning = book.cost_for_usage(
        model="o3",
        provider="openai",
        prompt_tokens=100,
        completion_tokens=1_000,
        reasoning_tokens=800,
        at_us=JUNE_2025,
    )
    without = book.cost_for_usage(
        model="o3", provider="openai", prompt_tokens=100, completion_tokens=1_000, at_us=JUNE_2025
    )
    assert with_reasoning is not None and without is not None
    assert with_reasoning.cost_usd == pytest.approx(without.cost_usd)
    assert with_reasoning.reasoning_per_mtok == with_reasoning.output_per_mtok


def test_reasoning_reported_beside_completion_is_added_to_it(book: PriceBook) -> None:
    # Gemini's native API reports thoughtsTokenCount beside candidatesTokenCount.
    beside = book.cost_for_usage(
        model="gemini-2.5-pro",
        provider="google",
        prompt_tokens=100,
        completion_tokens=50,
        reasoning_tokens=400,
    )
    total = book.cost_for_usage(model="gemini-2.5-pro", provider="google", prompt_tokens=100, completion_tokens=450)
    assert beside is not None and total is not None
    assert beside.cost_usd == pytest.approx(total.cost_usd)


def test_anthropic_input_excludes_cache_tokens_which_get_their_own_rates(book: PriceBook) -> None:
    rates = _library_rates("claude-sonnet-4-20250514", "anthropic")
    assert rates.cache_read_mtok is not None and rates.cache_write_mtok is not None
    span = _span(
        provider="anthropic",
        model="claude-sonnet-4-20250514",
        prompt_tokens=1_000,  # Anthropic's input_tokens: uncached only
        cached_tokens=20_000,
        cache_write_tokens=3_000,
        completion_tokens=700,
    )
    book.price_span(span)
    expected = (
        1_000 * rates.input_mtok
        + 20_000 * rates.cache_read_mtok
        + 3_000 * rates.cache_write_mtok
        + 700 * rates.output_mtok
    ) / 1_000_000
    assert span.cost_usd == pytest.approx(float(expected))
    # The library's own reading of the same Anthropic response agrees.
    response = {
        "model": "claude-sonnet-4-20250514",
        "usage": {
            "input_tokens": 1_000,
            "cache_read_input_tokens": 20_000,
            "cache_creation_input_tokens": 3_000,
            "output_tokens": 700,
        },
    }
    library = extract_usage(response, provider_id="anthropic").calc_price()
    assert span.cost_usd == pytest.approx(float(library.total_price))


def test_cache_tokens_larger_than_prompt_are_read_as_reported_beside_it(book: PriceBook) -> None:
    # No provider, but the counts can only be Anthropic-shaped: never a negative uncached count.
    beside = book.cost_for_usage(
        model="claude-sonnet-4-20250514",
        provider=None,
        prompt_tokens=10,
        completion_tokens=0,
        cached_tokens=5_000,
    )
    inside = book.cost_for_usage(
        model="claude-sonnet-4-20250514",
        provider="openrouter",
        prompt_tokens=10,
        completion_tokens=0,
        cached_tokens=5_000,
    )
    assert beside is not None and inside is not None
    assert beside.cost_usd == pytest.approx((10 * 3.0 + 5_000 * 0.3) / 1_000_000)
    assert inside.cost_usd == pytest.approx(beside.cost_usd)  # OpenAI-shaped provider, same reading


def test_caller_cost_is_kept_and_the_computed_cost_stored_beside_it(book: PriceBook) -> None:
    span = _span(provider="openai", model="gpt-4o", prompt_tokens=1_000, completion_tokens=1_000, cost_usd=0.5)
    book.price_span(span)
    assert span.cost_usd == 0.5
    assert span.cost_source == CostSource.CALLER
    assert span.computed_cost_usd == pytest.approx(0.0125)
    assert span.price_version == LIBRARY_VERSION
    book.price_span(span)  # idempotent: still the caller's
    assert (span.cost_usd, span.cost_source) == (0.5, CostSource.CALLER)


def test_unknown_model_is_unpriced_with_null_cost_never_zero(book: PriceBook) -> None:
    span = _span(provider="openai", model="definitely-not-a-model-xyz", prompt_tokens=100, completion_tokens=10)
    book.price_span(span)
    assert span.cost_usd is None
    assert span.computed_cost_usd is None
    assert span.cost_source == CostSource.UNPRICED
    assert span.price_version == LIBRARY_VERSION
    assert (
        book.cost_for_usage(model="definitely-not-a-model-xyz", provider=None, prompt_tokens=1, completion_tokens=1)
        is None
    )
    with_caller = _span(model="definitely-not-a-model-xyz", prompt_tokens=100, completion_tokens=10, cost_usd=0.01)
    book.price_span(with_caller)
    assert (with_caller.cost_usd, with_caller.computed_cost_usd, with_caller.cost_source) == (
        0.01,
        None,
        "caller",
    )


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("openai", "vllm"),  # model named like a runtime, just unknown
        (None, "meta-llama/Llama-3.1-70B-Instruct"),
    ],
)
def test_unmatched_names_stay_unpriced(book: PriceBook, provider: str | None, model: str) -> None:
    assert book.cost_for_usage(model=model, provider=provider, prompt_tokens=1, completion_tokens=1) is None


def test_self_hosted_runtimes_are_not_priced_from_the_library(book: PriceBook) -> None:
    assert book.cost_for_usage(model="gpt-4o", provider="openai", prompt_tokens=1, completion_tokens=1) is not None
    assert book.cost_for_usage(model="gpt-4o", provider="vllm", prompt_tokens=1, completion_tokens=1) is None
    assert book.cost_for_usage(model="llama3.1:70b", provider="ollama", prompt_tokens=1, completion_tokens=1) is None


def test_spans_without_token_counts_are_left_untouched(book: PriceBook) -> None:
    span = _span(kind=SpanKind.TOOL.value, model="gpt-4o", cost_usd=None)
    book.price_span(span)
    assert (span.cost_usd, span.computed_cost_usd, span.cost_source, span.price_version) == (
        None,
        None,
        None,
        None,
    )


def test_total_tokens_alone_cannot_be_priced(book: PriceBook) -> None:
    span = _span(provider="openai", model="gpt-4o", total_tokens=1_000)
    book.price_span(span)
    assert (span.cost_usd, span.cost_source) == (None, CostSource.UNPRICED)


@pytest.mark.parametrize(
    ("provider", "model", "expected_model"),
    [
        ("openai", "gpt-4o", "gpt-4o"),
        (None, "gpt-4o", "gpt-4o"),
        (None, "openai/gpt-4o", "gpt-4o"),
        ("litellm", "openai/gpt-4o-mini", "gpt-4o-mini"),
        ("openai", "gpt-4o-2024-08-06", "gpt-4o"),
        (None, "gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("OpenAI", "GPT-4o", "gpt-4o"),
        ("azure", "gpt-4o", "gpt-4o"),
        (None, "text-embedding-3-small", "text-embedding-3-small"),
        (None, "claude-3-5-sonnet-20250219", "claude-3-5-sonnet"),  # the article's (nonexistent) snapshot
        ("gcp.vertex_ai", "claude-sonnet-4@20250514", "claude-4-sonnet"),
        ("aws.bedrock", "anthropic.claude-3-5-sonnet-20240620-v1:0", None),
    ],
)
def test_names_with_prefixes_snapshots_and_missing_providers_are_matched(
    book: PriceBook, provider: str | None, model: str, expected_model: str | None
) -> None:
    priced = book.cost_for_usage(model=model, provider=provider, prompt_tokens=1_000, completion_tokens=1_000)
    assert priced is not None
    if expected_model is not None:
        assert priced.matched.split(":", 1)[1] == expected_model


def test_response_model_is_tried_before_the_request_model(book: PriceBook) -> None:
    span = _span(
        provider="openai",
        model="gpt-4o",
        response_model="gpt-4o-mini-2024-07-18",
        prompt_tokens=1_000_000,
        completion_tokens=0,
    )
    book.price_span(span)
    assert span.cost_usd == pytest.approx(0.15)
    fallback = _span(provider="openai", model="gpt-4o", response_model="some-alias", prompt_tokens=1_000_000)
    book.price_span(fallback)
    assert fallback.cost_usd == pytest.approx(2.50)


def test_the_spans_start_time_selects_time_dependent_prices(book: PriceBook) -> None:
    before = _span(provider="openai", model="o3", prompt_tokens=1_000_000, completion_tokens=0)
    before.start_us = _us(datetime(2025, 6, 9, 23, tzinfo=UTC))
    after = _span(provider="openai", model="o3", prompt_tokens=1_000_000, completion_tokens=0)
    after.start_us = _us(datetime(2025, 6, 10, 0, 30, tzinfo=UTC))
    book.price_span(before)
    book.price_span(after)
    for span in (before, after):
        ts = datetime.fromtimestamp(span.start_us / 1e6, tz=UTC)
        library = calc_price(Usage(input_tokens=1_000_000), "o3", provider_id="openai", genai_request_timestamp=ts)
        assert span.cost_usd == pytest.approx(float(library.total_price))
    assert before.cost_usd != after.cost_usd


@pytest.mark.parametrize("hour", [0, 1, 3, 5, 7, 12, 16, 17, 23])
def test_time_of_day_prices_follow_the_library(book: PriceBook, hour: int) -> None:
    ts = datetime(2025, 3, 1, hour, 45, tzinfo=UTC)
    for model in ("deepseek-chat", "deepseek-reasoner"):
        priced = book.cost_for_usage(
            model=model, provider="deepseek", prompt_tokens=10_000, completion_tokens=5_000, at_us=_us(ts)
        )
        library = calc_price(
            Usage(input_tokens=10_000, output_tokens=5_000),
            model,
            provider_id="deepseek",
            genai_request_timestamp=ts,
        )
        assert priced is not None
        assert priced.cost_usd == pytest.approx(float(library.total_price))


def _every_library_model() -> list[tuple[str, str]]:
    return [(p.id, m.id) for p in get_snapshot().providers for m in p.models]


@pytest.mark.parametrize("when", [datetime(2024, 6, 1, 3, tzinfo=UTC), datetime(2026, 1, 15, 9, 15, tzinfo=UTC)])
def test_every_library_model_costs_what_the_library_says(book: PriceBook, when: datetime) -> None:
    """Our memoised float arithmetic against genai-prices' own calc_price, for every model it lists."""
    usage = {"cache_read": 2_000, "cache_write": 1_000, "reasoning": 1_000, "output": 3_000, "input": 250_000}
    checked = 0
    mismatches: list[str] = []
    for provider_id, model_id in _every_library_model():
        try:
            library = calc_price(
                Usage(
                    input_tokens=usage["input"],
                    cache_read_tokens=usage["cache_read"],
                    cache_write_tokens=usage["cache_write"],
                    output_tokens=usage["output"],
                    output_reasoning_tokens=usage["reasoning"],
                ),
                model_id,
                provider_id=provider_id,
                genai_request_timestamp=when,
            )
        except LookupError:
            continue
        anthropic_shaped = provider_id in ("anthropic", "aws") or (provider_id == "google" and "claude" in model_id)
        prompt = usage["input"] - (usage["cache_read"] + usage["cache_write"] if anthropic_shaped else 0)
        priced = book.cost_for_usage(
            model=model_id,
            provider=provider_id,
            prompt_tokens=prompt,
            completion_tokens=usage["output"],
            cached_tokens=usage["cache_read"],
            cache_write_tokens=usage["cache_write"],
            reasoning_tokens=usage["reasoning"],
            at_us=_us(when),
        )
        if priced is None:
            # Only models priced by something other than tokens (audio hours, pages) may be unpriced.
            if library.total_price != Decimal(0):
                mismatches.append(f"{provider_id}:{model_id}: unpriced, library says {library.total_price}")
            continue
        checked += 1
        if priced.cost_usd != pytest.approx(float(library.total_price), rel=1e-9, abs=1e-12):
            mismatches.append(f"{provider_id}:{model_id}: {priced.cost_usd} != {library.total_price}")
    assert not mismatches, "\n".join(mismatches[:20])
    assert checked > 1_500


def test_genai_prices_matching_runs_once_per_distinct_model() -> None:
    class CountingLibrary(LibraryPrices):
        calls = 0

        def lookup(self, provider: str | None, name: str):  # type: ignore[no-untyped-def]
            CountingLibrary.calls += 1
            return super().lookup(provider, name)

    book = PriceBook(CountingLibrary())
    for _ in range(100):
        for model in ("gpt-4o", "gpt-4o-mini", "nope-model"):
            book.price_span(_span(provider="openai", model=model, prompt_tokens=10, completion_tokens=10))
    assert CountingLibrary.calls == 3


def test_negative_counts_are_rejected_by_cost_for_usage_and_unpriced_on_spans(book: PriceBook) -> None:
    with pytest.raises(ValueError, match="non-negative"):
        book.cost_for_usage(model="gpt-4o", provider="openai", prompt_tokens=-1, completion_tokens=0)
    span = _span(provider="openai", model="gpt-4o", prompt_tokens=-5, completion_tokens=10)
    book.price_span(span)
    assert (span.cost_usd, span.cost_source) == (None, CostSource.UNPRICED)


def test_public_names_are_pinned() -> None:
    import llmlens.pricing

    assert llmlens.pricing.__all__ == [
        "LIBRARY_VERSION",
        "SELF_HOSTED_PROVIDERS",
        "PriceBook",
        "PriceFileError",
        "PricedCost",
    ]
