"""PriceBook: the cost of a call from its token counts, at ingest, from a custom file or genai-prices.

Token-count conventions. A Span stores counts as its source reported them, and sources disagree:

* OpenAI shape (every provider not listed below, including OpenAI-compatible gateways such as
  OpenRouter, LiteLLM, Azure, Groq, DeepSeek, Mistral, vLLM): `prompt_tokens` INCLUDES
  `cached_tokens` and `cache_write_tokens`; `completion_tokens` INCLUDES `reasoning_tokens`.
* Anthropic shape (provider `anthropic`; `aws`/Bedrock, whose Converse and InvokeModel usage has
  the same shape; Claude models on Google Vertex; and, when the span names no provider, models that
  genai-prices attributes to Anthropic): `prompt_tokens` EXCLUDES cache reads and writes (Anthropic's
  `input_tokens`, beside `cache_read_input_tokens` and `cache_creation_input_tokens`);
  `completion_tokens` includes thinking.

Counts that contradict the assumed shape are read the other way rather than rejected: cache
tokens exceeding `prompt_tokens` mean they were reported beside it, and `reasoning_tokens`
exceeding `completion_tokens` mean reasoning was reported beside it (e.g. Gemini's native
`thoughtsTokenCount`). genai-prices wants totals (input including cache tokens, output including
reasoning), and prices each part at its own rate, the rest at the plain input/output rate.
"""

from __future__ import annotations

import pathlib
from dataclasses import dataclass

from llmlens.model import CostSource, Span, now_us

from ._custom import CustomPriceFile, load_custom_price_file, parse_custom_price_file
from ._library import LibraryPrices
from ._rates import PriceSchedule

_ANTHROPIC_SHAPED_PROVIDERS = frozenset({"anthropic", "aws"})
_MEMO_LIMIT = 50_000  # distinct (provider, response model, model) keys before the memo is reset
_CALLER = CostSource.CALLER.value
_UNPRICED = CostSource.UNPRICED.value


@dataclass(frozen=True, slots=True)
class PricedCost:
    """The cost of one call and what it was computed from. Rates are USD per million tokens, as applied."""

    cost_usd: float
    source: CostSource  # CUSTOM or LIBRARY
    version: str  # the PriceBook version
    matched: str  # `custom:<match>` or `<genai-prices provider>:<model id>`
    input_per_mtok: float
    output_per_mtok: float
    cache_read_per_mtok: float  # the input rate when cache reads are not priced separately
    cache_write_per_mtok: float  # the input rate when cache writes are not priced separately
    reasoning_per_mtok: float  # the output rate when reasoning is not priced separately
    per_request_usd: float = 0.0


@dataclass(frozen=True, slots=True)
class _Resolved:
    """What one (provider, response model, model) prices at: memoised per distinct key."""

    schedule: PriceSchedule
    source: CostSource
    source_value: str
    matched: str
    input_excludes_cache: bool


def _totals(
    input_excludes_cache: bool,
    prompt: int,
    completion: int,
    cache_read: int,
    cache_write: int,
    reasoning: int,
) -> tuple[int, int]:
    """(total input, total output) in genai-prices' sense, from counts as the source reported them."""
    total_input = prompt
    if input_excludes_cache or cache_read + cache_write > prompt:
        total_input += cache_read + cache_write
    total_output = completion + reasoning if reasoning > completion else completion
    return total_input, total_output


