"""Small-sample statistics for experiments: Student's t distribution, mean intervals, the paired t-test.

Experiments run tens of items, where a normal approximation is too generous; the t distribution's tail is
computed from the regularized incomplete beta function (a continued fraction, standard library only).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

ALPHA = 0.05


def _beta_fraction(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > tiny else tiny
        step = d * c
        h *= step
        if abs(step - 1.0) < 1e-12:
            break
    return h


def incomplete_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b), the regularized incomplete beta function."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_fraction(a, b, x) / a
    return 1.0 - front * _beta_fraction(b, a, 1.0 - x) / b


def t_two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with `df` degrees of freedom."""
    if math.isinf(t):
        return 0.0
    return incomplete_beta(df / 2.0, 0.5, df / (df + t * t))


def t_critical(df: float, alpha: float = ALPHA) -> float:
    """The t value with `alpha` in both tails together (by bisection on the tail)."""
    lo, hi = 0.0, 1_000.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if t_two_sided_p(mid, df) > alpha:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2.0


@dataclass(frozen=True, slots=True)
class MeanInterval:
    n: int
    mean: float | None
    ci_low: float | None
    ci_high: float | None


def mean_interval(values: Sequence[float], alpha: float = ALPHA) -> MeanInterval:
    """Mean with its (1 - alpha) t interval; no interval from one value."""
    n = len(values)
    if n == 0:
        return MeanInterval(0, None, None, None)
    mean = sum(values) / n
    if n == 1:
        return MeanInterval(1, mean, None, None)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_critical(n - 1, alpha) * sd / math.sqrt(n)
    return MeanInterval(n, mean, mean - half, mean + half)


@dataclass(frozen=True, slots=True)
class PairedTest:
    """Variant minus baseline, over the items both scored."""

    n: int
    mean_difference: float | None
    t: float | None
    p_value: float | None
    significant: bool

    @property
    def verdict(self) -> str:
        if self.n < 2 or self.p_value is None or self.mean_difference is None:
            return "too few paired items to test"
        if not self.significant:
            return f"no significant difference (p = {self.p_value:.3g}, n = {self.n})"
        direction = "higher" if self.mean_difference > 0 else "lower"
        return f"significantly {direction} (p = {self.p_value:.3g}, n = {self.n})"


def paired_t_test(baseline: Sequence[float], variant: Sequence[float], alpha: float = ALPHA) -> PairedTest:
    """Student's paired t-test of `variant - baseline` (same items, same order)."""
    diffs = [v - b for b, v in zip(baseline, variant, strict=True)]
    n = len(diffs)
    if n < 2:
        return PairedTest(n, diffs[0] if diffs else None, None, None, False)
    mean = sum(diffs) / n
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
    if sd == 0.0:
        # Every item moved by the same amount: certain when it moved, nothing to test when it did not.
        if mean == 0.0:
            return PairedTest(n, 0.0, 0.0, 1.0, False)
        return PairedTest(n, mean, math.copysign(math.inf, mean), 0.0, True)
    t = mean / (sd / math.sqrt(n))
    p = t_two_sided_p(t, n - 1)
    return PairedTest(n, mean, t, p, p < alpha)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0-1) of a small list."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
