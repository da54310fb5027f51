"""Export time bounds: ISO 8601 times or relative ones (`7d` = seven days ago), and periods (`1d`, `6h`)."""

from __future__ import annotations

import datetime as dt
import re

from llmlens.query import WindowError
from llmlens.query._window import parse_utc

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str, name: str) -> dt.timedelta:
    """`30s`, `15m`, `6h`, `1d`, `2w` -> timedelta; ValueError naming `name` otherwise."""
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(f"{name} must be a duration like 30m, 6h, 1d or 2w, got {text!r}")
    seconds = float(match.group(1)) * _UNITS[match.group(2).lower()]
    if seconds <= 0:
        raise ValueError(f"{name} must be longer than zero, got {text!r}")
    return dt.timedelta(seconds=seconds)


def parse_time(text: str, name: str, *, now: dt.datetime) -> dt.datetime:
    """Naive UTC from an ISO time (`2026-03-01`, `2026-03-01T12:00:00Z`), `now`, or a relative `7d` (ago)."""
    value = text.strip()
    if value.lower() == "now":
        return now
    if _DURATION.match(value):
        return now - parse_duration(value, name)
    try:
        return parse_utc(value, name)
    except WindowError:
        raise ValueError(
            f"{name} must be an ISO time (2026-03-01T00:00:00Z) or relative like 7d, got {text!r}"
        ) from None
