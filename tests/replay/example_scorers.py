"""A user-written scorer, registered by import path in the tests (`tests.replay.example_scorers:mentions_paris`)."""

from __future__ import annotations

from llmlens.replay import ScoreSample


def mentions_paris(sample: ScoreSample) -> float:
    return 1.0 if "paris" in (sample.response or "").lower() else 0.0
