"""Export time bounds and periods: read by the one time-argument parser of `llmlens.query`."""

from __future__ import annotations

from llmlens.query._times import parse_duration, parse_time

__all__ = ["parse_duration", "parse_time"]
