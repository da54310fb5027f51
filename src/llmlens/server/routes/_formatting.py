"""Jinja filters of the web UI: money, durations, rates, counts and times, readable at a glance."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any


def usd(value: Any) -> str:
    if value is None:
        return "—"
    x = float(value)
    if x == 0:
        return "$0"
    if abs(x) < 0.01:
        return f"${x:.4f}"
    if abs(x) < 100:
        return f"${x:,.2f}"
    return f"${x:,.0f}"


def ms(value: Any) -> str:
    if value is None:
        return "—"
    x = float(value)
    return f"{x / 1000:.2f} s" if x >= 1000 else f"{x:.0f} ms"


def pct(value: Any, digits: int = 1) -> str:
    if value is None:
        return "—"
    return f"{float(value) * 100:.{digits}f} %"


def count(value: Any) -> str:
    if value is None:
        return "—"
    x = float(value)
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e4, "k")):
        if abs(x) >= limit:
            return f"{x / limit:.1f}{suffix}"
    return f"{x:,.0f}" if x == int(x) or abs(x) >= 100 else f"{x:,.2f}"


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
        except json.JSONDecodeError:
            return str(value)
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


FILTERS: dict[str, Callable[..., str]] = {
    "usd": usd,
    "ms": ms,
    "pct": pct,
    "count": count,
    "when": when,
    "pretty_json": pretty_json,
}
