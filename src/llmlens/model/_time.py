"""Timestamps: everything is UTC, stored as integer microseconds since the Unix epoch."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta

# 9999-12-31T23:59:59.999999Z: the last instant a database TIMESTAMP holds.
_MAX_US = 253_402_300_799_999_999
# A number is read in the coarsest unit that puts it at or before the last instant above: seconds below
# this, then milliseconds, then microseconds (docs/events.md, Timestamps). So every time in seconds is
# read right, and every time from 1978-01-11T21:31:40.8Z on in ms, µs or ns; earlier ones in those
# units would be read as seconds (use seconds or ISO 8601 for them).
_SECONDS_BELOW = 253_402_300_800
_MS_BELOW = _SECONDS_BELOW * 1_000
# Larger numbers are nanoseconds, up to what an unsigned 64-bit count holds (OTLP's fixed64; 2554-07-21).
_NS_BELOW = 2**64
# A digit string longer than this is beyond every unit; refusing it early skips a costly int().
_MAX_DIGITS = 25


def now_us() -> int:
    return time.time_ns() // 1000


def parse_timestamp_us(value: object) -> int:
    """Epoch seconds (int/float, also ms/µs/ns by magnitude) or ISO 8601 -> epoch microseconds, UTC.

    ISO strings without an offset are taken as UTC. Raises ValueError naming the value for anything
    else, and for times before 1970 or after 9999 (no store could keep them).
    """
    us = _parse_timestamp_us(value)
    if not 0 <= us <= _MAX_US:
        raise ValueError(f"timestamp is outside 1970-9999: {_shown(value)}")
    return us


def _shown(value: object) -> str:
    text = repr(value) if not isinstance(value, int) or value.bit_length() < 256 else "a number of many digits"
    return text if len(text) <= 80 else text[:77] + "..."


def _parse_timestamp_us(value: object) -> int:
    if isinstance(value, bool):
        raise ValueError(f"timestamp must be epoch seconds or ISO 8601, got {value!r}")
    if isinstance(value, int):
        return _int_us(value)
    if isinstance(value, float):
        return _float_us(value)
    if isinstance(value, str):
        return _text_us(value)
    raise ValueError(f"timestamp must be epoch seconds or ISO 8601, got {type(value).__name__}")


def _int_us(value: int) -> int:
    # Exact integer arithmetic: a nanosecond count has more digits than a float keeps.
    if value < 0:
        raise ValueError(f"timestamp is outside 1970-9999: {_shown(value)} is negative")
    if value < _SECONDS_BELOW:
        return value * 1_000_000
    if value < _MS_BELOW:
        return value * 1_000
    if value <= _MAX_US:
        return value
    if value < _NS_BELOW:
        return value // 1_000
    raise ValueError(f"timestamp is outside 1970-9999 in every unit (s, ms, µs, ns): {_shown(value)}")


def _float_us(x: float) -> int:
    if not math.isfinite(x) or x < 0:
        raise ValueError(f"timestamp must be a finite, non-negative epoch time, got {x!r}")
    if x >= _NS_BELOW:
        raise ValueError(f"timestamp is outside 1970-9999 in every unit (s, ms, µs, ns): {x!r}")
    if x.is_integer():
        return _int_us(int(x))
    # Whole and fractional parts apart: x * 10^6 as one float would lose microseconds past 2^53.
    whole = math.floor(x)
    if x < _SECONDS_BELOW:
        return whole * 1_000_000 + round((x - whole) * 1_000_000)
    if x < _MS_BELOW:
        return whole * 1_000 + round((x - whole) * 1_000)
    if x <= _MAX_US:
        return round(x)
    return round(x / 1_000)


def _text_us(value: str) -> int:
    s = value.strip()
    if s.isdigit() and s.isascii():
        if len(s) > _MAX_DIGITS:
            raise ValueError(f"timestamp is outside 1970-9999 in every unit (s, ms, µs, ns): {_shown(value)}")
        return _int_us(int(s))
    try:
        number = float(s)
    except ValueError:
        pass
    else:
        return _float_us(number)
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        raise ValueError(f"timestamp is not epoch seconds or ISO 8601: {_shown(value)}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    delta = dt - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def us_to_datetime(us: int) -> datetime:
    # Exact (no float seconds), so the last microsecond of 9999 does not round into year 10000.
    return _EPOCH + timedelta(microseconds=us)


def us_to_iso(us: int) -> str:
    return us_to_datetime(us).isoformat().replace("+00:00", "Z")