class PriceBook:
    """Prices calls: a custom price file first, then genai-prices. Load once; share freely (read-only
    apart from its memo, whose races only repeat a lookup)."""

    version: str

    def __init__(self, library: LibraryPrices, custom: CustomPriceFile | None = None) -> None:
        self._library = library
        self._custom = custom
        self.version = library.version if custom is None else f"custom:{custom.sha256_8}+{library.version}"
        self._memo: dict[tuple[str | None, str | None, str | None], _Resolved | None] = {}

    @classmethod
    def load(cls, custom_price_file: pathlib.Path | None = None) -> PriceBook:
        """The bundled genai-prices data (offline), overridden by `custom_price_file` if given.

        Raises PriceFileError for an unreadable or invalid custom file.
        """
        custom = load_custom_price_file(pathlib.Path(custom_price_file)) if custom_price_file else None
        return cls(LibraryPrices(), custom)

    @classmethod
    def from_price_file_content(cls, name: str, content: bytes) -> PriceBook:
        """Like `load`, from the bytes of a price file named `name` (its suffix: .toml, .yaml or .yml)."""
        return cls(LibraryPrices(), parse_custom_price_file(pathlib.Path(name), content))

    # -- lookup ---------------------------------------------------------------------------------

    def _resolve(self, provider: str | None, response_model: str | None, model: str | None) -> _Resolved | None:
        key = (provider, response_model, model)
        try:
            return self._memo[key]
        except KeyError:
            pass
        resolved = self._resolve_uncached(provider, response_model, model)
        if len(self._memo) >= _MEMO_LIMIT:
            # Unbounded distinct names (garbage input) must not grow memory forever.
            self._memo.clear()
            self._library.clear_caches()
        self._memo[key] = resolved
        return resolved

    def _resolve_uncached(
        self, provider: str | None, response_model: str | None, model: str | None
    ) -> _Resolved | None:
        names = [n for n in dict.fromkeys((response_model, model)) if n and n.strip()]
        if not names:
            return None
        family = self._library.provider_id(provider) or (provider.strip().lower() if provider else None)
        if self._custom is not None:
            for name in names:
                custom = self._custom.find(provider, name)
                if custom is not None:
                    return _Resolved(
                        schedule=PriceSchedule.constant(custom.rates),
                        source=CostSource.CUSTOM,
                        source_value=CostSource.CUSTOM.value,
                        matched=f"custom:{custom.match}",
                        input_excludes_cache=_anthropic_shaped(family, name),
                    )
        for name in names:
            found = self._library.lookup(provider, name)
            if found is None:
                continue
            if all(rates is None for _, rates in found.schedule.steps):
                return None  # priced by audio hour, page, ... not by the token
            return _Resolved(
                schedule=found.schedule,
                source=CostSource.LIBRARY,
                source_value=CostSource.LIBRARY.value,
                matched=f"{found.provider_id}:{found.model_id}",
                input_excludes_cache=_anthropic_shaped(family or found.provider_id, name),
            )
        return None

    # -- pricing --------------------------------------------------------------------------------

    def cost_for_usage(
        self,
        *,
        model: str,
        provider: str | None,
        prompt_tokens: int,
        completion_tokens: int,
        cached_tokens: int = 0,
        cache_write_tokens: int = 0,
        reasoning_tokens: int = 0,
        at_us: int | None = None,
        response_model: str | None = None,
    ) -> PricedCost | None:
        """The cost of one call, or None if no price is known. Counts follow the provider's convention
        (see the module docstring); `at_us` (default now) selects time-dependent prices."""
        counts = (prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens, reasoning_tokens)
        if any(c < 0 for c in counts):
            raise ValueError(f"token counts must be non-negative, got {counts}")
        resolved = self._resolve(provider, response_model, model)
        if resolved is None:
            return None
        rates = resolved.schedule.at(now_us() if at_us is None else at_us)
        if rates is None:
            return None
        total_input, total_output = _totals(resolved.input_excludes_cache, *counts)
        i, o, cr, cw, rs = rates.effective(total_input)
        return PricedCost(
            cost_usd=rates.cost(total_input, total_output, cached_tokens, cache_write_tokens, reasoning_tokens),
            source=resolved.source,
            version=self.version,
            matched=resolved.matched,
            input_per_mtok=i,
            output_per_mtok=o,
            cache_read_per_mtok=i if cr is None else cr,
            cache_write_per_mtok=i if cw is None else cw,
            reasoning_per_mtok=o if rs is None else rs,
            per_request_usd=rates.per_request,
        )

    def price_span(self, span: Span) -> None:
        """Fill computed_cost_usd, cost_usd (unless the caller sent one), cost_source and price_version.

        Only spans with token counts are touched. A caller's cost (cost_usd set, cost_source unset or
        `caller`) is kept; a cost we computed earlier is replaced, so repricing is this call again.
        With no price the computed cost is None, never 0, and the source `unpriced`.
        """
        prompt = span.prompt_tokens
        completion = span.completion_tokens
        cache_read = span.cached_tokens
        cache_write = span.cache_write_tokens
        reasoning = span.reasoning_tokens
        if (
            prompt is None
            and completion is None
            and cache_read is None
            and cache_write is None
            and reasoning is None
            and span.total_tokens is None
        ):
            return
        computed: float | None = None
        source = _UNPRICED
        if prompt is not None or completion is not None:
            resolved = self._resolve(span.provider, span.response_model, span.model)
            if resolved is not None:
                schedule = resolved.schedule
                rates = schedule.steps[0][1] if len(schedule.steps) == 1 else schedule.at(span.start_us or now_us())
                p, c = prompt or 0, completion or 0
                cr, cw, rs = cache_read or 0, cache_write or 0, reasoning or 0
                if rates is not None and p >= 0 and c >= 0 and cr >= 0 and cw >= 0 and rs >= 0:
                    total_input, total_output = _totals(resolved.input_excludes_cache, p, c, cr, cw, rs)
                    computed = rates.cost(total_input, total_output, cr, cw, rs)
                    source = resolved.source_value
        span.computed_cost_usd = computed
        span.price_version = self.version
        if span.cost_usd is not None and (span.cost_source is None or span.cost_source == _CALLER):
            span.cost_source = _CALLER
        else:
            span.cost_usd = computed
            span.cost_source = source


def _anthropic_shaped(family: str | None, model_name: str) -> bool:
    if family in _ANTHROPIC_SHAPED_PROVIDERS:
        return True
    return family == "google" and "claude" in model_name.lower()
