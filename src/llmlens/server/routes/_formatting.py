"""Jinja filters of the web UI: money, durations, rates, counts and times, readable at a glance."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from llmlens.query import rate_unit


def usd(value: Any) -> str:
    """Dollars: whole dollars from $100, cents from $0.10, and two significant digits below that
    (a $0.00004 call reads `$0.000040`, never `$0.0000`; $0.0388 reads `$0.039`). None reads `—`."""
    if value is None:
        return "—"
    x = float(value)
    if x == 0:
        return "$0"
    sign = "-" if x < 0 else ""
    a = abs(x)
    if a < 0.1:
        digits = _decimals_for_significant(a, 2)
        if round(a, digits) < 0.1:
            return f"{sign}${a:.{digits}f}"
    if round(a, 2) < 100:
        return f"{sign}${a:,.2f}"
    return f"{sign}${a:,.0f}"


def _decimals_for_significant(a: float, significant: int) -> int:
    """Decimals that show `significant` digits of a positive number below 1."""
    return max(significant - 1 - math.floor(math.log10(a)), 0)


def ms(value: Any) -> str:
    if value is None:
        return "—"
    x = float(value)
    return f"{x / 1000:.2f} s" if round(x) >= 1000 else f"{x:.0f} ms"  # 999.6 ms reads 1.00 s, not 1000 ms


def pct(value: Any, digits: int = 1) -> str:
    if value is None:
        return "—"
    return f"{float(value) * 100:.{digits}f} %"


# Counts in full up to 9,999; from 10,000 three significant digits with a suffix (10.0k, 312k, 1.74M), so
# that parts and their total read alike (prompt 1.74M + completion 312k = 2.05M).
_COUNT_SUFFIXES = ((1e3, "k"), (1e6, "M"), (1e9, "B"))


def count(value: Any) -> str:
    """Calls, tokens and other counts: `9,999`, `10.0k`, `60.9k`, `1.00M`."""
    if value is None:
        return "—"
    x = float(value)
    a = abs(x)
    if a < 10_000:
        return f"{x:,.0f}" if x == int(x) or a >= 100 else f"{x:,.2f}"
    sign = "-" if x < 0 else ""
    i = max(n for n, (limit, _) in enumerate(_COUNT_SUFFIXES) if a >= limit)
    scaled = _three_significant(a / _COUNT_SUFFIXES[i][0])
    if scaled >= 1000 and i + 1 < len(_COUNT_SUFFIXES):
        i += 1  # 999,999 rounds to 1000k: it reads 1.00M
        scaled = _three_significant(a / _COUNT_SUFFIXES[i][0])
    return f"{sign}{scaled:.{_decimals_of_three(scaled)}f}{_COUNT_SUFFIXES[i][1]}"


def _three_significant(x: float) -> float:
    return round(x, _decimals_of_three(x))


def _decimals_of_three(x: float) -> int:
    return 2 if x < 10 else 1 if x < 100 else 0


def rate(per_second: Any) -> str:
    """Events per second in the unit that reads: `3.20 / s`, `30.0 / min`, `21.6 / h` (never `0.006 / s`)."""
    if per_second is None:
        return "—"
    seconds, name = rate_unit(float(per_second))
    value = float(per_second) * seconds
    if value == 0:
        return f"0 / {name}"
    return f"{_rate_number(value)} / {name}"


def _rate_number(value: float) -> str:
    if abs(value) >= 10_000:
        return count(value)
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.{_decimals_of_three(abs(value))}f}"
    return f"{value:.{_decimals_for_significant(abs(value), 2)}f}"  # below 1 a day: 0.50, 0.0086


def cost_or_unpriced(value: Any, unpriced_calls: Any = 0) -> str:
    """A cost that may be partly or wholly unknown: `unpriced` when no call has a price, `$1.20 + unpriced`
    when some have none; never a silent `$0`."""
    if value is None:
        return "unpriced"
    if unpriced_calls:
        return f"{usd(value)} + unpriced"
    return usd(value)


def when(value: Any) -> str:
    """ISO time from the context -> `2026-03-15 12:00:01` (UTC, as stored)."""
    if not value:
        return "—"
    text = str(value).replace("T", " ").removesuffix("Z")
    return text.split(".")[0]


def pretty_json(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):  # not JSON, or nested deeper than the parser follows
            return str(value)
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


FILTERS: dict[str, Callable[..., str]] = {
    "usd": usd,
    "ms": ms,
    "pct": pct,
    "count": count,
    "rate": rate,
    "cost_or_unpriced": cost_or_unpriced,
    "when": when,
    "pretty_json": pretty_json,
}
