"""Small, exact statistics for the comparison views: Wilson intervals and a two-proportion z-test."""

from __future__ import annotations

import math
from dataclasses import dataclass

Z_95 = 1.959963984540054
# Below this many observations per group, or fewer than this many successes/failures expected,
# the normal approximation of the z-test is not trustworthy: we say so rather than guess.
MIN_SAMPLE = 30
MIN_EXPECTED = 5
ALPHA = 0.05


@dataclass(frozen=True, slots=True)
class Proportion:
    successes: int
    n: int
    rate: float | None
    ci_low: float | None
    ci_high: float | None


def wilson(successes: int, n: int, z: float = Z_95) -> Proportion:
    """The rate with its Wilson score interval (sensible at small n and near 0 or 1)."""
    if n <= 0:
        return Proportion(successes, n, None, None, None)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return Proportion(successes, n, p, max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True, slots=True)
class ProportionTest:
    """Is rate B different from rate A? `verdict` says it in words."""

    a: Proportion
    b: Proportion
    difference: float | None  # b - a
    z: float | None
    p_value: float | None
    significant: bool
    too_small: bool
    verdict: str


def two_proportion_test(a_successes: int, a_n: int, b_successes: int, b_n: int, what: str) -> ProportionTest:
    a, b = wilson(a_successes, a_n), wilson(b_successes, b_n)
    if a.rate is None or b.rate is None:
        return ProportionTest(a, b, None, None, None, False, True, f"No {what} data for one of the versions.")
    diff = b.rate - a.rate
    pooled = (a_successes + b_successes) / (a_n + b_n)
    expected = min(a_n * pooled, a_n * (1 - pooled), b_n * pooled, b_n * (1 - pooled))
    if min(a_n, b_n) < MIN_SAMPLE or expected < MIN_EXPECTED:
        return ProportionTest(
            a,
            b,
            diff,
            None,
            None,
            False,
            True,
            f"Sample too small to tell: {a_n} vs {b_n} observations of {what} "
            f"(need at least {MIN_SAMPLE} each and {MIN_EXPECTED} expected per outcome).",
        )
    se = math.sqrt(pooled * (1 - pooled) * (1 / a_n + 1 / b_n))
    if se == 0:
        return ProportionTest(a, b, diff, None, 1.0, False, False, f"No difference in {what}: both are identical.")
    z = diff / se
    p_value = math.erfc(abs(z) / math.sqrt(2))
    significant = p_value < ALPHA
    direction = "higher" if diff > 0 else "lower"
    verdict = (
        f"{what.capitalize()} is {direction} by {abs(diff) * 100:.1f} points (p = {p_value:.3g}): significant at 5 %."
        if significant
        else f"No significant difference in {what} ({diff * 100:+.1f} points, p = {p_value:.3g})."
    )
    return ProportionTest(a, b, diff, z, p_value, significant, False, verdict)
