"""Scores of a replayed answer against the original: built-in checks and user functions by import path.

Specs: `exact_match`, `json_valid`, `contains:TEXT`, `regex:PATTERN`, `length_ratio`, or
`package.module:function`. A user function takes a `ScoreSample` and returns a number, a bool or None.
"""

from __future__ import annotations

import importlib
import json
import logging
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger("llmlens.replay")

BUILTIN_SCORERS = ("exact_match", "json_valid", "contains:", "regex:", "length_ratio")


class ScorerError(ValueError):
    """A scorer spec that cannot be used; the message names it."""


@dataclass(frozen=True, slots=True)
class ScoreSample:
    """What a scorer sees: both answers as text (tool calls as JSON when there is no text), both spans."""

    original: str | None
    response: str | None
    model: str
    original_span: Mapping[str, Any] = field(default_factory=dict)
    replay_span: Mapping[str, Any] = field(default_factory=dict)


ScoreFunction = Callable[[ScoreSample], float | bool | None]


@dataclass(frozen=True, slots=True)
class Scorer:
    name: str
    function: ScoreFunction


def answer_text(response: Any, tool_calls: Any) -> str | None:
    """The text compared by scorers: the response, or the tool calls (name and arguments) without one."""
    if isinstance(response, str) and response:
        return response
    if isinstance(tool_calls, list) and tool_calls:
        calls = [{"name": c.get("name"), "arguments": c.get("arguments")} for c in tool_calls if isinstance(c, dict)]
        return json.dumps(calls, sort_keys=True)
    return response if isinstance(response, str) else None


def _exact_match(s: ScoreSample) -> float:
    return float((s.response or "").strip() == (s.original or "").strip())


def _json_valid(s: ScoreSample) -> float:
    try:
        json.loads(s.response or "")
    except json.JSONDecodeError:
        return 0.0
    return 1.0


def _length_ratio(s: ScoreSample) -> float | None:
    if not s.original:
        return None
    return round(len(s.response or "") / len(s.original), 4)


def _contains(text: str) -> ScoreFunction:
    return lambda s: float(text in (s.response or ""))


def _regex(pattern: str) -> ScoreFunction:
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ScorerError(f"regex:{pattern} is not a valid regular expression: {exc}") from None
    return lambda s: float(compiled.search(s.response or "") is not None)


def _imported(path: str) -> ScoreFunction:
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ScorerError(f"scorer {path}: cannot import {module_name}: {exc}") from None
    function = getattr(module, attr, None)
    if not callable(function):
        raise ScorerError(f"scorer {path}: {module_name} has no function {attr!r}")
    scorer: ScoreFunction = function
    return scorer


def parse_scorer(spec: str, *, allowed_imports: Collection[str] | None = None) -> Scorer:
    """One spec -> Scorer. `allowed_imports` (None: any) limits the import paths, e.g. for the server."""
    spec = spec.strip()
    if spec == "exact_match":
        return Scorer(spec, _exact_match)
    if spec == "json_valid":
        return Scorer(spec, _json_valid)
    if spec == "length_ratio":
        return Scorer(spec, _length_ratio)
    if spec.startswith("contains:") and len(spec) > len("contains:"):
        return Scorer(spec, _contains(spec[len("contains:") :]))
    if spec.startswith("regex:") and len(spec) > len("regex:"):
        return Scorer(spec, _regex(spec[len("regex:") :]))
    if re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", spec):
        if allowed_imports is not None and spec not in allowed_imports:
            raise ScorerError(f"scorer {spec} is not registered; add it to the `replay.scorers` setting of the server")
        return Scorer(spec, _imported(spec))
    raise ScorerError(
        f"unknown scorer {spec!r}; use exact_match, json_valid, contains:TEXT, regex:PATTERN, length_ratio "
        "or module:function"
    )


def parse_scorers(specs: Sequence[str], *, allowed_imports: Collection[str] | None = None) -> list[Scorer]:
    seen: dict[str, Scorer] = {}
    for spec in specs:
        if spec.strip() and spec.strip() not in seen:
            scorer = parse_scorer(spec, allowed_imports=allowed_imports)
            seen[scorer.name] = scorer
    return list(seen.values())


def score(sample: ScoreSample, scorers: Sequence[Scorer]) -> dict[str, float | None]:
    """Every scorer's value (bools as 1.0/0.0); a scorer that raises gives None and is logged."""
    values: dict[str, float | None] = {}
    for scorer in scorers:
        try:
            value = scorer.function(sample)
        except Exception:
            logger.exception("scorer %s failed", scorer.name)
            value = None
        if isinstance(value, bool | int | float):
            values[scorer.name] = float(value)
        else:
            values[scorer.name] = None
    return values
