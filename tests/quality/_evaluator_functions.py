"""Evaluator functions by import path, as users write them (`module:function`, taking a `ScoreSample`)."""

from __future__ import annotations

from llmlens.replay import ScoreSample


def mentions_paris(sample: ScoreSample) -> bool:
    return "paris" in (sample.response or "").lower()


def always_fails(sample: ScoreSample) -> float:
    raise RuntimeError("this evaluator is broken on purpose")
