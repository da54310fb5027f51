"""Per-token rates, how they change over time, and the arithmetic from token counts to dollars."""

from __future__ import annotations

from dataclasses import dataclass, field

_PER_MTOK = 1_000_000.0

# A flat USD-per-million-tokens rate, or cliff tiers: (base, ((start, rate), ...)) where the rate of
# the highest tier whose `start` the total input exceeds applies to every token (genai-prices' model).
Rate = float | tuple[float, tuple[tuple[int, float], ...]]


def _flat(rate: Rate, total_input: int) -> float:
    if isinstance(rate, float):
        return rate
    base, tiers = rate
    for start, tier_rate in reversed(tiers):
        if total_input > start:
            return tier_rate
    return base


# input, output, cache read, cache write, reasoning: USD per million tokens.
_FlatRates = tuple[float, float, float | None, float | None, float | None]


@dataclass(frozen=True, slots=True)
class Rates:
    """USD per million tokens for each kind of token, plus a per-call fee.

    `None` for a cache or reasoning rate means that kind is not priced separately: those tokens are
    billed at the input (cache) or output (reasoning) rate, as genai-prices does.
    """

    input: Rate
    output: Rate
    cache_read: Rate | None = None
    cache_write: Rate | None = None
    reasoning: Rate | None = None
    per_request: float = 0.0
    # Precomputed for the hot path: the flat rates, or None when some rate is tiered.
    _flat_rates: _FlatRates | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        rates = (self.input, self.output, self.cache_read, self.cache_write, self.reasoning)
        tiered = any(isinstance(r, tuple) for r in rates)
        object.__setattr__(self, "_flat_rates", None if tiered else self.effective(0))

    def effective(self, total_input: int) -> _FlatRates:
        """The flat rates that apply to a call with this many input tokens (tiers resolved)."""
        return (
            _flat(self.input, total_input),
            _flat(self.output, total_input),
            None if self.cache_read is None else _flat(self.cache_read, total_input),
            None if self.cache_write is None else _flat(self.cache_write, total_input),
            None if self.reasoning is None else _flat(self.reasoning, total_input),
        )

    def cost(self, total_input: int, total_output: int, cache_read: int, cache_write: int, reasoning: int) -> float:
        """USD for one call. Totals include their parts (cache tokens in input, reasoning in output)."""
        flat = self._flat_rates
        i, o, cr, cw, rs = flat if flat is not None else self.effective(total_input)
        micro = 0.0
        leaf_input = total_input
        if cr is not None:
            leaf_input -= cache_read
            micro += cache_read * cr
        if cw is not None:
            leaf_input -= cache_write
            micro += cache_write * cw
        leaf_output = total_output
        if rs is not None:
            leaf_output -= reasoning
            micro += reasoning * rs
        micro += leaf_input * i + leaf_output * o
        return micro / _PER_MTOK + self.per_request


# Constraint kinds, evaluated on integer microseconds UTC.
_DAY_US = 86_400_000_000


@dataclass(frozen=True, slots=True)
class StartsAt:
    """Active from this instant on (genai-prices: the UTC day of its start date)."""

    start_us: int

    def active(self, at_us: int) -> bool:
        return at_us >= self.start_us


@dataclass(frozen=True, slots=True)
class DailyWindow:
    """Active each day between two UTC times of day, e.g. off-peak prices; may wrap midnight."""

    start_of_day_us: int
    end_of_day_us: int

    def active(self, at_us: int) -> bool:
        tod = at_us % _DAY_US
        if self.end_of_day_us < self.start_of_day_us:
            return tod >= self.start_of_day_us or tod < self.end_of_day_us
        return self.start_of_day_us <= tod < self.end_of_day_us


@dataclass(frozen=True, slots=True)
class PriceSchedule:
    """Rates over time: the last step whose constraint is active wins, else the first step.

    A step's rates are `None` when the model is priced, but not per token (e.g. per audio hour).
    """

    steps: tuple[tuple[StartsAt | DailyWindow | None, Rates | None], ...]

    @property
    def is_constant(self) -> bool:
        return len(self.steps) == 1

    def at(self, at_us: int) -> Rates | None:
        for constraint, rates in reversed(self.steps):
            if constraint is None or constraint.active(at_us):
                return rates
        return self.steps[0][1]

    @classmethod
    def constant(cls, rates: Rates | None) -> PriceSchedule:
        return cls(((None, rates),))
