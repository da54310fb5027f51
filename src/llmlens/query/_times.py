"""The one reader of time arguments (`--since`, `since=`, `from=`, `--window`, ...) for the CLI and the server.

A time is relative (`30m`, `12h`, `7d`, `2w`: that long before now), `now`, an ISO 8601 time (no offset
means UTC) or epoch seconds. A duration is the relative form alone. Times come back as naive UTC, like
the stored timestamps; every refusal has the same wording, naming the argument.
"""

from __future__ import annotations

import datetime as dt
import re

from llmlens.model import parse_timestamp_us

TIME_FORMS = (
    "a relative time like 30m, 12h, 7d or 2w (that long ago), an ISO 8601 time like 2026-03-01T12:00:00Z, "
    "or epoch seconds"
)
DURATION_FORMS = "a duration like 30m, 12h, 7d or 2w"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_EPOCH = dt.datetime(1970, 1, 1)


class WindowError(ValueError):
    """A time, duration or window that cannot be read; the message names the parameter."""


def is_duration(text: str) -> bool:
    return _DURATION.match(str(text)) is not None


def parse_duration(text: str, name: str) -> dt.timedelta:
    """`30s`, `15m`, `6h`, `1d`, `2w` -> timedelta; WindowError naming `name` otherwise."""
    match = _DURATION.match(str(text))
    if not match:
        raise WindowError(f"{name} must be {DURATION_FORMS}, got {text!r}")
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
    if seconds <= 0:
        raise WindowError(f"{name} must be longer than zero, got {text!r}")
    try:
        return dt.timedelta(seconds=seconds)
    except OverflowError:
        raise WindowError(f"{name} is too long, got {text!r}") from None


def parse_time(text: str, name: str, *, now: dt.datetime) -> dt.datetime:
    """Naive UTC from a relative time (before `now`), `now`, ISO 8601 or epoch seconds; WindowError otherwise."""
    value = str(text).strip()
    if value.lower() == "now":
        return now
    if _DURATION.match(value):
        try:
            return now - parse_duration(value, name)
        except OverflowError:
            raise WindowError(f"{name} reaches before the year 1, got {text!r}") from None
    try:
        us = parse_timestamp_us(value)
    except ValueError:
        raise WindowError(f"{name} must be {TIME_FORMS}, got {text!r}") from None
    return _EPOCH + dt.timedelta(microseconds=us)
