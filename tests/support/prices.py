"""Prices the tests know on their own: a custom price file they hand the server, a few published rates,
and the cost of a call worked out from its token counts, so stored costs can be checked to the last digit.

The arithmetic here is written from the providers' billing rules, not from llmlens's pricing code:

* OpenAI counts cache reads inside `prompt_tokens` and reasoning inside `completion_tokens`; each part
  is billed at its own rate and only the rest at the plain input or output rate.
* Anthropic reports `input_tokens` without the cache reads and writes, which come beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

PER_MTOK = 1_000_000


@dataclass(frozen=True)
class TokenRates:
    """USD per million tokens. A missing cache rate means "billed as input", a missing reasoning rate
    "billed as output"."""

    input: float
    output: float
    cache_read: float | None = None
    cache_write: float | None = None
    reasoning: float | None = None

    def openai_cost(
        self, prompt_tokens: int, completion_tokens: int, *, cached_tokens: int = 0, reasoning_tokens: int = 0
    ) -> float:
        """A call reported the OpenAI way: cache reads inside the prompt, reasoning inside the completion."""
        return self.cost(
            uncached_input=prompt_tokens - cached_tokens,
            cache_read=cached_tokens,
            cache_write=0,
            plain_output=completion_tokens - reasoning_tokens,
            reasoning=reasoning_tokens,
        )

    def anthropic_cost(
        self, input_tokens: int, output_tokens: int, *, cache_read_tokens: int = 0, cache_write_tokens: int = 0
    ) -> float:
        """A call reported the Anthropic way: `input_tokens` excludes the cache reads and writes."""
        return self.cost(
            uncached_input=input_tokens,
            cache_read=cache_read_tokens,
            cache_write=cache_write_tokens,
            plain_output=output_tokens,
            reasoning=0,
        )

    def cost(
        self, *, uncached_input: int, cache_read: int, cache_write: int, plain_output: int, reasoning: int
    ) -> float:
        """Every kind of token times its own rate."""
        dollars = (
            uncached_input * self.input
            + cache_read * (self.input if self.cache_read is None else self.cache_read)
            + cache_write * (self.input if self.cache_write is None else self.cache_write)
            + plain_output * self.output
            + reasoning * (self.output if self.reasoning is None else self.reasoning)
        )
        return dollars / PER_MTOK


# The test price file: made-up rates, a different one for every kind of token (and unlike any real
# price), so a token counted twice or billed at the wrong rate shows in the total.
CUSTOM_RATES: dict[str, TokenRates] = {
    "gpt-4o-mini": TokenRates(input=1.3, output=5.9, cache_read=0.37, cache_write=2.1, reasoning=11.3),
    "gpt-4o": TokenRates(input=3.7, output=17.3, cache_read=0.91, cache_write=4.3, reasoning=29.9),
    "text-embedding-3-small": TokenRates(input=0.53, output=0.0),
    "claude-3-5-sonnet": TokenRates(input=4.1, output=19.7, cache_read=0.43, cache_write=5.3, reasoning=23.9),
    "claude-3-5-haiku": TokenRates(input=1.9, output=7.1, cache_read=0.17, cache_write=2.9),
    "claude-sonnet-4-5": TokenRates(input=3.3, output=13.1, cache_read=0.29, cache_write=4.7),
}

# genai-prices' default rates for two models, as OpenAI publishes them (openai.com/api/pricing, "Standard"
# tier; genai-prices 0.2.5 carries the same). Neither has its own cache-write or reasoning rate.
PUBLISHED_RATES: dict[str, TokenRates] = {
    "gpt-4o": TokenRates(input=2.5, output=10.0, cache_read=1.25),
    "gpt-4o-mini": TokenRates(input=0.15, output=0.6, cache_read=0.075),
}


def write_price_file(directory: Path, models: tuple[str, ...] | None = None) -> Path:
    """Write `CUSTOM_RATES` (or only `models` of them) as a TOML price file for `--price-file`."""
    lines: list[str] = []
    for name, rates in CUSTOM_RATES.items():
        if models is not None and name not in models:
            continue
        lines += ["[[models]]", f'match = "{name}"', f"input_per_mtok = {rates.input!r}"]
        lines.append(f"output_per_mtok = {rates.output!r}")
        for key, value in (
            ("cache_read_per_mtok", rates.cache_read),
            ("cache_write_per_mtok", rates.cache_write),
            ("reasoning_per_mtok", rates.reasoning),
        ):
            if value is not None:
                lines.append(f"{key} = {value!r}")
        lines.append("")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "test-prices.toml"
    path.write_text("\n".join(lines))
    return path


def assert_cost(stored: object, expected: float, what: str = "cost") -> None:
    """The stored cost equals the expected one but for float rounding (relative 1e-12)."""
    assert isinstance(stored, float), f"{what}: stored {stored!r}, expected {expected!r}"
    assert stored == pytest.approx(expected, rel=1e-12, abs=0), f"{what}: stored {stored!r}, expected {expected!r}"
