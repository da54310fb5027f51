"""Time options of every subcommand (`--since`, `--until`, `--window`), read by `llmlens.query`'s one parser."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from ._common import CliError

if TYPE_CHECKING:
    from llmlens.query import TimeWindow

SINCE_HELP = "relative (30m, 12h, 7d, 2w), ISO 8601 (2026-03-01T12:00:00Z) or epoch seconds"


def time_option(text: str, option: str, *, now: dt.datetime | None = None) -> dt.datetime:
    """Naive UTC from `--since`/`--until` text; CliError with the parser's message otherwise."""
    from llmlens.query import parse_time, utc_now

    try:
        return parse_time(text, option, now=now or utc_now())
    except ValueError as exc:
        raise CliError(str(exc)) from None


def time_option_us(text: str, option: str, *, now: dt.datetime | None = None) -> int:
    """The same, as epoch microseconds (what stores compare timestamps with)."""
    delta = time_option(text, option, now=now) - dt.datetime(1970, 1, 1)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def duration_option(text: str, option: str) -> dt.timedelta:
    from llmlens.query import parse_duration

    try:
        return parse_duration(text, option)
    except ValueError as exc:
        raise CliError(str(exc)) from None


def window_option(text: str, option: str, *, now: dt.datetime | None = None) -> TimeWindow:
    """`--window 7d` (the last seven days) or `--window 2026-03-01` (from then until now)."""
    from llmlens.query import RANGES, TimeWindow, parse_window, utc_now

    now = now or utc_now()
    if text in RANGES:
        return parse_window(text, now=now)
    start = time_option(text, option, now=now)
    if start >= now:
        raise CliError(f"{option} must start before now, got {text!r}")
    return TimeWindow(start=start, end=now, range=None)
