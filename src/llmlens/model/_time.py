"""Timestamps: everything is UTC, stored as integer microseconds since the Unix epoch."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime

# Epoch seconds beyond this are taken as milliseconds / microseconds / nanoseconds.
_MAX_SECONDS = 1e11
# 9999-12-31T23:59:59.999999Z: the last instant a database TIMESTAMP holds.
_MAX_US = 253_402_300_799_999_999


def now_us() -> int:
    return time.time_ns() // 1000


def parse_timestamp_us(value: object) -> int:
    """Epoch seconds (int/float, also ms/us/ns by magnitude) or ISO 8601 -> epoch microseconds, UTC.

    ISO strings without an offset are taken as UTC. Raises ValueError naming the value, also for
    times after the year 9999 (no store could keep them).
    """
    us = _parse_timestamp_us(value)
    if not 0 <= us <= _MAX_US:
        raise ValueError(f"timestamp is outside 1970-9999: {value!r}")
    return us


def _parse_timestamp_us(value: object) -> int:
    if isinstance(value, bool):
        raise ValueError(f"timestamp must be epoch seconds or ISO 8601, got {value!r}")
    if isinstance(value, int | float):
        x = float(value)
        if not math.isfinite(x) or x < 0:
            raise ValueError(f"timestamp must be a finite, non-negative epoch time, got {value!r}")
        if x < _MAX_SECONDS:
            return round(x * 1_000_000)
        if x < _MAX_SECONDS * 1e3:
            return round(x * 1_000)
        if x < _MAX_SECONDS * 1e6:
            return round(x)
        return round(x / 1_000)
    if isinstance(value, str):
        s = value.strip()
        try:
            return _parse_timestamp_us(float(s))
        except ValueError:
            pass
        if s.endswith(("Z", "z")):
            s = s[:-1] + "+00:00"
        try:
            dt = datetime.fromisoformat(s)
        except ValueError:
            raise ValueError(f"timestamp is not epoch seconds or ISO 8601: {value!r}") from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    raise ValueError(f"timestamp must be epoch seconds or ISO 8601, got {type(value).__name__}")


def us_to_datetime(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC)


def us_to_iso(us: int) -> str:
    return us_to_datetime(us).isoformat().replace("+00:00", "Z")
